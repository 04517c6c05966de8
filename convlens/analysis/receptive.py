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
from dataclasses import dataclass, replace

import numpy as np

from convlens.errors import ConvlensError
from convlens.model.ops import pair
from convlens.model.shapes import SAME_SHAPE

WINDOWED = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "MaxPooling2D", "AveragePooling2D")
WHOLE = ("Flatten", "Dense", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Reshape")
# layers that join their inputs position by position (Concatenate along the channels): the union of their fields
MERGES = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate")
# layers that keep each position where it is (the field before them), in a model's graph: those whose output has
# their input's shape; any other kind there (a ZeroPadding2D, an UpSampling2D, a nested model) leaves its field and
# those after it unknown
KEEPS = SAME_SHAPE


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
    base: tuple[Field, ...] = ()  # the fields a merge joined before ``windows`` (none: the windows start at the input)

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
        if self.base:  # after a merge: the union of what its inputs' fields see of the positions the windows reach
            ranges = [self._back(position, axis) for axis, position in enumerate((row, column))]
            firsts = [b.box(ranges[0][0], ranges[1][0], shape) for b in self.base]
            lasts = [b.box(ranges[0][1], ranges[1][1], shape) for b in self.base]
            return (
                min(f[0] for f in firsts),
                min(f[1] for f in firsts),
                max(last[2] for last in lasts),
                max(last[3] for last in lasts),
            )
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

    def _back(self, position: int, axis: int) -> tuple[int, int]:
        """The first and last positions of the layer the windows start from (a merge's) that ``position`` sees."""
        first = last = position
        for w in reversed(self.windows):
            step, before = w.strides[axis], w.before[axis]
            first = max(first * step - before, 0)
            last = min(last * step - before + w.kernel[axis] - 1, w.length[axis] - 1)
        return first, last


UNKNOWN_BOX = -1  # peak_boxes' box of a layer whose field is not known: never the whole image, which it may not see


def peak_boxes(field: Field | None, rows: np.ndarray, columns: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The input box (:meth:`Field.box`) of each map position (``rows``, ``columns``, any shape, e.g. k × channels):
    an int array of that shape × 4 (top, left, bottom, right). A layer whose field is not known (``None``: a layer
    kind whose window convlens does not know, or after one) gets :data:`UNKNOWN_BOX` everywhere."""
    rows, columns = np.asarray(rows, np.int64), np.asarray(columns, np.int64)
    if rows.shape != columns.shape:
        raise ConvlensError(f"{rows.shape} rows do not pair with {columns.shape} columns")
    if field is None:
        return np.full((*rows.shape, 4), UNKNOWN_BOX, np.int64)
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
    field, length = Field((1, 1), (1, 1), (0, 0)), input_size
    fields: dict[str, Field] = {}
    for kind, config in layers:
        if field.whole or kind in WHOLE:
            field = replace(field, whole=True)
        elif kind in WINDOWED:
            field, length = _windowed(field, kind, config, length)
        fields[config["name"]] = field
    return fields


def _windowed(field: Field, kind: str, config: dict, length: tuple[int, int]) -> tuple[Field, tuple[int, int]]:
    """``field`` through one windowed layer whose input is ``length`` (H, W) positions: its field and output length."""
    kernel, strides = _window(kind, config)
    padding = config.get("padding", "valid")
    size, jump, start, out, before = [], [], [], [], []
    for axis in range(2):
        k, s, n = kernel[axis], strides[axis], length[axis]
        if padding == "same":
            o = math.ceil(n / s)
            b = max((o - 1) * s + k - n, 0) // 2
        else:
            o, b = (n - k) // s + 1, 0
        size.append(field.size[axis] + (k - 1) * field.jump[axis])
        start.append(field.start[axis] - b * field.jump[axis])
        jump.append(field.jump[axis] * s)
        out.append(o)
        before.append(b)
    window = Window(kernel, strides, (before[0], before[1]), length)
    moved = Field(
        (size[0], size[1]), (jump[0], jump[1]), (start[0], start[1]), False, (*field.windows, window), field.base
    )
    return moved, (out[0], out[1])


def _merged(fields: Sequence[Field]) -> Field | None:
    """The field of a merge of ``fields`` (the same positions): what any of them sees; ``None`` where their jumps
    differ (no one size and start hold for every position)."""
    if any(f.whole for f in fields):
        return Field((1, 1), (1, 1), (0, 0), whole=True)
    if len({f.jump for f in fields}) != 1:
        return None
    start = tuple(min(f.start[a] for f in fields) for a in range(2))
    end = tuple(max(f.start[a] + f.size[a] for f in fields) for a in range(2))
    size = (end[0] - start[0], end[1] - start[1])
    return Field(size, fields[0].jump, (start[0], start[1]), False, (), tuple(fields))


def graph_fields(
    layers: Sequence[tuple[str, dict, Sequence[str]]], inputs: Sequence[str], input_size: tuple[int, int]
) -> dict[str, Field]:
    """Each layer's :class:`Field` in a model's graph: ``layers`` (class name, Keras config, the names of the layers
    it takes its inputs from) in Keras's order, every input first; ``inputs``: the model's input layers' names, of
    ``input_size`` (H, W). A merge (:data:`MERGES`) sees what any of its inputs sees; a layer of a kind neither
    windowed, merging, flattening nor keeping positions (:data:`KEEPS`) has no field, nor has any layer after it."""
    start = Field((1, 1), (1, 1), (0, 0))
    fields: dict[str, Field] = dict.fromkeys(inputs, start)
    lengths: dict[str, tuple[int, int]] = dict.fromkeys(inputs, input_size)
    for kind, config, inbound in layers:
        name = config["name"]
        if not inbound or any(i not in fields for i in inbound):
            continue  # after a layer whose field is not known
        known = [fields[i] for i in inbound]
        if len(inbound) > 1 or kind in MERGES:
            axis = config.get("axis", -1)
            same = len({lengths[i] for i in inbound}) == 1
            field = _merged(known) if kind in MERGES and same and (kind != "Concatenate" or axis in (-1, 3)) else None
            if field is not None:
                fields[name], lengths[name] = field, lengths[inbound[0]]
        elif known[0].whole or kind in WHOLE:
            fields[name], lengths[name] = replace(known[0], whole=True), (1, 1)
        elif kind in WINDOWED:
            fields[name], lengths[name] = _windowed(known[0], kind, config, lengths[inbound[0]])
        elif kind in KEEPS:
            fields[name], lengths[name] = known[0], lengths[inbound[0]]
    return fields
