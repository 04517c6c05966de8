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

from convlens.model.ops import pair

WINDOWED = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "MaxPooling2D", "AveragePooling2D")
WHOLE = ("Flatten", "Dense", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Reshape")


@dataclass(frozen=True)
class Field:
    """One layer's receptive field in input pixels, per axis (rows, columns): ``size``, the ``jump`` between the
    fields of neighbouring positions, and the input coordinate where position 0's field ``start``s. ``whole``: the
    layer sees the whole input (no positions left)."""

    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[int, int]
    whole: bool = False

    def patch(self, row: int, column: int, shape: tuple[int, int]) -> tuple[slice, slice]:
        """The input pixels position (``row``, ``column``) sees, clipped to an input of ``shape`` (H, W)."""
        if self.whole:
            return slice(0, shape[0]), slice(0, shape[1])
        spans = []
        for position, start, jump, size, length in zip(
            (row, column), self.start, self.jump, self.size, shape, strict=True
        ):
            first = start + position * jump
            spans.append(slice(max(first, 0), min(first + size, length)))
        return spans[0], spans[1]


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
    fields: dict[str, Field] = {}
    for kind, config in layers:
        if whole or kind in WHOLE:
            whole = True
        elif kind in WINDOWED:
            kernel, strides = _window(kind, config)
            padding = config.get("padding", "valid")
            new_size, new_jump, new_start, new_length = [], [], [], []
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
            size, jump, start = (new_size[0], new_size[1]), (new_jump[0], new_jump[1]), (new_start[0], new_start[1])
            length = (new_length[0], new_length[1])
        fields[config["name"]] = Field(size, jump, start, whole)
    return fields
