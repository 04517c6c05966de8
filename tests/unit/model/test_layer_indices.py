"""Outside finding #2: a layer index in a configured layer list means Keras's ``load_model(path).layers[i]``.

A Functional model's ``model.layers`` starts with its InputLayer(s); a Sequential's leaves the InputLayer out.
Before, convlens counted without the InputLayer for both, so ``feature_maps.layers=[5]`` on a Functional model
silently looked at Keras's ``layers[6]``. Every expectation here is Keras's own list of the reloaded model.
"""

from __future__ import annotations

import pytest

from convlens.errors import ConvlensError
from convlens.model.archive import Archive
from tests.support.helpers import one_line
from tests.unit.model.archives import outside_rgb_model


def _models():
    from convlens.model.keras_models import keras

    layers = keras.layers
    sequential = keras.Sequential(
        [
            keras.Input((12, 12, 1)),
            layers.Conv2D(3, 3, name="stem"),
            layers.MaxPooling2D(name="pool"),
            layers.Conv2D(4, 3, name="block2"),
            layers.Flatten(name="flat"),
            layers.Dense(3, name="head"),
        ]
    )
    functional = outside_rgb_model(12, 4)  # the outside tester's RGB model
    a, b = keras.Input((8, 8, 1), name="a"), keras.Input((8, 8, 1), name="b")
    nested = keras.Sequential([keras.Input((6, 6, 4)), layers.Conv2D(2, 3, name="inner")], name="nest")
    joined = layers.Concatenate(name="cat")([layers.Conv2D(2, 3, name="ca")(a), layers.Conv2D(2, 3, name="cb")(b)])
    two_inputs = keras.Model([a, b], layers.Flatten(name="flat")(nested(joined)))
    return {"sequential": sequential, "functional": functional, "two_inputs": two_inputs}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Each model saved, and the names Keras lists in ``load_model(path).layers`` (InputLayers marked)."""
    from convlens.model.keras_models import keras, load_model

    folder = tmp_path_factory.mktemp("indices")
    found = {}
    for kind, model in _models().items():
        path = folder / f"{kind}.keras"
        model.save(path)
        found[kind] = (path, [(x.name, isinstance(x, keras.layers.InputLayer)) for x in load_model(path).layers])
    return found


@pytest.mark.parametrize("kind", ["sequential", "functional", "two_inputs"])
def test_an_index_names_the_layer_keras_lists_at_that_index(saved, kind):
    path, keras_layers = saved[kind]
    archive = Archive.read(path)
    for i, (name, is_input) in enumerate(keras_layers):
        if is_input:
            continue
        assert archive.resolve([i], "feature_maps.layers") == [name], (kind, i)
    assert {info.index: info.name for info in archive.layers if info.index is not None} == {
        i: name for i, (name, is_input) in enumerate(keras_layers) if not is_input
    }


def test_the_outside_testers_index_5_is_block2(saved):
    """Keras: ['input_layer', 'stem', 'bn', 'act', 'pool', 'block2', 'gap', 'head']; before: 'gap'."""
    path, keras_layers = saved["functional"]
    assert keras_layers[5][0] == "block2"
    assert Archive.read(path).resolve([5, "head"], "feature_maps.layers") == ["block2", "head"]


def test_the_sequential_keeps_its_numbering(saved):
    """Keras's Sequential.layers leaves the InputLayer out: index 0 is the first conv (the book's meaning)."""
    path, keras_layers = saved["sequential"]
    assert not any(is_input for _, is_input in keras_layers)
    assert Archive.read(path).resolve([0, 2], "weights.layers") == ["stem", "block2"]


@pytest.mark.parametrize("kind", ["functional", "two_inputs"])
def test_an_index_at_an_input_layer_is_one_line_naming_it(saved, kind):
    path, keras_layers = saved[kind]
    archive = Archive.read(path)
    inputs = [(i, name) for i, (name, is_input) in enumerate(keras_layers) if is_input]
    assert inputs  # a Functional model lists its InputLayers
    for i, name in inputs:
        with pytest.raises(ConvlensError) as err:
            archive.resolve([i], "feature_maps.layers")
        message = one_line(err)
        assert message.startswith(f"feature_maps.layers: layer index {i} is the model's InputLayer {name!r}")


@pytest.mark.parametrize("kind", ["sequential", "functional", "two_inputs"])
def test_the_error_listing_numbers_layers_as_keras_does(saved, kind):
    path, keras_layers = saved[kind]
    with pytest.raises(ConvlensError) as err:
        Archive.read(path).resolve(["nope"], "feature_maps.layers")
    listing = one_line(err).split("this model has ", 1)[1].split(", ")
    numbered = [item for item in listing if ":" in item]
    assert numbered == [f"{i}:{name}" for i, (name, is_input) in enumerate(keras_layers) if not is_input]
    with pytest.raises(
        ConvlensError, match=rf"layer index {len(keras_layers)} is out of range 0\.\.{len(keras_layers) - 1};"
    ):
        Archive.read(path).resolve([len(keras_layers)], "feature_maps.layers")


def test_a_nested_models_layers_have_no_index_but_their_address(saved):
    """Indices count the top-level model.layers only; a nested model's layer is named ``outer/inner``."""
    path, keras_layers = saved["two_inputs"]
    archive = Archive.read(path)
    nest = [name for name, _ in keras_layers].index("nest")
    assert archive.resolve([nest, "nest/inner"], "feature_maps.layers") == ["nest", "nest/inner"]
    assert [info.index for info in archive.layers if info.name == "nest/inner"] == [None]
