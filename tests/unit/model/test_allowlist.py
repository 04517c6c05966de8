"""The config's allow-list (``model.allowlist``): Lambda layers and serialized lambdas, and anything that is not a
Keras built-in, refused; what Keras itself writes for real models passes."""

import pytest

from convlens.errors import ConvlensError
from convlens.model.allowlist import foreign_places, unsafe_places
from convlens.model.archive import read_config
from convlens.model.layers import check_model_config
from tests.unit.model.archives import check_archive, layer_entry, rewrite, set_activation, tiny_config, write_archive


def test_lambda_layers_are_refused(tmp_path):
    path = write_archive(tmp_path / "m.keras", [layer_entry("Conv2D", "conv2d"), layer_entry("Lambda", "evil")])
    with pytest.raises(ConvlensError, match=r"Lambda layers or Python lambdas \(evil\).*refused"):
        check_model_config(read_config(path), str(path))


def test_serialized_lambdas_anywhere_in_the_config_are_found():
    dense = {
        "class_name": "Dense",
        "config": {"name": "dense", "activation": {"class_name": "__lambda__", "config": {"value": ["4wE"]}}},
    }
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [dense]}}
    assert unsafe_places(config) == ["dense.activation"]
    with pytest.raises(ConvlensError, match=r"\(dense.activation\)"):
        check_model_config(config, "m.keras")


FOREIGN = {
    "module-os": (
        lambda c: set_activation(c, {"module": "os", "class_name": "system", "config": {}, "registered_name": None}),
        "layer 'conv2d' uses os.system, which is not a Keras built-in",
    ),
    "activation-string": (
        lambda c: set_activation(c, "os.system"),
        "layer 'conv2d' uses activation 'os.system', which is not a Keras built-in",
    ),
    "builtins-function": (
        lambda c: set_activation(c, {"module": "builtins", "class_name": "function", "config": "eval"}),
        "layer 'conv2d' uses function builtins.eval, which is not a Keras built-in",
    ),
    "non-modeling-api": (
        lambda c: set_activation(
            c, {"module": "keras.config", "class_name": "function", "config": "enable_unsafe_deserialization"}
        ),
        "uses function keras.config.enable_unsafe_deserialization, which is not a Keras built-in",
    ),
    "registered-function": (
        lambda c: set_activation(
            c, {"module": "keras.activations", "class_name": "function", "config": "relu", "registered_name": "x>relu"}
        ),
        "layer 'conv2d' uses function keras.activations.relu, which is not a Keras built-in",
    ),
    "registered-custom": (
        lambda c: set_activation(
            c, {"module": "keras.layers", "class_name": "ReLU", "config": {}, "registered_name": "evil>ReLU"}
        ),
        "layer 'conv2d' uses keras.layers.ReLU registered as 'evil>ReLU' (a custom object), which is not a Keras",
    ),
    "keras-function-as-class": (
        lambda c: set_activation(c, {"module": "keras.models", "class_name": "load_model", "config": {}}),
        "uses keras.models.load_model, which is not a Keras built-in",
    ),
    "typespec": (
        lambda c: set_activation(c, {"module": "keras", "class_name": "__typespec__", "config": [], "spec_name": "X"}),
        "uses keras.__typespec__, which is not a Keras built-in",
    ),
    "custom-layer": (
        lambda c: (
            c["config"]["layers"].append(
                {
                    "module": "my_package.layers",
                    "class_name": "Evil",
                    "config": {"name": "evil"},
                    "registered_name": "Evil",
                }
            )
            or c
        ),
        "layer 'evil' uses my_package.layers.Evil, which is not a Keras built-in",
    ),
    "initializer-string": (
        lambda c: c["config"]["layers"][1]["config"].update(kernel_initializer="subprocess.call") or c,
        "layer 'conv2d' uses initializer 'subprocess.call', which is not a Keras built-in",
    ),
    "not-a-layer": (
        lambda c: (
            c["config"]["layers"].append(
                {"module": "keras.initializers", "class_name": "Zeros", "config": {"name": "z"}}
            )
            or c
        ),
        "layer 'z' uses keras.initializers.Zeros as a layer, which is not a Keras built-in",
    ),
    "tfsm-layer": (
        lambda c: (
            c["config"]["layers"].append(
                {"module": "keras.layers", "class_name": "TFSMLayer", "config": {"name": "saved", "filepath": "/tmp/x"}}
            )
            or c
        ),
        "layer 'saved' uses a TFSMLayer, which loads a TensorFlow SavedModel from outside the archive; refused",
    ),
}


@pytest.mark.parametrize("case", FOREIGN)
def test_anything_not_a_keras_builtin_is_refused(tiny_assets, tmp_path, case):
    mutate, message = FOREIGN[case]
    path = rewrite(tiny_assets["model"], tmp_path / "m.keras", config=mutate(tiny_config(tiny_assets)))
    with pytest.raises(ConvlensError) as err:
        check_model_config(read_config(path), str(path))
    assert message in str(err.value) and str(err.value).startswith(f"{path}: ")
    assert "rebuild the model from built-in keras.layers" in str(err.value) and "\n" not in str(err.value)


def test_a_keras_function_object_is_a_builtin(tiny_assets):
    for registered in (None, "relu"):
        relu = {
            "module": "keras.activations",
            "class_name": "function",
            "config": "relu",
            "registered_name": registered,
        }
        assert foreign_places(set_activation(tiny_config(tiny_assets), relu)) == []


def test_keras_builtins_in_real_configs_pass(tmp_path):
    """Every kind of object Keras writes for models convlens reads: functional graphs, nested models,
    BatchNormalization, regularizers, constraints, activation layers, and the optimizer of a compiled model."""
    from convlens.model.keras_models import keras

    layers = keras.layers
    inputs = keras.Input((28, 28, 1))
    x = layers.Conv2D(4, 3, kernel_regularizer=keras.regularizers.L2(0.1), kernel_constraint="max_norm")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Add()([x, layers.Conv2D(4, 3, padding="same", activation="gelu")(x)])
    x = layers.LeakyReLU()(layers.Rescaling(0.5)(x))
    inner = keras.Sequential([layers.Conv2D(2, 3, name="inner_conv")], name="inner")
    x = layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling2D()(inner(x)))
    model = keras.Model(inputs, x)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.save(tmp_path / "f.keras")
    assert [layer.kind for layer in check_model_config(read_config(tmp_path / "f.keras"), "f")][:2] == [
        "Conv2D",
        "BatchNormalization",
    ]
    check_archive(tmp_path / "f.keras")
