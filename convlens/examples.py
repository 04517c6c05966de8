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

from .errors import ConvlensError
from .grids import grid_shape, mosaic
from .schema import EXAMPLE_MODES


def image_scores(maps: np.ndarray, by: str) -> np.ndarray:
    """Per image and channel, one score (N, C) of a batch of activations (N, …, C): its max or mean over positions."""
    if by not in EXAMPLE_MODES:
        raise ConvlensError(f"dataset.examples.by={by!r} is not one of {', '.join(EXAMPLE_MODES)}")
    per_image = maps.reshape(len(maps), -1, maps.shape[-1])
    if by == "max":
        return per_image.max(axis=1)
    positions = per_image.shape[1]  # the mean as ChannelAccumulator computes it: top_image_mean is rank 0's
    return ((np.ones(positions, np.float32) @ per_image).astype(np.float64) / positions).astype(np.float32)


class RunningTopK:
    """The ``k`` highest scores per channel seen so far and their image indices, best first.

    Each :meth:`update` sorts the kept rows and the batch's rows together per channel (a stable sort of at most
    k + batch rows: microseconds beside the forward pass) and keeps the first k. The kept rows stay sorted by
    score, then by image index, and come before the batch's (higher) indices, so a stable sort keeps equal scores
    in image order: ties go to the lower index, whatever the batches.
    """

    def __init__(self, k: int, channels: int) -> None:
        if k < 1:
            raise ConvlensError(f"dataset.examples.k must be at least 1, got {k}")
        self.k = k
        self.scores = np.empty((0, channels), np.float32)
        self.images = np.empty((0, channels), np.int64)
        self.seen = 0  # images streamed so far: the next batch's first index

    def update(self, scores: np.ndarray) -> None:
        """Merge one batch's scores (N, C) of the images ``seen`` .. ``seen + N − 1``."""
        if scores.ndim != 2 or scores.shape[1] != self.scores.shape[1]:
            raise ConvlensError(f"scores of shape {scores.shape} do not fit {self.scores.shape[1]} channels")
        batch_images = np.broadcast_to(np.arange(self.seen, self.seen + len(scores))[:, np.newaxis], scores.shape)
        self.seen += len(scores)
        pool = np.concatenate([self.scores, scores.astype(np.float32, copy=False)])
        images = np.concatenate([self.images, batch_images])
        order = np.argsort(-pool, axis=0, kind="stable")[: self.k]  # NaN (never expected) sorts last
        self.scores = np.take_along_axis(pool, order, axis=0)
        self.images = np.take_along_axis(images, order, axis=0)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """Scores and image indices, (k, C) each, rank 0 first; fewer rows while fewer than k images were seen."""
        return self.scores, self.images


def example_rows(layer: str, scores: np.ndarray, images: np.ndarray, labels: np.ndarray) -> list[dict[str, object]]:
    """The CSV table: one row per channel and rank (layer, channel, rank, image, label, activation)."""
    from .stats import as_number

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
    (NaN, drawn white)."""
    channels, k, h, _ = pictures.shape
    inner = grid_shape(k, math.ceil(math.sqrt(k)))
    band, gutter = max(4, h // 3), max(2, h // 4)
    blocks = [mosaic(p, inner, gutter=1) for p in pictures]
    tiles = np.stack([np.vstack([b, np.full((band, b.shape[1]), np.nan)]) for b in blocks])
    grid = grid_shape(channels, columns)
    return ExamplesGrid(mosaic(tiles, grid, gutter), grid, tiles.shape[1:], band, gutter)


def majority_caption(channel: int, labels: Sequence[int], classes: Sequence[str]) -> str:
    """A tile's caption: its channel index and its images' most frequent class, with how many of the k."""
    counts = np.bincount(np.asarray(labels, np.int64), minlength=len(classes))
    top = int(counts.argmax())  # the lowest class index among equally frequent ones
    name = classes[top] if top < len(classes) else str(top)
    return f"{channel}: {name} {counts[top]}/{len(labels)}"
