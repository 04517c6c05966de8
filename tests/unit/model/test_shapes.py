"""Output shapes through a model's graph without TensorFlow (``model.shapes``): every layer's against the shape of
what Keras computes for it, on branching models of the kinds an engineer's own CNN has."""

from __future__ import annotations

import numpy as np
import pytest

from convlens.model.archive import Archive
from convlens.model.graph import model_graph
from convlens.model.shapes import graph_shapes, layer_output


def keras_shapes(model, sample):
    """Each layer's output shape (batch axis left out) as Keras computes it on one image of shape ``sample``."""
    from convlens.model.keras_models import keras

    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    probe = keras.Model(model.inputs, [layer.output for layer in layers])
    outputs = probe(np.zeros((1, *sample), np.float32))
    outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
    return {layer.name: tuple(int(d) for d in out.shape[1:]) for layer, out in zip(layers, outputs, strict=True)}


def our_shapes(path, sample):
    layers, inputs = model_graph(Archive.read(path).config)
    return graph_shapes(layers, dict.fromkeys(inputs, tuple(sample)))


def branching_model(size):
    """Strides 2 with 'same' padding, BN, a residual Add of a plain and a depthwise-separable branch, a Concatenate
    with the stem, padding, cropping, upsampling, pooling, a dilated conv, LayerNormalization, then the head."""
    from convlens.model.keras_models import keras

    layers = keras.layers
    x = keras.Input(size)
    stem = layers.Conv2D(8, 3, strides=2, padding="same", name="stem")(x)
    stem = layers.ReLU(name="relu")(layers.BatchNormalization(name="bn")(stem))
    plain = layers.Conv2D(8, 3, padding="same", activation="relu", name="plain")(stem)
    dw = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw")(stem)
    sep = layers.SeparableConv2D(8, (3, 1), padding="same", name="sep")(dw)
    add = layers.Add(name="add")([plain, sep])
    cat = layers.Concatenate(name="cat")([add, stem])
    y = layers.ZeroPadding2D(((1, 2), (0, 3)), name="pad")(cat)
    y = layers.Cropping2D(((1, 0), (2, 1)), name="crop")(y)
    y = layers.UpSampling2D((2, 1), name="up")(y)
    y = layers.MaxPooling2D(2, name="pool")(y)
    y = layers.Conv2D(6, 3, dilation_rate=2, name="dilated")(y)
    y = layers.LeakyReLU(name="leaky")(layers.LayerNormalization(name="ln")(y))
    y = layers.DepthwiseConv2D((2, 3), strides=(1, 2), name="dw_valid")(y)
    y = layers.Dense(4, name="head")(layers.GlobalAveragePooling2D(name="gap")(y))
    return keras.Model(x, y)


def merges_model(size):
    """Concatenate along the rows and the columns, Average, Multiply, Maximum, Subtract; Flatten and Reshape."""
    from convlens.model.keras_models import keras

    layers = keras.layers
    x = keras.Input(size)
    a = layers.Conv2D(4, 3, padding="same", name="a")(x)
    b = layers.Conv2D(4, 3, padding="same", name="b")(x)
    rows = layers.Concatenate(axis=1, name="rows")([a, b])
    columns = layers.Concatenate(axis=-2, name="columns")([a, b])
    mixed = layers.Average(name="average")([layers.Multiply(name="times")([a, b]), layers.Maximum(name="max")([a, b])])
    diff = layers.Subtract(name="diff")([mixed, a])
    flat = layers.Flatten(name="flat")(layers.AveragePooling2D(2, name="avg")(diff))
    out = layers.Reshape((-1, 4), name="reshape")(flat)
    return keras.Model(x, [rows, columns, out])


@pytest.mark.parametrize(
    ("build", "size", "sample"),
    [
        (branching_model, (37, 45, 3), (37, 45, 3)),
        (branching_model, (None, None, 3), (30, 40, 3)),
        (merges_model, (12, 10, 1), (12, 10, 1)),
    ],
    ids=["branching", "branching-open-size", "merges"],
)
def test_every_layer_shape_through_the_graph_is_the_one_keras_computes(tmp_path, build, size, sample):
    model = build(size)
    path = tmp_path / "model.keras"
    model.save(path)
    want = keras_shapes(model, sample)
    assert our_shapes(path, sample) == want


def test_a_sequential_model_is_one_chain_of_the_same_shapes(tmp_path):
    from convlens.model.keras_models import keras

    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.ZeroPadding2D(2, name="pad"),
            layers.SeparableConv2D(5, 5, strides=2, name="sep"),
            layers.UpSampling2D(name="up"),
            layers.Cropping2D(3, name="crop"),
            layers.Flatten(name="flat"),
            layers.Dense(3, name="head"),
        ]
    )
    path = tmp_path / "seq.keras"
    model.save(path)
    assert our_shapes(path, (28, 28, 1)) == keras_shapes(model, (28, 28, 1))


IMAGE = [(8, 8, 2)]


@pytest.mark.parametrize(
    ("kind", "config", "shapes"),
    [
        ("DepthwiseConv2D", {"name": "d", "kernel_size": "3"}, IMAGE),
        ("DepthwiseConv2D", {"name": "d", "kernel_size": 3, "depth_multiplier": 0}, IMAGE),
        ("SeparableConv2D", {"name": "s", "kernel_size": 3, "filters": 4, "padding": "full"}, IMAGE),
        (
            "SeparableConv2D",
            {"name": "s", "kernel_size": 3, "filters": 4, "data_format": "channels_first"},
            [(8, 8, 2)],
        ),
        ("Cropping2D", {"name": "c", "cropping": -1}, IMAGE),
        ("ZeroPadding2D", {"name": "z", "padding": [[1, 2], [3]]}, IMAGE),
        ("UpSampling2D", {"name": "u", "size": [2, 0]}, IMAGE),
        ("Concatenate", {"name": "c", "axis": 0}, [(8, 8, 2), (8, 8, 2)]),
        ("Concatenate", {"name": "c", "axis": -1}, [(8, 8, 2), (8, 7, 2)]),
        ("Add", {"name": "a"}, [(8, 8, 2), (8, 8, 3)]),
        (
            "Conv2D",
            {"name": "c", "filters": 4, "kernel_size": 3, "strides": 1, "padding": "valid", "x": 1},
            [(8, 8, 2)],
        ),
        ("Lambda", {"name": "l"}, IMAGE),
        ("ReLU", {"name": "r"}, [(8, 8, 2), (8, 8, 2)]),
    ],
)
def test_a_config_value_or_inputs_it_does_not_read_give_no_shape(kind, config, shapes):
    """A hostile or unknown value is no guess: the table shows "–" there, and after it."""
    assert layer_output(kind, config, shapes) is None


def test_a_layer_after_one_of_unknown_shape_has_none_and_an_empty_output_is_none():
    layers = [
        ("Lambda", {"name": "odd"}, ["input"]),
        ("ReLU", {"name": "after"}, ["odd"]),
        ("Conv2D", {"name": "big", "filters": 2, "kernel_size": 9, "strides": 1, "padding": "valid"}, ["input"]),
        ("ReLU", {"name": "fine"}, ["input"]),
    ]
    assert graph_shapes(layers, {"input": (5, 5, 1)}) == {"fine": (5, 5, 1)}
