"""Whether a layer's output can go below 0 by the model's config (``model.graph.signed_layers``): each rule on
hand-written configs, the activations against Keras's own, and real Sequential and Functional models as saved."""

from __future__ import annotations

import numpy as np
import pytest

from convlens.model.allowlist import NOT_FUNCTIONS
from convlens.model.archive import Archive
from convlens.model.graph import UNSIGNED_ACTIVATIONS, model_graph, signed_layers


def conv(name: str, activation: object, inbound: str = "in") -> tuple[str, dict, list[str]]:
    return ("Conv2D", {"name": name, "activation": activation}, [inbound])


RELU, LINEAR = conv("relu_conv", "relu"), conv("linear_conv", "linear")  # an input that cannot, and one that can


def signed_after(kind: str, config: dict, inbound: list[str]) -> bool:
    """Whether ``kind`` with ``config`` is signed after ``inbound`` (of ``in``, ``relu_conv``, ``linear_conv``)."""
    return signed_layers([RELU, LINEAR, (kind, {"name": "probe", **config}, inbound)], ["in"])["probe"]


@pytest.mark.parametrize("activation", sorted(UNSIGNED_ACTIVATIONS))
def test_a_layer_with_an_activation_that_never_goes_below_0_is_not_signed_whatever_its_input(activation):
    serialized = {"module": "builtins", "class_name": "function", "config": activation, "registered_name": "function"}
    for spec in (activation, serialized):
        for kind in ("Conv2D", "Dense", "DepthwiseConv2D", "SeparableConv2D", "Activation"):
            assert not signed_after(kind, {"activation": spec}, ["linear_conv"]), (kind, spec)


@pytest.mark.parametrize("activation", ["linear", None, "tanh", "elu", "selu", "gelu", "silu", "swish", "leaky_relu"])
def test_a_layer_with_any_other_activation_is_signed_whatever_its_input(activation):
    serialized = {"module": "builtins", "class_name": "function", "config": activation, "registered_name": "function"}
    for spec in (activation, serialized):
        assert signed_after("Conv2D", {"activation": spec}, ["relu_conv"]), spec
    assert signed_after("Activation", {"activation": "my_package>relu"}, ["in"])  # a custom activation


def test_the_set_of_unsigned_activations_is_every_keras_activation_that_never_goes_below_0():
    """Each of Keras's activations on -10..10 (an even count: glu halves its input): those whose least output is
    ≥ 0 are exactly UNSIGNED_ACTIVATIONS (``threshold`` needs its own threshold and value: no layer names it alone)."""
    from convlens.model.keras_models import keras

    x = np.linspace(-10, 10, 2000, dtype=np.float32).reshape(1, -1)
    names = [n for n in dir(keras.activations) if not n.startswith("_") and n not in NOT_FUNCTIONS | {"threshold"}]
    never_negative = {n for n in names if float(np.min(keras.activations.get(n)(x))) >= 0}
    assert never_negative == UNSIGNED_ACTIVATIONS


@pytest.mark.parametrize(
    ("config", "signed"),
    [
        ({}, False),  # Keras's defaults
        ({"max_value": 6.0, "negative_slope": 0.0, "threshold": 0.5}, False),
        ({"max_value": None, "negative_slope": 0, "threshold": 0}, False),
        ({"negative_slope": 0.0, "threshold": -1.0}, True),  # x in [-1, 0) passes as it is
        ({"negative_slope": 0.1, "threshold": 0.0}, True),
        ({"max_value": -1.0}, True),
        ({"negative_slope": "0"}, True),  # not a number: not known
    ],
)
def test_a_relu_layer_is_signed_only_with_a_negative_slope_a_threshold_below_0_or_a_cap_below_0(config, signed):
    assert signed_after("ReLU", config, ["linear_conv"]) is signed


def test_softmax_is_never_signed_and_the_leaky_and_exponential_relus_always():
    assert not signed_after("Softmax", {"axis": -1}, ["linear_conv"])
    for kind, config in [("LeakyReLU", {"negative_slope": 0.3}), ("PReLU", {}), ("ELU", {"alpha": 1.0})]:
        assert signed_after(kind, config, ["relu_conv"]), kind


KEEPING = [
    ("MaxPooling2D", {"pool_size": [2, 2]}),
    ("AveragePooling1D", {}),
    ("GlobalAveragePooling2D", {}),
    ("GlobalMaxPooling3D", {}),
    ("Flatten", {}),
    ("Reshape", {"target_shape": [4]}),
    ("Dropout", {"rate": 0.5}),
    ("SpatialDropout2D", {"rate": 0.5}),
    ("GaussianDropout", {"rate": 0.5}),
    ("AlphaDropout", {"rate": 0.5}),
    ("GaussianNoise", {"stddev": 1.0}),
    ("Cropping2D", {}),
    ("ZeroPadding2D", {}),
    ("UpSampling2D", {"interpolation": "nearest"}),
    ("UpSampling2D", {"interpolation": "bilinear"}),
    ("UpSampling1D", {}),
    ("Permute", {"dims": [2, 1, 3]}),
    ("Identity", {}),
    ("Rescaling", {"scale": 0.00392156862745098, "offset": 0.0}),
    ("Rescaling", {"scale": [1.0, 2.0], "offset": 0.5}),
    ("Rescaling", {"scale": {"class_name": "__numpy__", "config": {"value": [1.0, 2.0], "dtype": "float64"}}}),
]


