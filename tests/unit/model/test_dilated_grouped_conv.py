"""Dilated and grouped ``Conv2D`` (``dilation_rate``, ``groups``): the numpy forward pass computes them as Keras 3
does, the shape walk (``layer_config.built``) gives Keras's output shapes and kernels, the report's model table
shows their shapes and receptive fields, and what Keras's constructor or build refuses is left to Keras, named."""

from __future__ import annotations

import copy
import json
import zipfile

import numpy as np
import pytest

from convlens.model.archive import Archive
from convlens.model.forward import load_network
from convlens.model.layer_config import built, chain_problem, too_small
from convlens.model.ops import Unsupported
from tests.unit.model.archives import rewrite
from tests.unit.model.test_forward import keras_activations, randomize_weights
from tests.unit.model.test_forward import keras_matches as forward_keras_matches


@pytest.fixture(scope="module")
def keras():
    from convlens.model.keras_models import keras

    return keras


def assert_close(got: np.ndarray, want: np.ndarray, name: str = "") -> None:
    """numpy's and Keras's float32 outputs agree to 1e-5 relative and 1e-6 absolute, the absolute part of the
    layer's largest value where that is above 1: both sum the same products in another order, and a sum that
    cancels to near 0 keeps the rounding of its largest terms (an ulp of 8 is 1e-6)."""
    assert got.shape == want.shape and got.dtype == want.dtype == np.float32, name
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * max(1.0, float(np.abs(want).max())), err_msg=name)


def keras_matches(tmp_path, layers, x):
    """Save a Sequential of ``layers`` with random weights; its numpy and Keras outputs (last layer) agree."""
    return forward_keras_matches(tmp_path, layers, x, compare=assert_close)


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize(
    ("channels", "dilation", "kernel"),
    [(3, (2, 2), 3), (3, (2, 3), 3), (3, (2, 3), (2, 3)), (12, (2, 2), 3), (12, (3, 2), (3, 2))],
    ids=["c3-d22", "c3-d23", "c3-d23-k23", "c12-d22", "c12-d32-k32"],
)
def test_a_dilated_conv2d_matches_keras(keras, tmp_path, channels, dilation, kernel, padding):
    """Both of conv2d's strategies (few input channels: im2col; 8 or more: one product per kernel tap), both
    paddings, equal and unequal dilation per axis; an odd input size, so that "same" pads unevenly."""
    x = np.random.default_rng(11).uniform(-1, 1, (3, 13, 11, channels)).astype(np.float32)
    conv = keras.layers.Conv2D(4, kernel, dilation_rate=dilation, padding=padding, activation="relu", name="conv")
    got = keras_matches(tmp_path, [conv], x)
    assert np.abs(got).max() > 0.5 and (got == 0).any()  # random weights: values far above the tolerance; ReLU cut


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize(
    ("channels", "groups", "strides", "padding"),
    [
        (4, 2, 1, "valid"),
        (4, 4, 1, "same"),
        (8, 8, 1, "same"),
        (8, 4, 2, "same"),
        (16, 2, (2, 1), "valid"),
        (32, 2, 1, "same"),
    ],
    ids=["c4-g2", "c4-g4", "c8-g8", "c8-g4-s2", "c16-g2-s21", "c32-g2"],
)
def test_a_grouped_conv2d_matches_keras(keras, tmp_path, channels, groups, strides, padding, use_bias):
    """Groups of 1 to 16 input channels each, one channel each (as many groups as channels), strides, with and
    without bias."""
    x = np.random.default_rng(12).uniform(-1, 1, (3, 10, 9, channels)).astype(np.float32)
    conv = keras.layers.Conv2D(
        8, 3, groups=groups, strides=strides, padding=padding, use_bias=use_bias, activation="relu", name="conv"
    )
    got = keras_matches(tmp_path, [conv], x)
    assert np.abs(got).max() > 0.5


