"""Dataset examples: per channel, the k images of a split that activate it most (Olah et al., Distill 2017).

Streamed like the other dataset statistics: each batch's per-image scores (the channel's max or mean over
positions) are merged into a running top k per channel, so memory holds k images per channel whatever the
split's size. Ties go to the lower image index, so the result never depends on the batch size; and the stream
counts, per channel, the images left out that score the same as the k-th kept one, so a figure can say when
its cut falls inside a tie (an untrained channel whose top 44 images all score the same: which 9 are shown is
index order, not the channel's preference).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from convlens.analysis.stats import as_number
from convlens.errors import ConvlensError
from convlens.render.grids import grid_shape, mosaic
from convlens.render.language import words
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


def peak_positions(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image and channel (N, C each) of a batch of activations (N, H, W, C): the row and the column of the
    channel's maximum in that image's map (the first in row-major order where several are equal). A map without
    rows and columns (N, C) has its peak at (0, 0); one axis (N, W, C) is one row."""
    spatial = maps.shape[1:-1]
    if len(spatial) > 2:
        raise ConvlensError(f"activations of shape {maps.shape} have more than two spatial axes")
    flat = maps.reshape(len(maps), -1, maps.shape[-1]).argmax(axis=1)
    rows, columns = np.unravel_index(flat, (1, 1, *spatial)[-2:])
    return rows.astype(np.int64), columns.astype(np.int64)


