"""Statistics of kernels and feature maps: arrays in, numbers out.

Non-finite values (NaN, ±Inf) are counted, never averaged in: the statistics describe the
finite values, and ``nan``/``inf`` say how many others there were.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from convlens.errors import ConvlensError


def as_number(x: float | np.floating) -> float:
    """A float32 value as its shortest decimal (the digits NumPy prints), for JSON and CSV."""
    return float(str(np.float32(x)))


def kernel_stats(kernel: np.ndarray, percentiles: Sequence[float]) -> dict[str, object]:
    """Shape, count, mean, std, min, max and percentiles of a kernel, computed as NumPy does in the book."""
    finite = np.isfinite(kernel)
    values = kernel if finite.all() else kernel[finite]
    stats: dict[str, object] = {
        "shape": "x".join(map(str, kernel.shape)),
        "count": int(kernel.size),
        "nan": int(np.isnan(kernel).sum()),
        "inf": int(np.isinf(kernel).sum()),
    }
    if values.size == 0:
        return stats
    stats.update(
        mean=as_number(values.mean()),
        std=as_number(values.std()),
        min=as_number(values.min()),
        max=as_number(values.max()),
    )
    for p, v in zip(percentiles, np.percentile(values, percentiles), strict=True):
        stats[f"p{p:g}"] = as_number(v)
    return stats


def filter_stats(kernel: np.ndarray, bias: np.ndarray | None) -> dict[str, np.ndarray]:
    """Per filter (last axis of the kernel): L2 norm, mean, std and bias."""
    flat = kernel.reshape(-1, kernel.shape[-1]).astype(np.float64)
    finite = np.isfinite(flat)
    values = np.where(finite, flat, 0.0)
    n = finite.sum(axis=0)
    mean = np.divide(values.sum(axis=0), n, out=np.full(n.shape, np.nan), where=n > 0)
    spread = np.where(finite, values - mean, 0.0)
    out = {  # over each filter's finite values; NaN for a filter with none (kernel_stats counts them)
        "l2_norm": np.sqrt((values**2).sum(axis=0)),
        "mean": mean,
        "std": np.sqrt(np.divide((spread**2).sum(axis=0), n, out=np.full(n.shape, np.nan), where=n > 0)),
    }
    if bias is not None:
        out["bias"] = bias.astype(np.float64)
    return out


def channel_stats(maps: np.ndarray) -> dict[str, np.ndarray]:
    """Per channel (last axis) over samples and positions: mean, max, fraction active (> 0).

    The samples are one batch through :class:`ChannelAccumulator`, which streams a whole split:
    one implementation of the channel statistics for both.
    """
    accumulator = ChannelAccumulator(maps.shape[-1], classes=1)
    accumulator.update(maps, np.zeros(len(maps), np.int64))
    table = accumulator.table()
    return {key: table[key] for key in ("mean", "max", "fraction_active")}


def layer_summary(channels: dict[str, np.ndarray]) -> dict[str, float | int]:
    """One layer's feature-map summary (``map_*`` keys, apart from the kernel statistics' names)."""
    return {
        "map_mean": as_number(channels["mean"].mean()),
        "map_fraction_active": as_number(channels["fraction_active"].mean()),
        "map_max": as_number(channels["max"].max()),
        "channels": int(channels["mean"].size),
        "dead_channels": int((channels["max"] <= 0).sum()),
    }


def sample_summaries(maps: np.ndarray) -> list[dict[str, float | int]]:
    """Each sample's own ``layer_summary`` (its maps alone), in the samples' order."""
    return [layer_summary(channel_stats(maps[i : i + 1])) for i in range(len(maps))]


def table_rows(key: str, columns: dict[str, np.ndarray]) -> list[dict[str, object]]:
    """Column arrays as CSV rows, numbered by ``key`` (filter, channel)."""
    n = len(next(iter(columns.values())))
    return [{key: i, **{c: as_number(v[i]) for c, v in columns.items()}} for i in range(n)]


IMAGES_PER_CHUNK = 32  # reduce_positions' chunk: a conv layer's maps of this many images stay in the CPU's cache


def max_over_positions(per_image: np.ndarray) -> np.ndarray:
    """``per_image.max(axis=1)`` of (N, P, C) maps, as halves folded together (``np.maximum`` over whole rows of
    channels: 2× numpy's reduction over the middle axis, whose inner loop is C values long). The maximum is exact:
    the same values, NaN included."""
    x = per_image
    while x.shape[1] > 1:
        half = x.shape[1] // 2
        folded = np.maximum(x[:, :half], x[:, half : 2 * half])
        if x.shape[1] % 2:  # the odd row left over joins the first
            np.maximum(folded[:, :1], x[:, 2 * half :], out=folded[:, :1])
        x = folded
    return x[:, 0] if x.shape[1] else per_image.max(axis=1)  # no positions: numpy's own error


def reduce_positions(per_image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Of maps (N, P, C): per image and channel the sum over positions (N, C; one BLAS product, ~4× faster than
    ``.sum(axis=1)``), per channel how many values are above zero (C, int64) and per image and channel the maximum
    (N, C). Reduced :data:`IMAGES_PER_CHUNK` images at a time, so the three reads of a chunk hit the cache; each
    image's numbers do not depend on the chunk (the counts are exact: a float32 sum of 0s and 1s below 2**24)."""
    n, positions, channels = per_image.shape
    dtype = np.result_type(per_image.dtype, np.float32)
    ones = np.ones(positions, np.float32)
    sums, peaks = np.empty((n, channels), dtype), np.empty((n, channels), per_image.dtype)
    active = np.zeros(channels, np.int64)
    above = np.empty((min(n, IMAGES_PER_CHUNK), positions, channels), np.float32)
    for start in range(0, n, IMAGES_PER_CHUNK):
        chunk = per_image[start : start + IMAGES_PER_CHUNK]
        sums[start : start + len(chunk)] = ones @ chunk
        flags = np.greater(chunk, 0, out=above[: len(chunk)], casting="unsafe")  # 1.0 where active
        active += (ones @ flags).astype(np.int64).sum(axis=0) if positions < 1 << 24 else (chunk > 0).sum(axis=(0, 1))
        peaks[start : start + len(chunk)] = max_over_positions(chunk)
    return sums, active, peaks


@dataclass
class ChannelAccumulator:
    """Running sums for one layer's channels; :meth:`update` takes one batch, :meth:`table` gives the result."""

    channels: int
    classes: int
    total: np.ndarray = field(init=False)
    active: np.ndarray = field(init=False)
    peak: np.ndarray = field(init=False)
    top_image_mean: np.ndarray = field(init=False)
    class_total: np.ndarray = field(init=False)
    class_count: np.ndarray = field(init=False)
    values: int = 0  # activations seen per channel

    def __post_init__(self) -> None:
        self.total = np.zeros(self.channels)
        self.active = np.zeros(self.channels, np.int64)
        self.peak = np.full(self.channels, -np.inf)
        self.top_image_mean = np.full(self.channels, -np.inf)
        self.class_total = np.zeros((self.classes, self.channels))
        self.class_count = np.zeros(self.classes, np.int64)

    def update(
        self, maps: np.ndarray, labels: np.ndarray, reduced: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Add a batch of activations (N, …, C) of images with class ``labels`` (N,); returns the per-image channel
        means and maxima (N, C each) it reduced them to, for the dataset examples. ``reduced``: what
        :func:`reduce_positions` gave for these maps, when another thread has already computed it."""
        if maps.shape[-1] != self.channels or len(maps) != len(labels):
            raise ConvlensError(
                f"a batch of shape {maps.shape} does not fit {self.channels} channels, {len(labels)} labels"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= self.classes):
            raise ConvlensError(f"labels must lie in 0..{self.classes - 1}; check data.classes")
        per_image = maps.reshape(len(maps), -1, self.channels)
        positions = per_image.shape[1]
        sums, active, image_peaks = reduce_positions(per_image) if reduced is None else reduced
        image_means = sums.astype(np.float64) / positions
        self.total += image_means.sum(axis=0) * positions
        self.active += active
        if len(maps):
            self.peak = np.maximum(self.peak, image_peaks.max(axis=0))
            self.top_image_mean = np.maximum(self.top_image_mean, image_means.max(axis=0))
        np.add.at(self.class_total, labels, image_means)
        self.class_count += np.bincount(labels, minlength=self.classes)
        self.values += len(maps) * positions
        return image_means, image_peaks

    def table(self) -> dict[str, np.ndarray]:
        """Per channel: mean, fraction_active, max, top_image_mean; ``class_means`` (classes × channels, NaN: none)."""
        if self.values == 0:
            raise ConvlensError("no images were streamed; dataset.limit must be at least 1")
        counts = self.class_count[:, np.newaxis]
        class_means = np.divide(self.class_total, counts, out=np.full_like(self.class_total, np.nan), where=counts > 0)
        return {
            "mean": self.total / self.values,
            "fraction_active": self.active / self.values,
            "max": self.peak,
            "top_image_mean": self.top_image_mean,
            "class_means": class_means,
        }