def dilated_grouped_model(keras, size=(20, 19)):
    """A chain with dilated convs (valid and same, (2, 2) and (2, 3)), grouped ones (2 and 4 groups) and one both
    dilated and grouped, pooling and a dense head; every weight random."""
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((*size, 4)),
            layers.Conv2D(8, 3, dilation_rate=(2, 2), padding="valid", activation="relu", name="dil_valid"),
            layers.Conv2D(8, 3, groups=2, padding="same", activation="relu", name="group2"),
            layers.Conv2D(8, (3, 2), dilation_rate=(2, 3), padding="same", name="dil_same"),
            layers.Conv2D(12, 3, dilation_rate=2, groups=4, activation="relu", name="dil_group4"),
            layers.MaxPooling2D(2, name="pool"),
            layers.Conv2D(8, 1, groups=4, use_bias=False, name="group4_1x1"),
            layers.Flatten(name="flat"),
            layers.Dense(5, activation="softmax", name="probs"),
        ]
    )
    randomize_weights(model, 13)
    return model


@pytest.fixture(scope="module")
def combined(keras, tmp_path_factory):
    path = tmp_path_factory.mktemp("dilated_grouped") / "m.keras"
    model = dilated_grouped_model(keras)
    model.save(path)
    return path, model


def test_a_model_of_dilated_and_grouped_convs_matches_keras_layer_by_layer(combined):
    path, model = combined
    names = [layer.name for layer in model.layers]
    x = np.random.default_rng(14).uniform(0, 1, (4, 20, 19, 4)).astype(np.float32)
    network = load_network(Archive.read(path))  # no Unsupported: numpy computes the whole chain
    for name, got, want in zip(names, network.activations(x, names), keras_activations(path, x, names), strict=True):
        assert_close(got, want, name)
    for name, got in zip(names, network.activations(x.astype(np.float64), names), strict=True):
        assert got.dtype == np.float32, name  # float64 images give float32 maps, as in Keras


def test_the_shape_walk_gives_kerass_output_shapes_and_kernels(combined):
    """``layer_config.built`` layer by layer from the input: Keras's ``layer.output.shape`` and its variables'."""
    path, model = combined
    entries = Archive.read(path).config["config"]["layers"]
    shape = (20, 19, 4)
    for entry, layer in zip(entries[1:], model.layers, strict=True):
        out, variables = built(entry, shape)
        assert out == tuple(layer.output.shape[1:]), layer.name
        assert variables == [tuple(w.shape) for w in layer.weights], layer.name
        shape = out
    weights = {layer.name: layer.get_weights() for layer in model.layers}
    assert chain_problem(entries, weights) is None


def test_the_report_table_shows_their_shapes_and_receptive_fields(combined):
    """The model table's shapes are Keras's, every receptive field known, the dilated ones as wide as their
    effective kernels: 5×5 after a 3×3 kernel dilated by 2."""
    from convlens.report.summary import model_summary

    path, model = combined
    rows = model_summary(Archive.read(path))
    assert [r.output_shape for r in rows] == [(None, *layer.output.shape[1:]) for layer in model.layers]
    fields = {r.name: r.field for r in rows}
    assert all(f is not None for f in fields.values())
    assert fields["dil_valid"].size == (5, 5)
    assert fields["group2"].size == (7, 7)  # + 2 per axis
    assert fields["dil_same"].size == (11, 10)  # + (3 - 1)·2 rows, + (2 - 1)·3 columns


def config_of(path) -> dict:
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read("config.json"))


def edited(path, dest, name, **changes):
    """A copy of the archive at ``path`` whose layer ``name`` has ``changes`` in its config."""
    config = copy.deepcopy(config_of(path))
    entry = next(e for e in config["config"]["layers"] if e["config"]["name"] == name)
    entry["config"].update(changes)
    return rewrite(path, dest, config=config)


