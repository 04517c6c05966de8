"""Receptive fields (issue 24 §4): the book's model by a hand count, and the patch of each position against the
pixels a Keras model's output really depends on (its gradient's support), with strides and valid padding."""

from __future__ import annotations

import numpy as np
import pytest

from convlens.analysis.receptive import UNKNOWN_BOX, Field, peak_boxes, receptive_fields
from convlens.model.archive import Archive
from tests.support.helpers import MIRROR


def conv(name: str, k: int, s: int = 1, padding: str = "same") -> tuple[str, dict]:
    return "Conv2D", {"name": name, "kernel_size": [k, k], "strides": [s, s], "padding": padding}


def pool(name: str, k: int = 2, kind: str = "MaxPooling2D", padding: str = "valid") -> tuple[str, dict]:
    return kind, {"name": name, "pool_size": [k, k], "strides": None, "padding": padding}


BOOK = [
    conv("conv2d", 3),
    pool("max_pooling2d"),
    conv("conv2d_1", 3),
    pool("max_pooling2d_1"),
    ("Flatten", {"name": "flatten"}),
    ("Dense", {"name": "dense"}),
]


def test_the_book_models_fields_are_the_hand_count():
    fields = receptive_fields(BOOK, (28, 28))
    sizes = {name: f.size for name, f in fields.items() if not f.whole}
    assert sizes == {"conv2d": (3, 3), "max_pooling2d": (4, 4), "conv2d_1": (8, 8), "max_pooling2d_1": (10, 10)}
    assert [fields[n].jump[0] for n in ("conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1")] == [1, 2, 2, 4]
    # conv2d's 'same' padding: position 0's 3×3 field starts one pixel before the image
    assert fields["conv2d"].start == (-1, -1) and fields["conv2d_1"].start == (-3, -3)
    assert fields["flatten"].whole and fields["dense"].whole
    assert fields["max_pooling2d_1"].patch(6, 6, (28, 28)) == (slice(21, 28), slice(21, 28))  # clipped at the edge
    assert fields["dense"].patch(0, 0, (28, 28)) == (slice(0, 28), slice(0, 28))


@pytest.mark.mirror
@pytest.mark.skipif(not MIRROR.is_dir(), reason="needs ../shared/mirror")
def test_the_book_models_own_config_gives_the_same_fields():
    config = Archive.read(MIRROR / "best-cnn-model.keras").config
    layers = [(e["class_name"], e["config"]) for e in config["config"]["layers"] if e["class_name"] != "InputLayer"]
    fields = receptive_fields(layers, (28, 28))
    assert [fields[n].size for n in ("conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1")] == [
        (3, 3), (4, 4), (8, 8), (10, 10),
    ]  # fmt: skip


CHAINS = {
    "strided valid": [conv("a", 3, 2, "valid"), conv("b", 3, 1, "same"), pool("c", 2, "AveragePooling2D")],
    "same strided": [conv("a", 5, 2, "same"), pool("b", 3, "AveragePooling2D", "same"), conv("c", 2, 1, "valid")],
}


def gradient_boxes(layers: list[tuple[str, dict]], size: tuple[int, int]) -> dict[str, np.ndarray]:
    """Per layer of a Keras model built from ``layers`` (convolutions of ones, average pooling: every pixel of a
    window counts, so the pixels a position depends on are exactly its field), each position's box (top, left,
    bottom, right) of the input pixels its gradient is not zero at: rows × columns × 4."""
    from convlens.model.keras_models import keras, tf

    model = keras.Sequential([keras.Input((*size, 1))])
    for kind, config in layers:
        if kind == "Conv2D":
            model.add(
                keras.layers.Conv2D(1, config["kernel_size"], config["strides"], config["padding"], name=config["name"],
                                    kernel_initializer="ones", use_bias=False)
            )  # fmt: skip
        else:
            model.add(
                keras.layers.AveragePooling2D(config["pool_size"], padding=config["padding"], name=config["name"])
            )
    x = tf.Variable(np.ones((1, *size, 1), np.float32))
    boxes = {}
    for layer in model.layers:
        with tf.GradientTape(persistent=True) as tape:
            out = keras.Model(model.inputs, layer.output)(x)
            positions = {(r, c): out[0, r, c, 0] for r in range(out.shape[1]) for c in range(out.shape[2])}
        found = np.zeros((out.shape[1], out.shape[2], 4), np.int64)
        for (row, column), value in positions.items():
            rows, columns = np.nonzero(tape.gradient(value, x).numpy()[0, :, :, 0])
            found[row, column] = rows.min(), columns.min(), rows.max() + 1, columns.max() + 1
        boxes[layer.name] = found
        del tape
    return boxes


@pytest.mark.parametrize("chain", list(CHAINS))
def test_each_positions_patch_is_the_support_of_its_gradient(chain):
    layers, size = CHAINS[chain], (17, 15)
    fields = receptive_fields(layers, size)
    for name, boxes in gradient_boxes(layers, size).items():
        field: Field = fields[name]
        for (row, column), _ in np.ndenumerate(boxes[:, :, 0]):
            top, left, bottom, right = boxes[row, column]
            assert field.patch(row, column, size) == (slice(top, bottom), slice(left, right)), (
                chain,
                name,
                row,
                column,
            )


def test_a_peaks_input_box_is_the_support_of_its_gradient_with_strides_and_valid_padding():
    """The box the dataset examples cut around a peak (``peak_boxes``, every position of each layer at once) is the
    pixels that position's gradient reaches, on a model with strides and valid padding whose fields pass the edge."""
    layers = [conv("a", 4, 3, "valid"), pool("b", 2, "AveragePooling2D"), conv("c", 3, 2, "same")]
    size = (23, 19)
    fields = receptive_fields([*layers, ("Flatten", {"name": "flat"})], size)
    for name, want in gradient_boxes(layers, size).items():
        rows, columns = np.indices(want.shape[:2])
        np.testing.assert_array_equal(peak_boxes(fields[name], rows, columns, size), want, err_msg=name)
    assert fields["c"].size == (19, 19) and fields["c"].jump == (12, 12)  # 4, + 1·3 (b), + 2·6 (c)
    # c's lower positions reach into its 'same' padding past b's last row, and b sees the image only down to row 18
    # of 23 (a's 'valid' windows and b's pooling drop the rest): the box ends there, not at the image's edge
    assert fields["c"].box(1, 1, size) == (6, 6, 19, 19)
    whole = np.array([[[0, 0, 23, 19]]])  # a layer that sees the whole input
    np.testing.assert_array_equal(peak_boxes(fields["flat"], np.zeros((1, 1)), np.zeros((1, 1)), size), whole)
    unknown = peak_boxes(None, np.zeros((2, 1)), np.zeros((2, 1)), size)  # not known: never the whole image
    assert unknown.shape == (2, 1, 4) and (unknown == UNKNOWN_BOX).all()
