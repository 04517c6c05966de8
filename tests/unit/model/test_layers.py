"""config.json read as layers (``model.layers``): malformed and fuzzed configs, the layer cap, a model with no
convolution, the layers and input shape read without TensorFlow, and layer lists resolved by name and index."""

import json
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convlens.errors import ConvlensError
from convlens.model.archive import read_config
from convlens.model.layers import (
    MAX_LAYERS,
    LayerInfo,
    check_input_shape,
    check_model_config,
    input_shape,
    layer_count,
    layer_infos,
    resolve_layers,
)
from tests.support.helpers import one_line
from tests.unit.model.archives import layer_entry, rewrite, save, tiny_config, write_archive

LAYERS = [
    LayerInfo(0, "conv2d", "Conv2D"),
    LayerInfo(1, "max_pooling2d", "MaxPooling2D"),
    LayerInfo(2, "conv2d_1", "Conv2D"),
    LayerInfo(3, "dense", "Dense"),
]


def test_archive_layers_match_keras_model_layers(tiny_assets):
    from convlens.model.keras_models import load_model
    from tests.support.keras_reference import model_layers

    config = read_config(tiny_assets["model"])
    assert layer_infos(config) == model_layers(load_model(tiny_assets["model"]))


def test_resolve_layers_by_name_index_and_default():
    assert resolve_layers(None, LAYERS, ("Conv2D",)) == ["conv2d", "conv2d_1"]
    assert resolve_layers(["conv2d_1", 0], LAYERS, ("Conv2D",)) == ["conv2d_1", "conv2d"]
    assert resolve_layers([1], LAYERS, ("Conv2D",)) == ["max_pooling2d"]
    with pytest.raises(ConvlensError) as err:  # before: silently merged
        resolve_layers(["conv2d_1", 0, "conv2d"], LAYERS, ("Conv2D",), "weights.layers")
    assert str(err.value) == "weights.layers names layer 'conv2d' twice (as 'conv2d' and another entry); list it once"


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["conv9"], "unknown layer 'conv9'; this model has 0:conv2d, 1:max_pooling2d, 2:conv2d_1, 3:dense"),
        ([7], "layer index 7 is out of range 0..3"),
        ([-1], "out of range"),
        ([], "the layer list is empty"),
        ([1.5], "neither a name nor an index"),
        ([True], "neither a name nor an index"),
    ],
)
def test_resolve_layers_errors_list_the_models_layers(specs, message):
    with pytest.raises(ConvlensError, match=message.replace("(", r"\(").replace(".", r"\.")):
        resolve_layers(specs, LAYERS, ("Conv2D",))


def test_models_without_conv2d_are_refused(tmp_path):
    path = write_archive(tmp_path / "m.keras", [layer_entry("Dense", "dense")])
    with pytest.raises(ConvlensError) as err:
        check_model_config(read_config(path), str(path))
    assert str(err.value) == (
        f"{path} has no convolutional layer (layers: dense (Dense)); "
        "convlens needs a model with a Conv2D, DepthwiseConv2D or SeparableConv2D layer"
    )