@pytest.mark.parametrize(
    ("name", "changes", "message"),
    [
        (
            "dil_valid",
            {"strides": [2, 2]},
            r"layer 'dil_valid' of class Conv2D with strides \[2, 2\] and dilation_rate \[2, 2\]",
        ),
        ("group2", {"groups": 3}, r"layer 'group2' of class Conv2D with filters 8 in 3 groups"),
        ("group2", {"groups": 0}, r"layer 'group2' of class Conv2D with groups 0"),
        ("group2", {"dilation_rate": [0, 1]}, r"layer 'group2' of class Conv2D with dilation_rate \[0, 1\]"),
        ("dil_group4", {"groups": 12}, r"layer 'dil_group4' \(Conv2D\) on inputs of shape \(16, 15, 8\)"),
    ],
    ids=["strided-and-dilated", "filters-not-divided", "groups-zero", "dilation-zero", "channels-not-divided"],
)
def test_what_keras_refuses_is_left_to_keras_named(combined, tmp_path, name, changes, message):
    """Keras's constructor refuses strides above 1 with a dilation above 1, groups that do not divide the filters,
    sizes below 1; its build, groups that do not divide the input channels. The numpy pass computes none of them."""
    path = edited(combined[0], tmp_path / "m.keras", name, **changes)
    with pytest.raises(Unsupported, match=f"^{message}$"):
        load_network(Archive.read(path))


def test_images_too_small_for_a_dilated_conv_are_refused_by_its_effective_kernel(keras, tmp_path):
    """A 3×3 kernel dilated by (3, 2) spans 7×5 pixels: images of 6×8 leave its output empty, 7×5 do not."""
    layers = keras.layers
    keras.Sequential(
        [keras.Input((None, None, 1)), layers.Conv2D(2, 3, dilation_rate=(3, 2), name="d"), layers.Flatten()]
    ).save(tmp_path / "open.keras")
    config = config_of(tmp_path / "open.keras")
    line = too_small(config, (6, 8, 1), "m.keras")
    assert (
        line is not None and "its layer 'd' (Conv2D) gets inputs of 6×8 and its output would be empty (0×4×2)" in line
    )
    assert "resize them to at least 7×8" in line
    assert too_small(config, (7, 5, 1), "m.keras") is None


def test_the_untrained_replay_of_a_dilated_and_grouped_model_is_kerass_bit_for_bit(combined, tmp_path):
    """The replay of Keras's initialisation takes these layers now: each grouped kernel's fans are its own
    (kh · kw · C / groups inputs), as Keras's; the weights equal Keras's load-and-clone, byte for byte."""
    from convlens.model.initial import write_untrained
    from convlens.model.keras_models import load_model, load_with_untrained_model

    path = combined[0]
    said = write_untrained(Archive.read(path), 42, tmp_path / "untrained.keras")
    assert said == "Keras's initializers replayed in numpy"
    mine, theirs = load_model(tmp_path / "untrained.keras"), load_with_untrained_model(path, 42)[1]
    for a, b in zip(mine.layers, theirs.layers, strict=True):
        assert [np.asarray(w).tobytes() for w in a.weights] == [np.asarray(w).tobytes() for w in b.weights], a.name


def test_a_model_of_open_input_size_with_a_dilated_grouped_conv_is_computed_by_numpy(keras, tmp_path):
    """An outside tester's model (``keras.Input((None, None, 3))``, a strided stem, a conv both dilated and grouped
    with "same" padding): the numpy pass computes it at the images' size, equal to Keras's."""
    from convlens.model.forward import open_network

    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((None, None, 3)),
            layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="stem"),
            layers.Conv2D(8, 3, dilation_rate=2, groups=2, activation="relu", padding="same", name="dg"),
            layers.AveragePooling2D(2, name="avg"),
            layers.Conv2D(6, 5, activation="elu", name="c"),
            layers.GlobalMaxPooling2D(name="gmp"),
            layers.Dense(3, activation="softmax", name="probs"),
        ]
    )
    randomize_weights(model, 16)
    model.save(tmp_path / "varsize.keras")
    names = [layer.name for layer in model.layers]
    x = np.random.default_rng(17).uniform(0, 1, (3, 32, 30, 3)).astype(np.float32)
    lines: list[str] = []
    network = open_network(Archive.read(tmp_path / "varsize.keras"), names, lines.append, sample=x.shape[1:])
    assert lines == []  # no fallback to Keras, no log line
    want = keras_activations(tmp_path / "varsize.keras", x, names)
    for name, got, expected in zip(names, network.activations(x, names), want, strict=True):
        assert_close(got, expected, name)
