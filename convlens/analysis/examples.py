"""Dataset examples: per channel, the k images of a split that activate it most (Olah et al., Distill 2017).

Streamed like the other dataset statistics: each batch's per-image scores (the channel's max or mean over
positions) are merged into a running top k per channel, so memory holds k images per channel whatever the
split's size. Ties go to the lower image index, so the result never depends on the batch size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from convlens.analysis.stats import as_number
from convlens.errors import ConvlensError
from convlens.render.grids import grid_shape, mosaic
from convlens.schema import EXAMPLE_MODES


def check_examples(k: int, by: str) -> None:
    """``dataset.examples``: k at least 1, ``by`` one of :data:`EXAMPLE_MODES`."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConvlensError(f"dataset.examples.k must be at least 1, got {k!r}")
    if by not in EXAMPLE_MODES:
        raise ConvlensError(f"dataset.examples.by={by!r} is not one of {', '.join(EXAMPLE_MODES)}")


def image_scores(maps: np.ndarray, by: str) -> np.ndarray:
    """Per image and channel, one score (N, C) of a batch of activations (N, …, C): its max or mean over positions."""
    check_examples(1, by)
    per_image = maps.reshape(len(maps), -1, maps.shape[-1])
    if by == "max":
        return per_image.max(axis=1)
    positions = per_image.shape[1]  # the mean as ChannelAccumulator computes it: top_image_mean is rank 0's
    return ((np.ones(positions, np.float32) @ per_image).astype(np.float64) / positions).astype(np.float32)


MAX_IMAGES = 1 << 32  # image indices fit the low 32 bits of a sort key


def sort_keys(scores: np.ndarray, first_image: int) -> np.ndarray:
    """One unsigned 64-bit key per score (N, C) of the images ``first_image`` .. ``first_image + N − 1``, ordered as
    (score descending, image index ascending) orders them: the float32 score's bits made monotonic in the high half,
    the image index complemented in the low half. Every key is distinct, so the k largest are one set, ties or not.
    """
    bits = (scores.astype(np.float32) + np.float32(0)).view(np.uint32).astype(np.uint64)  # + 0: −0.0 becomes 0.0
    monotonic = np.where(bits >> 31, ~bits & 0xFFFFFFFF, bits | 0x80000000)  # negatives flipped, positives on top
    images = np.arange(first_image, first_image + len(scores), dtype=np.uint64)[:, np.newaxis]
    return (monotonic << 32) | (0xFFFFFFFF - images)


def decode_keys(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The float32 scores and the image indices that :func:`sort_keys` packed."""
    monotonic = keys >> 32
    bits = np.where(monotonic >> 31, monotonic & 0x7FFFFFFF, ~monotonic & 0xFFFFFFFF).astype(np.uint32)
    return bits.view(np.float32), (0xFFFFFFFF - (keys & 0xFFFFFFFF)).astype(np.int64)


class RunningTopK:
    """The ``k`` highest scores per channel seen so far and their image indices.

    Each :meth:`update` packs the batch's scores and image indices into distinct sort keys (:func:`sort_keys`)
    and keeps, per channel, the k largest of the kept keys and the batch's (``argpartition``: linear in k + batch
    rows, microseconds beside the forward pass). Equal scores go to the lower image index, whatever the batches.
    """

    def __init__(self, k: int, channels: int) -> None:
        check_examples(k, EXAMPLE_MODES[0])
        self.k = k
        self.keys = np.empty((0, channels), np.uint64)
        self.seen = 0  # images streamed so far: the next batch's first index

    def update(self, scores: np.ndarray) -> None:
        """Merge one batch's scores (N, C) of the images ``seen`` .. ``seen + N − 1``."""
        if scores.ndim != 2 or scores.shape[1] != self.keys.shape[1]:
            raise ConvlensError(f"scores of shape {scores.shape} do not fit {self.keys.shape[1]} channels")
        if self.seen + len(scores) > MAX_IMAGES:
            raise ConvlensError(f"more than {MAX_IMAGES:,} images; use dataset.limit")
        pool = np.concatenate([self.keys, sort_keys(scores, self.seen)])
        self.seen += len(scores)
        if len(pool) > self.k:
            pool = np.take_along_axis(pool, np.argpartition(pool, len(pool) - self.k, axis=0)[-self.k :], axis=0)
        self.keys = pool

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """Scores (float32) and image indices, (k, C) each, rank 0 first; fewer rows while fewer than k images were
        seen."""
        return decode_keys(np.sort(self.keys, axis=0)[::-1])


def example_rows(layer: str, scores: np.ndarray, images: np.ndarray, labels: np.ndarray) -> list[dict[str, object]]:
    """The CSV table: one row per channel and rank (layer, channel, rank, image, label, activation)."""

    return [
        {
            "layer": layer,
            "channel": c,
            "rank": r,
            "image": int(images[r, c]),
            "label": int(labels[images[r, c]]),
            "activation": as_number(scores[r, c]),
        }
        for c in range(scores.shape[1])
        for r in range(scores.shape[0])
    ]


@dataclass(frozen=True)
class ExamplesGrid:
    """A layer's dataset examples as one mosaic image, its grid of tiles (rows × columns), one tile's size in
    pixels (height, width; its caption band included), the caption band's height and the gutter between tiles."""

    image: np.ndarray
    grid: tuple[int, int]
    tile: tuple[int, int]
    band: int
    gutter: int


def examples_grid(pictures: np.ndarray, columns: int | None = None) -> ExamplesGrid:
    """``pictures`` (channels, k, h, w) in [0, 1] as one mosaic: per channel a tile holding its k images (a
    near-square sub-mosaic, best first, row by row) above a blank band for its caption, tiles a wider gutter apart
    (NaN, drawn white). Colour pictures (channels, k, h, w, 3) make a colour mosaic (…, 3)."""
    channels, k, h = pictures.shape[:3]
    inner = grid_shape(k, math.ceil(math.sqrt(k)))
    band, gutter = max(4, h // 3), max(2, h // 4)
    blocks = [mosaic(p, inner, gutter=1) for p in pictures]
    tiles = np.stack([np.vstack([b, np.full((band, *b.shape[1:]), np.nan)]) for b in blocks])
    grid = grid_shape(channels, columns)
    return ExamplesGrid(mosaic(tiles, grid, gutter), grid, tiles.shape[1:3], band, gutter)


def majority_caption(channel: int, labels: Sequence[int], classes: Sequence[str]) -> str:
    """A tile's caption: its channel index and its images' most frequent class, with how many of the k."""
    counts = np.bincount(np.asarray(labels, np.int64), minlength=len(classes))
    top = int(counts.argmax())  # the lowest class index among equally frequent ones
    name = classes[top] if top < len(classes) else str(top)
    return f"{channel}: {name} {counts[top]}/{len(labels)}"