def peak_positions_at(maps: np.ndarray, images: np.ndarray, channels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`peak_positions` of some (image, channel) pairs only (``images``, ``channels``: indices, M each):
    the rows and columns (M each) of those maps' maxima. For the few pairs a batch adds to the top k: an argmax over
    every channel of a batch copies its maps (numpy reduces the middle axis through a contiguous copy)."""
    spatial = maps.shape[1:-1]
    if len(spatial) > 2:
        raise ConvlensError(f"activations of shape {maps.shape} have more than two spatial axes")
    flat = maps.reshape(len(maps), -1, maps.shape[-1])[images, :, channels].argmax(axis=1)  # (M, P) → M
    rows, columns = np.unravel_index(flat, (1, 1, *spatial)[-2:])
    return rows.astype(np.int64), columns.astype(np.int64)


Extras = Callable[[np.ndarray, np.ndarray], Sequence[np.ndarray]]  # (batch rows, channels) → their values

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
    """The ``k`` highest scores per channel seen so far, their image indices, and how many images tie with them.

    Each :meth:`update` packs the batch's scores and image indices into distinct sort keys (:func:`sort_keys`)
    and keeps, per channel, the k largest of the kept keys and the batch's (``argpartition``: linear in k + batch
    rows, microseconds beside the forward pass). Equal scores go to the lower image index, whatever the batches.
    ``beyond`` counts, per channel, the images left out whose score equals the k-th kept one's: the images a
    batch drops at the new k-th score, plus those dropped before if that score did not rise (an image dropped
    earlier scores at most the old k-th score, so none of them equals a higher one). Memory stays k rows.
    """

    def __init__(self, k: int, channels: int) -> None:
        check_examples(k, EXAMPLE_MODES[0])
        self.k = k
        self.keys = np.empty((0, channels), np.uint64)
        self.beyond = np.zeros(channels, np.int64)  # left-out images tied with the k-th kept score, per channel
        self.seen = 0  # images streamed so far: the next batch's first index
        self.extras: tuple[np.ndarray, ...] | None = None  # what update's ``extras`` gave, row for row with keys

    def update(self, scores: np.ndarray, extras: Sequence[np.ndarray] | Extras = ()) -> None:
        """Merge one batch's scores (N, C) of the images ``seen`` .. ``seen + N − 1``, and with ``extras``, arrays
        (N, C) of the same images and channels (where the peak is, its value) kept beside them (:meth:`kept`); every
        batch gives the same number of them. ``extras`` may instead be a function of (batch rows, channels), M
        each, that gives those M pairs' values (M each): it is asked only for the pairs this batch adds to the top k
        (:func:`peak_positions_at`, instead of every pair's argmax)."""
        if scores.ndim != 2 or scores.shape[1] != self.keys.shape[1]:
            raise ConvlensError(f"scores of shape {scores.shape} do not fit {self.keys.shape[1]} channels")
        if not callable(extras) and any(np.shape(e) != scores.shape for e in extras):
            raise ConvlensError(f"extras of shapes {[np.shape(e) for e in extras]} do not fit scores {scores.shape}")
        if self.seen + len(scores) > MAX_IMAGES:
            raise ConvlensError(f"more than {MAX_IMAGES:,} images; use dataset.limit")
        before_keys = self.keys
        pool = np.concatenate([before_keys, sort_keys(scores, self.seen)])
        self.seen += len(scores)
        if len(pool) > self.k:
            chosen = np.argpartition(pool, len(pool) - self.k, axis=0)[-self.k :]
            kept = np.take_along_axis(pool, chosen, axis=0)
            self.beyond = dropped_ties(pool, kept, before_keys, self.beyond)
        else:
            chosen, kept = np.broadcast_to(np.arange(len(pool))[:, np.newaxis], pool.shape), pool
        self.extras = carry_extras(self.extras, chosen, len(before_keys), extras)
        self.keys = kept

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """Scores (float32) and image indices, (k, C) each, rank 0 first; fewer rows while fewer than k images were
        seen."""
        return decode_keys(np.sort(self.keys, axis=0)[::-1])

    def kept(self) -> tuple[np.ndarray, ...]:
        """The ``extras`` of the kept images, (k, C) each, rank by rank as :meth:`result` orders them."""
        order = np.argsort(self.keys, axis=0)[::-1]  # the keys are distinct: the order of result's sort
        return tuple(np.take_along_axis(e, order, axis=0) for e in self.extras or ())

    def tied(self) -> np.ndarray:
        """Per rank and channel (k, C), rank 0 first: how many of the images streamed score the same as that rank's
        image, itself included (1: no tie). At the k-th score this counts the images left out too."""
        scores = np.sort(self.keys, axis=0)[::-1] >> 32  # the score bits, as sort_keys made them
        same = np.empty(scores.shape, np.int64)
        for c in range(scores.shape[1]):
            _, inverse, counts = np.unique(scores[:, c], return_inverse=True, return_counts=True)
            same[:, c] = counts[inverse.ravel()]
        return same + np.where(scores == scores[-1:], self.beyond, 0)


def carry_extras(
    before: tuple[np.ndarray, ...] | None, chosen: np.ndarray, old: int, extras: Sequence[np.ndarray] | Extras
) -> tuple[np.ndarray, ...]:
    """The extras of the kept rows ``chosen`` (k, C: rows of the pool, the ``old`` rows kept before first, whose
    extras are ``before``, then the batch's): the kept ones' carried over, the batch's taken from ``extras``
    (arrays, or a function asked for those pairs only; :meth:`RunningTopK.update`)."""
    new = chosen >= old
    batch_rows, channels = (chosen - old)[new], np.nonzero(new)[1]
    if callable(extras):
        values = tuple(np.asarray(v) for v in extras(batch_rows, channels))
    else:
        values = tuple(np.asarray(e)[batch_rows, channels] for e in extras)
    if before is not None and len(before) != len(values):
        raise ConvlensError(f"{len(values)} extras after {len(before)} in the batches before; give the same number")
    out = []
    for i, v in enumerate(values):
        e = np.empty(chosen.shape, v.dtype)
        if old:
            e[...] = np.take_along_axis(before[i], np.where(new, 0, chosen), axis=0)
        e[new] = v
        out.append(e)
    return tuple(out)


def dropped_ties(pool: np.ndarray, kept: np.ndarray, before: np.ndarray, beyond: np.ndarray) -> np.ndarray:
    """Per channel, the images left out that score the same as the k-th of ``kept`` (sort keys), once ``pool``
    (the previously kept keys ``before`` and a batch's) is cut to ``kept``: those the cut drops, plus the ``beyond``
    dropped before when the k-th score has not changed (it never falls)."""
    threshold = kept.min(axis=0) >> 32
    dropped = ((pool >> 32) == threshold).sum(axis=0) - ((kept >> 32) == threshold).sum(axis=0)
    if len(before) < len(kept):  # nothing was dropped before: beyond is 0
        return dropped
    return dropped + np.where(before.min(axis=0) >> 32 == threshold, beyond, 0)


PATCH_COLUMNS = ("patch_top", "patch_left", "patch_bottom", "patch_right")  # a top image's box, in the table


def example_rows(
    layer: str,
    scores: np.ndarray,
    images: np.ndarray,
    labels: np.ndarray,
    tied: np.ndarray | None = None,
    peaks: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> list[dict[str, object]]:
    """The CSV table: one row per channel and rank (layer, channel, rank, image, label, activation, and with
    ``tied`` (k, C), :meth:`RunningTopK.tied`, how many images of the split score the same as this one; with
    ``peaks``, the rows, columns and values (k, C each) of each image's map's maximum, ``peak_row``,
    ``peak_column``, ``peak``, and the input pixels that position sees (k, C, 4: ``receptive.peak_boxes``),
    :data:`PATCH_COLUMNS`, bottom and right one past the patch)."""
    return [
        {
            "layer": layer,
            "channel": c,
            "rank": r,
            "image": int(images[r, c]),
            "label": int(labels[images[r, c]]),
            "activation": as_number(scores[r, c]),
            **({} if tied is None else {"tied": int(tied[r, c])}),
            **(
                {}
                if peaks is None
                else {
                    "peak_row": int(peaks[0][r, c]),
                    "peak_column": int(peaks[1][r, c]),
                    "peak": as_number(peaks[2][r, c]),
                    **{  # empty where the layer's field is not known (receptive.UNKNOWN_BOX)
                        name: int(v) if v >= 0 else None for name, v in zip(PATCH_COLUMNS, peaks[3][r, c], strict=True)
                    },
                }
            ),
        }
        for c in range(scores.shape[1])
        for r in range(scores.shape[0])
    ]


@dataclass(frozen=True)
class ExamplesGrid:
    """A layer's dataset examples as one mosaic image, its grid of tiles (rows × columns), one tile's size in
    pixels (height, width; its caption band included), the caption band's height and the gutter between tiles.
    Where the tiles show patches: the ``patch`` cell's size in input pixels (rows, columns; ``None``: whole
    images) and per channel the box to outline on its top image (``outlines``: channels × (top, left, bottom,
    right) in the mosaic's pixels, bottom and right one past)."""

    image: np.ndarray
    grid: tuple[int, int]
    tile: tuple[int, int]
    band: int
    gutter: int
    patch: tuple[int, int] | None = None
    outlines: np.ndarray = field(default_factory=lambda: np.empty((0, 4), np.int64))


def patch_cells(pictures: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Each picture's patch (``boxes`` (…, 4): top, left, bottom, right) in a cell of the largest box's size (the
    layer's field, clipped to the image): a patch the image's edge cut short lies against the cell's side where
    the image goes on, the rest of the cell blank (NaN), as the field reaches past the image there."""
    lead = boxes.ndim - 1  # the pictures' leading axes, the boxes' (e.g. channels, k)
    h, w = pictures.shape[lead : lead + 2]
    extent = boxes[..., 2:] - boxes[..., :2]
    size = (int(extent[..., 0].max()), int(extent[..., 1].max()))
    flat, shapes = pictures.reshape(-1, *pictures.shape[lead:]), boxes.reshape(-1, 4)
    cells = np.full((len(flat), *size, *flat.shape[3:]), np.nan)
    for i, (top, left, bottom, right) in enumerate(shapes):
        down = size[0] - (bottom - top) if top == 0 and bottom < h else 0  # cut at the top: against the cell's foot
        across = size[1] - (right - left) if left == 0 and right < w else 0
        cells[i, down : down + bottom - top, across : across + right - left] = flat[i, top:bottom, left:right]
    return cells.reshape(*boxes.shape[:-1], *cells.shape[1:])


def examples_grid(pictures: np.ndarray, columns: int | None = None, boxes: np.ndarray | None = None) -> ExamplesGrid:
    """``pictures`` (channels, k, h, w) in [0, 1] as one mosaic: per channel a tile holding its k images (a
    near-square sub-mosaic, best first, row by row) above a blank band for its caption, tiles a wider gutter apart
    (NaN, drawn white). Colour pictures (channels, k, h, w, 3) make a colour mosaic (…, 3).

    With ``boxes`` (channels, k, 4: each image's patch around its peak, ``receptive.peak_boxes``) the tile holds
    the k patches instead (:func:`patch_cells`), each enlarged by a whole factor to about the image's size, and
    beside them the top image whole, small, its patch to be outlined (``outlines``). Where every box is the whole
    image (a layer whose field covers the input), the patch is the image: the tile is the k images, as without."""
    channels, k, h, w = pictures.shape[:4]
    inner = grid_shape(k, math.ceil(math.sqrt(k)))
    band, gutter = max(4, h // 3), max(2, h // 4)
    if boxes is None or np.array_equal(np.unique(boxes.reshape(-1, 4), axis=0), [[0, 0, h, w]]):
        blocks = [mosaic(p, inner, gutter=1) for p in pictures]
        tiles = np.stack([np.vstack([b, np.full((band, *b.shape[1:]), np.nan)]) for b in blocks])
        grid = grid_shape(channels, columns)
        return ExamplesGrid(mosaic(tiles, grid, gutter), grid, tiles.shape[1:3], band, gutter)
    cells = patch_cells(pictures, boxes)
    size = cells.shape[2:4]
    scale = max(1, min(h // size[0], w // size[1]))  # a patch about as large as a whole image
    enlarged = cells.repeat(scale, axis=2).repeat(scale, axis=3)
    blocks = [mosaic(p, inner, gutter=1) for p in enlarged]
    height, width, gap = max(blocks[0].shape[0], h), blocks[0].shape[1], max(2, h // 6)
    band = max(band, (width + gap + w) // 10)  # the caption's band grows with the wider tile
    tiles = np.full((channels, height + band, width + gap + w, *pictures.shape[4:]), np.nan)
    for c, block in enumerate(blocks):
        tiles[c, : block.shape[0], :width] = block
        tiles[c, :h, width + gap :] = pictures[c, 0]
    grid = grid_shape(channels, columns)
    step = (tiles.shape[1] + gutter, tiles.shape[2] + gutter)
    places = [divmod(c, grid[1]) for c in range(channels)]  # each channel's tile: row, column
    origins = np.array([(r * step[0], col * step[1] + width + gap) for r, col in places], np.int64)
    outlines = boxes[:, 0] + np.tile(origins, 2)
    tile = (tiles.shape[1], tiles.shape[2])
    return ExamplesGrid(mosaic(tiles, grid, gutter), grid, tile, band, gutter, (int(size[0]), int(size[1])), outlines)


def cut_tie(scores: Sequence[float], tied: Sequence[int]) -> int:
    """How many images tie at a tile's last (k-th) score when the cut falls inside that tie, else 0: ``scores``
    its k scores, best first, ``tied`` each one's count of equal-scoring images in the split. Which of them are
    shown is then image index order, not the channel's preference."""
    shown = sum(1 for s in scores if s == scores[-1])
    return int(tied[-1]) if tied[-1] > shown else 0


def majority_caption(
    channel: int, labels: Sequence[int], classes: Sequence[str], tie: int = 0, peak: float | None = None
) -> str:
    """A tile's caption: its channel index and its images' most frequent class, with how many of the k; or, when
    the cut falls inside a tie of ``tie`` images (:func:`cut_tie`), ``18: 44 tied`` and no class: the images shown
    are the first of the tie by index, so their majority says nothing about the channel. With ``peak``, the top
    image's peak activation after it (``3: Sandal 2/9 · 1.85``). The words: ``render/strings.yaml``'s
    ``examples_*``."""
    t = words()
    if tie:
        caption = t("examples_tied", channel=channel, tie=tie)
    else:
        counts = np.bincount(np.asarray(labels, np.int64), minlength=len(classes))
        top = int(counts.argmax())  # the lowest class index among equally frequent ones
        name = classes[top] if top < len(classes) else str(top)
        caption = t("examples_majority", channel=channel, name=name, count=counts[top], k=len(labels))
    return caption if peak is None else t("examples_peak", caption=caption, peak=f"{peak:.3g}")


def cut_ties(scores: np.ndarray, tied: np.ndarray) -> np.ndarray:
    """Per channel, :func:`cut_tie` of the examples table's scores and tie counts, each (channels, k)."""
    return np.array([cut_tie(s.tolist(), t.tolist()) for s, t in zip(scores, tied, strict=True)], np.int64)


def tile_captions(
    labels: np.ndarray, ties: np.ndarray, classes: Sequence[str], peaks: np.ndarray | None = None
) -> list[str]:
    """One caption per channel (:func:`majority_caption`): its images' labels (channels, k), its :func:`cut_ties`
    and, with ``peaks`` (channels, k), its top image's peak activation."""
    return [
        majority_caption(c, labels[c], classes, int(ties[c]), None if peaks is None else float(peaks[c, 0]))
        for c in range(len(labels))
    ]


def tie_note(ties: np.ndarray) -> str:
    """What a figure's title adds when some tile's cut falls inside a tie (:func:`cut_ties`), else nothing."""
    if not np.any(ties):
        return ""
    return "\n" + words()("examples_tie_note")


def patch_note(patch: tuple[int, int] | None, known: bool = True) -> str:
    """What a figure's title adds to say what its tiles show: the ``patch`` (rows, columns; ``ExamplesGrid.patch``)
    around each image's peak and the outlined top image, or, where the patch is the whole image (``None``), only
    what the caption's number is; where the layer's field is not ``known``, that the tiles are the whole images."""
    t = words()
    if not known:
        return "\n" + t("examples_unknown_field_note")
    if patch is None:
        return "\n" + t("examples_peak_note")
    return "\n" + t("examples_patch_note", size=f"{patch[0]}×{patch[1]}")
