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


def table_rows(key: str, columns: dict[str, np.ndarray]) -> list[dict[str, object]]:
    """Column arrays as CSV rows, numbered by ``key`` (filter, channel)."""
    n = len(next(iter(columns.values())))
    return [{key: i, **{c: as_number(v[i]) for c, v in columns.items()}} for i in range(n)]


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

    def update(self, maps: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Add a batch of activations (N, …, C) of images with class ``labels`` (N,); returns the per-image channel
        means and maxima (N, C each) it reduced them to, for the dataset examples."""
        if maps.shape[-1] != self.channels or len(maps) != len(labels):
            raise ConvlensError(
                f"a batch of shape {maps.shape} does not fit {self.channels} channels, {len(labels)} labels"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= self.classes):
            raise ConvlensError(f"labels must lie in 0..{self.classes - 1}; check data.classes")
        per_image = maps.reshape(len(maps), -1, self.channels)
        positions = per_image.shape[1]
        # (N, C) per-image channel means as one BLAS product: ~4× faster than .mean(axis=1), same to ~1e-6
        image_means = (np.ones(positions, np.float32) @ per_image).astype(np.float64) / positions
        self.total += image_means.sum(axis=0) * positions
        self.active += np.count_nonzero(per_image > 0, axis=(0, 1))
        image_peaks = per_image.max(axis=1)  # (N, C); faster than max over (0, 1) at once
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