def test_a_config_checked_after_it_was_read_names_config_json():
    """``Archive.of`` takes a config read elsewhere (a Keras 2 archive's): it is checked again, named the same way."""
    with pytest.raises(ConvlensError) as err:
        check_model_config({"class_name": "Sequential", "config": {"layers": [1]}}, "m.keras")
    assert str(err.value).startswith("m.keras: config.json is not a Keras model config (")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"[]", "it holds a list, not an object"),
        (b"null", "it holds null, not an object"),
        (b'{"class_name": "Sequential", "config": {"layers": []}}\xff', "not UTF-8: invalid start byte at byte 54"),
        (b'{"class_name": "Sequential", "config": {"layers": [5]}}', "layer 0 is 5, not an object"),
        (b'{"config": {"layers": []}}', "no class_name"),
        (
            b'{"class_name": "Sequential", "config": {"layers": [{"class_name": "Conv2D", "config": {}}]}}',
            "layer 0 (Conv2D) has no name",
        ),
        (
            b'{"class_name": "Sequential", "config": {"layers": [{"config": {"name": "c"}}]}}',
            "layer 0 has no class_name",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply to parse"),
        (b'{"a":' * 150 + b"1" + b"}" * 150, "nested more than 100 levels deep"),
        (b'{"class_name": "Sequential", "config": 7}', "no config object"),
        (b"{", "not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        (b"1" * 5000, "not JSON: Exceeds the limit (4300 digits)"),
        (
            b'{"class_name": "Sequential", "config": {"layers": '
            b'[{"class_name": "Conv2D", "config": {"name": "../x"}}]}}',
            "layer 0 is named '../x', which is not a plain name (it would be a path)",
        ),
    ],
    ids=[
        "list",
        "null",
        "utf8",
        "int-layer",
        "no-class",
        "no-name",
        "layer-no-class",
        "deep",
        "deep-parsed",
        "config-not-object",
        "truncated",
        "long-int",
        "name-is-a-path",
    ],
)
def test_malformed_configs_are_one_line(tiny_assets, tmp_path, raw, problem):
    path = rewrite(tiny_assets["model"], tmp_path / "m.keras", raw_config=raw)
    with pytest.raises(ConvlensError) as err:
        read_config(path)
    assert str(err.value).startswith(f"{path}: config.json is not a Keras model config ({problem}")
    assert str(err.value).endswith("; save the model with model.save('name.keras')") and "\n" not in str(err.value)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


KEYS = st.sampled_from(["class_name", "config", "module", "registered_name", "layers", "name", "activation"])


def _mutate(node, path, value):
    """``node`` with the item at ``path`` (indices into lists and dict values, in order) replaced by ``value``."""
    if not path or not isinstance(node, dict | list) or not node:
        return value
    index = path[0] % len(node)
    if isinstance(node, list):
        return [_mutate(item, path[1:], value) if i == index else item for i, item in enumerate(node)]
    key = list(node)[index]
    return {**node, key: _mutate(node[key], path[1:], value)}


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        JSON,
        st.tuples(st.lists(st.integers(0, 50), max_size=8), JSON | st.dictionaries(KEYS, JSON, max_size=3)),
        st.binary(max_size=40),
    )
)
def test_fuzzed_configs_give_layers_or_one_convlens_error(tiny_assets, tmp_path_factory, case):
    """Arbitrary JSON, arbitrary bytes, or the tiny model's real config with one part replaced: read_config and
    check_model_config return layers or raise ConvlensError (one line), never another exception."""
    if isinstance(case, tuple):
        case = _mutate(tiny_config(tiny_assets), *case)
    raw = case if isinstance(case, bytes) else json.dumps(case).encode()
    path = rewrite(tiny_assets["model"], tmp_path_factory.mktemp("fuzz") / "m.keras", raw_config=raw)
    try:
        layers = check_model_config(read_config(path), str(path))
    except ConvlensError as e:
        assert "\n" not in str(e) and str(e)
    else:
        assert all(isinstance(layer, LayerInfo) for layer in layers)


def test_a_model_of_more_layers_than_convlens_reads_is_refused_at_once(tiny_assets, tmp_path):
    """Issue 28 §6: a 10,000-layer model's Keras stages never finished; its config is refused in fetch_model."""
    config = json.loads(zipfile.ZipFile(tiny_assets["model"]).read("config.json"))
    own = len(config["config"]["layers"])
    dropout = {"class_name": "Dropout", "config": {"rate": 0.0}}
    nested = {"class_name": "Sequential", "config": {"name": "block", "layers": []}}
    for count, room in ((MAX_LAYERS, "fits"), (10_000, "too many")):
        extra = count - own - 1  # the nested model is a layer, its layers too
        nested["config"]["layers"] = [{**dropout, "config": {"rate": 0.0, "name": f"d{i}"}} for i in range(extra)]
        grown = {**config, "config": {**config["config"], "layers": [*config["config"]["layers"], nested]}}
        assert layer_count(grown) == count
        path = rewrite(tiny_assets["model"], tmp_path / f"{count}.keras", config=grown)
        if room == "fits":
            assert read_config(path) == grown
            continue
        with pytest.raises(ConvlensError) as err:
            read_config(path)
        assert str(err.value) == (
            f"{path}: the model has 10000 layers (nested models' included), over the {MAX_LAYERS} convlens reads; "
            "look inside a part of it: keras.Model(model.inputs, model.get_layer(NAME).output).save('part.keras')"
        )


