"""Receptive fields (issue 24 §4): the book's model by a hand count, and the patch of each position against the
pixels a Keras model's output really depends on (its gradient's support), with strides and valid padding."""

from __future__ import annotations

import numpy as np
import pytest

from convlens.analysis.receptive import Field, receptive_fields
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


@pytest.mark.parametrize("chain", list(CHAINS))
def test_each_positions_patch_is_the_support_of_its_gradient(chain):
    """Linear layers with positive weights (average pooling: every pixel of a window counts), so the pixels a
    position depends on are exactly its field, clipped to the image."""
    from convlens.model.keras_models import keras, tf

    layers, size = CHAINS[chain], (17, 15)
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
    fields = receptive_fields(layers, size)
    x = tf.Variable(np.ones((1, *size, 1), np.float32))
    for layer in model.layers:
        with tf.GradientTape(persistent=True) as tape:
            out = keras.Model(model.inputs, layer.output)(x)
            positions = {(r, c): out[0, r, c, 0] for r in range(out.shape[1]) for c in range(out.shape[2])}
        field: Field = fields[layer.name]
        for (row, column), value in positions.items():
            grad = tape.gradient(value, x).numpy()[0, :, :, 0]
            rows, columns = np.nonzero(grad)
            got = (slice(rows.min(), rows.max() + 1), slice(columns.min(), columns.max() + 1))
            assert got == field.patch(row, column, size), (chain, layer.name, row, column)
        del tape