@pytest.mark.parametrize(("kind", "config"), KEEPING, ids=[f"{k}-{i}" for i, (k, _) in enumerate(KEEPING)])
def test_a_sign_keeping_layer_is_signed_exactly_where_its_input_is(kind, config):
    assert not signed_after(kind, config, ["in"])
    assert not signed_after(kind, config, ["relu_conv"])
    assert signed_after(kind, config, ["linear_conv"])
    assert signed_after(kind, config, ["nowhere"])  # an input not in the graph: not known
    assert signed_after(kind, config, [])


@pytest.mark.parametrize("kind", ["Concatenate", "Add", "Maximum", "Minimum", "Multiply", "Average"])
def test_a_merge_is_signed_where_any_of_its_inputs_is(kind):
    assert not signed_after(kind, {}, ["relu_conv", "in"])
    assert signed_after(kind, {}, ["relu_conv", "linear_conv"])
    assert signed_after(kind, {}, ["relu_conv", "nowhere"])


@pytest.mark.parametrize(
    "config",
    [
        {"scale": -1.0, "offset": 0.0},
        {"scale": [1.0, -2.0]},
        {"scale": {"class_name": "__numpy__", "config": {"value": [1.0, -2.0], "dtype": "float64"}}},
        {"scale": 1.0, "offset": -1.0},  # [0, 1] → [-1, 0]
        {"scale": 1.0, "offset": [0.0, -0.5]},
        {"scale": "half"},  # not a number: not known
    ],
)
def test_rescaling_by_a_scale_or_offset_below_0_is_signed_even_after_an_unsigned_input(config):
    assert signed_after("Rescaling", config, ["in"])


@pytest.mark.parametrize(
    ("kind", "config"),
    [
        ("BatchNormalization", {}),
        ("LayerNormalization", {}),
        ("Normalization", {"mean": [0.5], "variance": [0.25]}),
        ("Subtract", {}),
        ("UpSampling2D", {"interpolation": "bicubic"}),  # overshoots
        ("MyLayer", {}),  # a kind not known here
        ("Sequential", {"layers": []}),  # a nested model
    ],
)
def test_normalizations_subtraction_and_unknown_kinds_are_signed_even_after_an_unsigned_input(kind, config):
    assert signed_after(kind, config, ["relu_conv"])


def test_signed_layers_names_every_layer_and_no_input_and_carries_signs_down_a_chain():
    layers = [
        RELU,
        ("MaxPooling2D", {"name": "pool"}, ["relu_conv"]),
        ("BatchNormalization", {"name": "bn"}, ["pool"]),
        ("Flatten", {"name": "flat"}, ["bn"]),
        ("Dense", {"name": "dense", "activation": "softmax"}, ["flat"]),
    ]
    assert signed_layers(layers, ["in"]) == {
        "relu_conv": False,
        "pool": False,
        "bn": True,
        "flat": True,
        "dense": False,
    }


def saved_config(model, folder, name: str) -> dict:
    """The config a saved ``model`` holds (its ``config.json``), as the stages read it."""
    path = folder / f"{name}.keras"
    model.save(path)
    return Archive.read(path).config


def test_a_saved_sequential_models_layers_are_signed_by_their_config(tmp_path):
    from convlens.model.keras_models import keras

    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            layers.Rescaling(1 / 255, name="scale"),
            layers.Conv2D(2, 3, activation="relu", name="relu_conv"),
            layers.MaxPooling2D(2, name="pool"),
            layers.Conv2D(2, 1, name="linear_conv"),  # activation None: linear
            layers.BatchNormalization(name="bn"),
            layers.ReLU(threshold=0.5, name="relu"),
            layers.Dropout(0.5, name="drop"),
            layers.LeakyReLU(name="leaky"),
            layers.Activation(keras.activations.sigmoid, name="sigmoid"),
            layers.Flatten(name="flat"),
            layers.Dense(3, activation="tanh", name="tanh"),
            layers.Softmax(name="soft"),
        ]
    )
    got = signed_layers(*model_graph(saved_config(model, tmp_path, "sequential")))
    assert got == {
        "scale": False,
        "relu_conv": False,
        "pool": False,
        "linear_conv": True,
        "bn": True,
        "relu": False,
        "drop": False,
        "leaky": True,
        "sigmoid": False,
        "flat": False,
        "tanh": True,
        "soft": False,
    }


def test_a_saved_functional_models_residual_add_is_signed_where_a_branch_is_and_nested_layers_are_left_out(tmp_path):
    from convlens.model.keras_models import keras

    layers = keras.layers
    x = keras.Input((8, 8, 1), name="image")
    a = layers.Conv2D(2, 3, padding="same", activation="relu", name="a")(x)
    b = layers.Conv2D(2, 3, padding="same", activation="relu", name="b")(a)
    both_relu = layers.Add(name="add_relu")([a, b])
    c = layers.DepthwiseConv2D(3, padding="same", name="c")(both_relu)  # linear
    residual = layers.Add(name="add_linear")([both_relu, c])
    pooled = layers.GlobalAveragePooling2D(name="gap")(residual)
    block = keras.Sequential([keras.Input((2,)), layers.Dense(2, activation="relu", name="inner")], name="block")
    out = layers.Dense(3, activation="softmax", name="dense")(block(pooled))
    config = saved_config(keras.Model(x, [out, layers.MaxPooling2D(name="pool")(both_relu)]), tmp_path, "functional")
    assert signed_layers(*model_graph(config)) == {
        "a": False,
        "b": False,
        "add_relu": False,
        "c": True,
        "add_linear": True,
        "gap": True,
        "block": True,  # a nested model: a kind of its own, not known
        "dense": False,
        "pool": False,
    }