def test_input_shape_is_read_from_the_archive_without_tensorflow(tiny_assets, tmp_path):
    from convlens.model.keras_models import keras

    assert input_shape(read_config(tiny_assets["model"])) == (28, 28, 1)
    assert check_input_shape(read_config(tiny_assets["model"]), (28, 28), "tiny.keras") == (28, 28, 1)
    x = keras.Input((32, 32, 3))
    functional = save(keras.Model(x, keras.layers.Conv2D(2, 3, name="conv2d")(x)), tmp_path / "f.keras")
    assert input_shape(read_config(functional)) == (32, 32, 3)
    x = keras.Input((None, None, 1))
    any_size = save(keras.Model(x, keras.layers.Conv2D(2, 3, name="conv2d")(x)), tmp_path / "any.keras")
    assert check_input_shape(read_config(any_size), (28, 28), "any.keras") == (None, None, 1)


def test_a_colour_sample_fits_a_colour_model_as_it_is():
    """(H, W, C) samples are compared as they are; only (H, W) ones get the channel axis added."""
    layers = [{"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [None, 32, 32, 3]}}]
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": layers}}
    assert check_input_shape(config, (32, 32, 3), "m.keras") == (32, 32, 3)


def test_the_input_shape_is_read_from_the_first_layers_build_config():
    """Keras 3 saves a Sequential built without an Input layer with the input shape in its first layer's
    ``build_config`` only."""
    first = {"class_name": "Conv2D", "config": {"name": "c"}, "build_config": {"input_shape": [None, 20, 24, 1]}}
    assert input_shape({"class_name": "Sequential", "config": {"name": "s", "layers": [first]}}) == (20, 24, 1)


def test_a_config_without_a_layer_list_counts_no_layers():
    assert layer_count({"class_name": "Sequential", "config": {"name": "s"}}) == 0
    assert layer_count({"class_name": "Sequential", "config": {"name": "s", "layers": None}}) == 0


@pytest.mark.parametrize(
    ("layers", "sample", "message"),
    [
        (
            [{"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [None, 32, 32, 3]}}],
            (28, 28),
            "m.keras expects inputs of shape 32×32×3 but the data's samples are 28×28×1; make the data fit it "
            "(-S data.resize=[32,32] -S data.color=rgb) or use a model built for this data (keras.Input((28, 28, 1)))",
        ),
        (
            [{"class_name": "Conv2D", "config": {"name": "c", "batch_input_shape": [None, 28, 28, 3]}}],
            (28, 28),
            "expects inputs of shape 28×28×3",
        ),
        (
            [{"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [None, 784]}}],
            (28, 28),
            "expects inputs of shape 784 but the data's samples are 28×28×1",
        ),
        ([{"class_name": "Conv2D", "config": {"name": "c"}}], (28, 28), "does not say its input shape"),
    ],
    ids=["rgb-32", "keras2-first-layer", "flat-784", "no-shape"],
)
def test_a_model_input_that_does_not_fit_the_data_is_refused(layers, sample, message):
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": layers}}
    with pytest.raises(ConvlensError) as err:
        check_input_shape(config, sample, "m.keras")
    assert message in one_line(err)


@pytest.mark.parametrize(
    ("want", "got", "fit"),
    [
        ((32, 32, 3), (28, 28, 1), "-S data.resize=[32,32] -S data.color=rgb"),
        ((28, 28, 1), (32, 32, 3), "-S data.resize=[28,28] -S data.color=gray"),
        ((64, 48, 3), (28, 28, 3), "-S data.resize=[64,48]"),
        ((None, None, 3), (28, 28, 1), "-S data.color=rgb"),
        ((None, 20, 1), (28, 28, 1), "-S data.resize=[28,20]"),
        ((784,), (28, 28, 1), ""),
        ((28, 28, 4), (28, 28, 3), ""),
    ],
)
def test_a_mismatch_names_the_data_settings_that_make_the_images_fit(want, got, fit):
    from convlens.model.layers import data_fit

    assert data_fit(want, got) == fit
