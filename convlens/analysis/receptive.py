"""Receptive fields: which input pixels one position of a layer's feature map can see (issue 24 §4).

From the layers' kernel sizes, strides and padding alone (no weights, no TensorFlow), along the model's chain of
layers: per layer the field's size, the step between neighbouring positions' fields (the jump) and where position
(0, 0)'s field starts in the input (negative where it begins in the padding). The dataset examples use it to cut
the patch around a channel's peak; a layer whose field covers the whole input (Flatten, Dense, global pooling)
sees the whole image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from convlens.errors import ConvlensError
from convlens.model.ops import pair

WINDOWED = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "MaxPooling2D", "AveragePooling2D")
WHOLE = ("Flatten", "Dense", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Reshape")


@dataclass(frozen=True)
class Window:
    """One windowed layer on the way to a field, per axis (rows, columns): its ``kernel`` (dilation included),
    ``strides``, the padding ``before`` its first position, and the ``length`` of its input."""

    kernel: tuple[int, int]
    strides: tuple[int, int]
    before: tuple[int, int]
    length: tuple[int, int]


@dataclass(frozen=True)
class Field:
    """One layer's receptive field in input pixels, per axis (rows, columns): ``size``, the ``jump`` between the
    fields of neighbouring positions, and the input coordinate where position 0's field ``start``s. ``whole``: the
    layer sees the whole input (no positions left). ``windows``: the windowed layers up to it, first first, which
    :meth:`box` follows back to the input."""

    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[int, int]
    whole: bool = False
    windows: tuple[Window, ...] = ()

    def patch(self, row: int, column: int, shape: tuple[int, int]) -> tuple[slice, slice]:
        """The input pixels position (``row``, ``column``) sees, clipped to an input of ``shape`` (H, W)."""
        top, left, bottom, right = self.box(row, column, shape)
        return slice(top, bottom), slice(left, right)

    def box(self, row: int, column: int, shape: tuple[int, int]) -> tuple[int, int, int, int]:
        """:meth:`patch` as a box of input pixels (top, left, bottom, right; bottom and right one past the last),
        clipped to an input of ``shape`` (H, W); the whole input where the layer sees all of it.

        The positions seen are followed back layer by layer, each step clipped to that layer's input: a window
        that reaches into one layer's padding sees nothing there, so a field can end before the image does (a
        'same' layer after a 'valid' one that dropped the image's last rows). Without ``windows``: the field
        ``start + position × jump`` .. ``+ size``, clipped to the image."""
        if self.whole:
            return 0, 0, shape[0], shape[1]
        spans = []
        for axis, position in enumerate((row, column)):
            if self.windows:
                first = last = position
                for w in reversed(self.windows):
                    step, before = w.strides[axis], w.before[axis]
                    first = max(first * step - before, 0)
                    last = min(last * step - before + w.kernel[axis] - 1, w.length[axis] - 1)
                spans.append((first, min(last + 1, shape[axis])))
            else:
                first = self.start[axis] + position * self.jump[axis]
                spans.append((max(first, 0), min(first + self.size[axis], shape[axis])))
        return spans[0][0], spans[1][0], spans[0][1], spans[1][1]


def peak_boxes(field: Field | None, rows: np.ndarray, columns: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The input box (:meth:`Field.box`) of each map position (``rows``, ``columns``, any shape, e.g. k × channels):
    an int array of that shape × 4 (top, left, bottom, right). A layer whose field is not known (``None``: not one
    chain of layers) gets the whole input, as a layer that sees all of it does."""
    rows, columns = np.asarray(rows, np.int64), np.asarray(columns, np.int64)
    if rows.shape != columns.shape:
        raise ConvlensError(f"{rows.shape} rows do not pair with {columns.shape} columns")
    field = field or Field((1, 1), (1, 1), (0, 0), whole=True)
    boxes = [field.box(int(r), int(c), shape) for r, c in zip(rows.ravel(), columns.ravel(), strict=True)]
    return np.array(boxes, np.int64).reshape(*rows.shape, 4)


def _window(kind: str, config: dict) -> tuple[tuple[int, int], tuple[int, int]]:
    """A windowed layer's kernel (the effective one, dilation included) and strides."""
    if kind.endswith("Pooling2D"):
        size = pair(config["pool_size"])
        return size, pair(config.get("strides") or size)
    kernel, dilation = pair(config["kernel_size"]), pair(config.get("dilation_rate", 1))
    return (
        ((kernel[0] - 1) * dilation[0] + 1, (kernel[1] - 1) * dilation[1] + 1),
        pair(config.get("strides", 1)),
    )


def receptive_fields(layers: Sequence[tuple[str, dict]], input_size: tuple[int, int]) -> dict[str, Field]:
    """Each layer's :class:`Field` along a chain of ``layers`` (class name, Keras config), for an input of
    ``input_size`` (H, W): TensorFlow's ``same`` padding puts the odd pixel of padding after, and depends on the
    size of the layer's input, which is followed through the chain. A layer that does not move pixels (an
    activation, normalization, dropout, rescaling) keeps the field before it."""
    size, jump, start, whole = (1, 1), (1, 1), (0, 0), False
    length = input_size
    windows: tuple[Window, ...] = ()
    fields: dict[str, Field] = {}
    for kind, config in layers:
        if whole or kind in WHOLE:
            whole = True
        elif kind in WINDOWED:
            kernel, strides = _window(kind, config)
            padding = config.get("padding", "valid")
            new_size, new_jump, new_start, new_length, new_before = [], [], [], [], []
            for axis in range(2):
                k, s, n = kernel[axis], strides[axis], length[axis]
                if padding == "same":
                    out = math.ceil(n / s)
                    before = max((out - 1) * s + k - n, 0) // 2
                else:
                    out, before = (n - k) // s + 1, 0
                new_size.append(size[axis] + (k - 1) * jump[axis])
                new_start.append(start[axis] - before * jump[axis])
                new_jump.append(jump[axis] * s)
                new_length.append(out)
                new_before.append(before)
            windows = (*windows, Window(kernel, strides, (new_before[0], new_before[1]), length))
            size, jump, start = (new_size[0], new_size[1]), (new_jump[0], new_jump[1]), (new_start[0], new_start[1])
            length = (new_length[0], new_length[1])
        fields[config["name"]] = Field(size, jump, start, whole, windows)
    return fields
