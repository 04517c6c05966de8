"""Matplotlib figures (Agg, no screen): histograms, mosaics and the sample image."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from .errors import ConvlensError
from .grids import check_filter_range, check_input_channels
from .io import atomic_path


def check_render(r: Mapping) -> None:
    """Refuse render options that make no sense before drawing anything."""
    if "filter_vmin" in r:
        check_filter_range(r.filter_vmin, r.filter_vmax)
        check_input_channels(r.input_channels)
    for key in ("filter_columns", "map_columns", "hist_bins", "dpi"):
        if key in r and r[key] is not None and (not isinstance(r[key], int) or r[key] < 1):
            raise ConvlensError(f"render.{key} must be a positive integer, got {r[key]!r}")


def sample_title(split: str, sample: int, label: int, classes: Sequence[str]) -> str:
    """``train image 0: Ankle boot``: where the image comes from and its class."""
    return f"{split} image {sample}: {classes[label] if 0 <= label < len(classes) else label}"


def _save(fig: plt.Figure, path: Path, dpi: int) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)


def histogram(series: Mapping[str, np.ndarray], path: Path, bins: int, title: str, dpi: int) -> None:
    """The book's weight histogram (``plt.hist``), one series or several overlaid on shared bins."""
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    finite = {k: v[np.isfinite(v)].ravel() for k, v in series.items()}
    edges = np.histogram_bin_edges(np.concatenate(list(finite.values())), bins=bins)
    overlay = len(finite) > 1
    for label, values in finite.items():
        ax.hist(values, bins=edges, alpha=0.55 if overlay else 1.0, label=label)
    ax.set_xlabel("weight")
    ax.set_ylabel("count")
    ax.set_title(title)
    if overlay:
        ax.legend()
    _save(fig, path, dpi)


def mosaic_figure(
    image: np.ndarray, path: Path, cmap: str, title: str, tile_inches: float, grid: tuple[int, int], dpi: int
) -> None:
    """One ``imshow`` of a mosaic (values in [0, 1], NaN gutters drawn white), sized by its grid."""
    rows, cols = grid
    fig = plt.figure(figsize=(cols * tile_inches, rows * tile_inches + 0.5))
    ax = fig.add_axes((0.01, 0.01, 0.98, rows * tile_inches / (rows * tile_inches + 0.5) - 0.01))
    ax.imshow(
        image,
        cmap=plt.get_cmap(cmap).with_extremes(bad="white"),
        vmin=0.0,
        vmax=1.0,
        interpolation="nearest",
        aspect="auto",
    )
    ax.axis("off")
    fig.suptitle(title, fontsize=11, y=0.995, va="top")
    _save(fig, path, dpi)


def sample_figure(image: np.ndarray, path: Path, cmap: str, title: str, dpi: int) -> None:
    """The input image as the book shows it (``plt.imshow(x, cmap='gray_r')``)."""
    fig, ax = plt.subplots(figsize=(4.8, 4.8))
    ax.imshow(image, cmap=cmap)
    ax.set_title(title)
    _save(fig, path, dpi)


def vector_figure(values: np.ndarray, path: Path, title: str, dpi: int) -> None:
    """A layer output with no spatial axes (Dense, Flatten): one bar per unit."""
    fig, ax = plt.subplots(figsize=(min(max(4.0, len(values) * 0.08), 16.0), 3.2))
    ax.bar(np.arange(len(values)), values, width=1.0)
    ax.set_xlabel("unit")
    ax.set_ylabel("activation")
    ax.set_title(title, fontsize=11)
    _save(fig, path, dpi)
