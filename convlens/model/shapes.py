"""Each layer's output shape through a saved model's graph, without TensorFlow: the report's model table for a model
the numpy forward pass does not compute (branches and merges, a depthwise or separable convolution, padding).

Keras's ``compute_output_shape`` in short, from each layer's class, its config and its inputs' shapes. A layer whose
class or config this does not know has no shape here, nor has any layer after it: the table shows "–" there rather
than a guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from convlens.model.layer_config import SHAPE_TABLES, built, layer_problem, positive

Shape = tuple[int, ...]

# output = input: activations, normalizations, noise and dropout, scaling
SAME_SHAPE = (
    "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "BatchNormalization", "LayerNormalization",
    "GroupNormalization", "UnitNormalization", "Normalization", "Rescaling", "Dropout", "SpatialDropout2D",
    "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Identity",
)  # fmt: skip
ELEMENTWISE = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")  # inputs of one shape, that shape


def _pair(value: object) -> tuple[int, int] | None:
    """A positive size or stride setting (one int or two) as (rows, columns); None for anything else."""
    if positive(value):
        return value, value  # type: ignore[return-value]
    if isinstance(value, list) and len(value) == 2 and all(positive(v) for v in value):
        return value[0], value[1]
    return None


def _margins(value: object) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """ZeroPadding2D's ``padding`` or Cropping2D's ``cropping`` (an int, (rows, columns) or ((top, bottom), (left,
    right)), each ≥ 0) as ((top, bottom), (left, right)); None for anything else."""

    def count(v: object) -> bool:
        return type(v) is int and v >= 0

    if count(value):
        return (value, value), (value, value)  # type: ignore[return-value]
    if not isinstance(value, list) or len(value) != 2:
        return None
    if all(count(v) for v in value):
        return (value[0], value[0]), (value[1], value[1])
    if all(isinstance(v, list) and len(v) == 2 and all(count(x) for x in v) for v in value):
        return (value[0][0], value[0][1]), (value[1][0], value[1][1])
    return None


def _windowed(size: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    span = (kernel - 1) * dilation + 1
    return (size + stride - 1) // stride if padding == "same" else (size - span) // stride + 1


def _depthwise(kind: str, config: Mapping[str, object], shape: Shape) -> Shape | None:
    """DepthwiseConv2D (C × ``depth_multiplier`` channels) and SeparableConv2D (``filters``) on an H × W × C input."""
    kernel, strides = _pair(config.get("kernel_size")), _pair(config.get("strides", 1))
    dilation, padding = _pair(config.get("dilation_rate", 1)), config.get("padding", "valid")
    channels = config.get("depth_multiplier", 1) if kind == "DepthwiseConv2D" else config.get("filters")
    if None in (kernel, strides, dilation) or padding not in ("valid", "same") or not positive(channels):
        return None
    if config.get("data_format") not in (None, "channels_last") or len(shape) != 3:
        return None
    rows, columns = (
        _windowed(n, k, s, d, padding)  # type: ignore[arg-type]
        for n, k, s, d in zip(shape[:2], kernel, strides, dilation, strict=True)  # type: ignore[arg-type]
    )
    depth = shape[2] * channels if kind == "DepthwiseConv2D" else channels  # type: ignore[operator]
    return rows, columns, depth  # type: ignore[return-value]


def _positional(kind: str, config: Mapping[str, object], shape: Shape) -> Shape | None:
    """ZeroPadding2D, Cropping2D and UpSampling2D on an H × W × C input."""
    if config.get("data_format") not in (None, "channels_last") or len(shape) != 3:
        return None
    if kind == "UpSampling2D":
        size = _pair(config.get("size", 2))
        return None if size is None else (shape[0] * size[0], shape[1] * size[1], shape[2])
    margins = _margins(config.get("padding" if kind == "ZeroPadding2D" else "cropping", 1))
    if margins is None:
        return None
    sign = 1 if kind == "ZeroPadding2D" else -1
    (top, bottom), (left, right) = margins
    return shape[0] + sign * (top + bottom), shape[1] + sign * (left + right), shape[2]


def _concatenated(config: Mapping[str, object], shapes: Sequence[Shape]) -> Shape | None:
    """Concatenate's output: its inputs joined along ``axis`` (Keras counts the batch axis as 0), equal elsewhere."""
    rank, axis = len(shapes[0]), config.get("axis", -1)
    if type(axis) is not int or any(len(s) != rank for s in shapes) or not -rank <= axis <= rank or axis == 0:
        return None
    axis = axis - 1 if axis > 0 else rank + axis  # without the batch axis
    rest = {s[:axis] + s[axis + 1 :] for s in shapes}
    return (*shapes[0][:axis], sum(s[axis] for s in shapes), *shapes[0][axis + 1 :]) if len(rest) == 1 else None


def layer_output(kind: str, config: dict, shapes: Sequence[Shape]) -> Shape | None:
    """The output shape (batch axis left out) of a layer of class ``kind`` and ``config`` on inputs of ``shapes``;
    None where this module does not know it (a class or a config value it does not read, inputs that do not fit)."""
    if kind == "Concatenate":
        return _concatenated(config, shapes)
    if kind in ELEMENTWISE:
        return shapes[0] if len(set(shapes)) == 1 else None
    if len(shapes) != 1:
        return None
    shape = shapes[0]
    if kind in SAME_SHAPE:
        return shape
    if kind in ("DepthwiseConv2D", "SeparableConv2D"):
        return _depthwise(kind, config, shape)
    if kind in ("ZeroPadding2D", "Cropping2D", "UpSampling2D"):
        return _positional(kind, config, shape)
    if kind in SHAPE_TABLES and layer_problem({"class_name": kind, "config": config}, SHAPE_TABLES) is None:
        return built({"class_name": kind, "config": config}, shape)[0]
    return None


def graph_shapes(layers: Sequence[tuple[str, dict, Sequence[str]]], inputs: Mapping[str, Shape]) -> dict[str, Shape]:
    """Each layer's output shape (batch axis left out) through a model's graph: ``layers`` (class name, config, the
    names of the layers it takes its inputs from) in Keras's order; ``inputs``: the input layers' shapes, sized. A
    layer is left out where its shape is not known (:func:`layer_output`), or is empty, and so is any after it."""
    shapes = dict(inputs)
    for kind, config, inbound in layers:
        if not inbound or any(name not in shapes for name in inbound):
            continue
        out = layer_output(kind, config, [shapes[name] for name in inbound])
        if out is not None and all(type(d) is int and d > 0 for d in out):
            shapes[config["name"]] = out
    return {name: shape for name, shape in shapes.items() if name not in inputs}
