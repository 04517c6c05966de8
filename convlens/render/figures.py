"""Matplotlib figures (Agg, no screen): histograms, mosaics, the sample image, a layer's vector and the comparison
of two runs; and what every figure shares: a figure without pyplot, the atomic PNG save, the pixel limit.

The analyses' figures (class heatmaps, activation maximization, Grad-CAM, dataset examples, confusion matrix) are in
``figures_analyses``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from convlens.errors import ConvlensError
from convlens.pipeline.files import atomic_path
from convlens.render.language import words

# The largest PNG a figure may become (~400 MB of RGB while drawn): a dpi or a grid beyond it is a mistake.
MAX_PIXELS = 1 << 27


# Inches per mosaic tile: a filter is a few pixels, a feature map up to 28 × 28.
FILTER_TILE_INCHES = 0.9
MAP_TILE_INCHES = 1.5


def check_figure_size(height: int, width: int, dpi: int) -> None:
    """Refuse a figure of more than ``MAX_PIXELS`` before allocating it."""
    if height * width > MAX_PIXELS:
        raise ConvlensError(
            f"a figure of {width}×{height} pixels at render.dpi={dpi} is over the {MAX_PIXELS:,} pixel limit "
            f"({3 * height * width / (1 << 30):.1f} GiB to draw); lower render.dpi or render.map_columns"
        )


def sample_title(split: str, sample: int, label: int, classes: Sequence[str]) -> str:
    """``train image 0: Ankle boot``: where the image comes from and its class, in :func:`words`' language."""
    t = words()
    name = classes[label] if 0 <= label < len(classes) else label
    return t("sample_title", split=t.term("split", split), sample=sample, name=name)


def new_figure(figsize: tuple[float, float]) -> Figure:
    """A figure drawn by Agg, without pyplot (no global figure registry, a lighter import)."""
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: Path, dpi: int) -> None:
    """Write the figure as PNG, atomically; zlib level 1: about half the encoding time, files ~2× larger."""
    width, height = fig.get_size_inches() * dpi
    check_figure_size(round(height), round(width), dpi)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", pil_kwargs={"compress_level": 1})


def histogram(series: Mapping[str, np.ndarray], path: Path, bins: int, title: str, dpi: int) -> None:
    """The book's weight histogram (``plt.hist``, counts), one series; several overlaid, each on ``bins`` bins of its
    own range (:func:`overlay_edges`) as a density, so a narrow series (the untrained layer's even spread) keeps its
    shape instead of falling into two of the wide one's bars (issue 24 §2)."""
    t = words()
    fig = new_figure((6.4, 4.8))
    ax = fig.subplots()
    finite = {k: v[np.isfinite(v)].ravel() for k, v in series.items()}
    overlay = len(finite) > 1
    edges = overlay_edges(finite, bins)
    for label, values in finite.items():
        ax.hist(
            values, bins=edges[label], alpha=0.55 if overlay else 1.0, label=t.term("model", label), density=overlay
        )
    ax.set_xlabel(t("weight"))
    ax.set_ylabel(t("density_own_bins") if overlay else t("count"))
    ax.set_title(title)
    if overlay:
        ax.legend()
    save_figure(fig, path, dpi)


def overlay_edges(series: Mapping[str, np.ndarray], bins: int) -> dict[str, np.ndarray]:
    """Each series' ``bins`` bin edges over its own finite values (``np.histogram_bin_edges``); one series: its own,
    as the book's ``plt.hist``."""
    return {label: np.histogram_bin_edges(values, bins=bins) for label, values in series.items()}


def mosaic_figure(
    image: np.ndarray, path: Path, cmap: str, title: str, tile_inches: float, grid: tuple[int, int], dpi: int
) -> None:
    """A mosaic (values in [0, 1], NaN gutters white) as a PNG under a title line, sized by its grid.

    The mosaic is coloured at its own size and each of its pixels becomes a square block of pixels
    (what ``imshow(interpolation="nearest")`` shows), so only the title goes through matplotlib. A colour
    mosaic (H, W, 3) keeps its own colours.
    """
    scale = max(1, round(grid[1] * tile_inches * dpi / image.shape[1]))  # grid: rows × columns of tiles
    check_figure_size(image.shape[0] * scale, image.shape[1] * scale, dpi)
    if image.ndim == 3:  # a colour mosaic (H, W, 3): its own colours, ``cmap`` unused
        colours = rgb_bytes(image)
    else:
        colours = mpl.colormaps[cmap].with_extremes(bad="white")(image, bytes=True)[..., :3]
    body = np.repeat(np.repeat(colours, scale, axis=0), scale, axis=1)
    pixels = np.concatenate([_title_strip(title, body.shape[1], round(0.5 * dpi), dpi), body])
    _save_pixels(pixels, path)


def rgb_bytes(image: np.ndarray) -> np.ndarray:
    """A colour image (H, W, 3) of values in [0, 1] as uint8 RGB, NaN (gutters, empty cells) white."""
    values = np.clip(np.where(np.isnan(image), 1.0, image), 0.0, 1.0)
    return np.round(values * 255).astype(np.uint8)


def show_image(ax, image: np.ndarray, cmap: str, **kwargs) -> None:
    """``imshow`` of a gray image (H, W) through ``cmap``, or of a colour image (H, W, 3) in its own colours."""
    if image.ndim == 3:
        ax.imshow(image, **kwargs)
    else:
        ax.imshow(image, cmap=cmap, **kwargs)


def _title_strip(title: str, width: int, height: int, dpi: int) -> np.ndarray:
    """A white strip of ``width`` × ``height`` pixels with ``title`` centred in it, as RGB."""
    fig = new_figure((width / dpi, height / dpi))
    fig.text(0.5, 0.5, title, ha="center", va="center", fontsize=11)
    fig.set_dpi(dpi)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3]


def _save_pixels(pixels: np.ndarray, path: Path) -> None:
    """Write an RGB array as PNG, atomically (zlib level 1, as ``save_figure``)."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG", compress_level=1)


def sample_figure(image: np.ndarray, path: Path, cmap: str, title: str, dpi: int) -> None:
    """The input image as the book shows it (``plt.imshow(x, cmap='gray_r')``); a colour image (H, W, 3) in its
    own colours."""
    fig = new_figure((4.8, 4.8))
    ax = fig.subplots()
    show_image(ax, image, cmap)
    ax.set_title(title)
    save_figure(fig, path, dpi)


def vector_figure(values: np.ndarray, path: Path, title: str, dpi: int) -> None:
    """A layer output with no spatial axes (Dense, Flatten): one bar per unit."""
    fig = new_figure((min(max(4.0, len(values) * 0.08), 16.0), 3.2))
    ax = fig.subplots()
    ax.bar(np.arange(len(values)), values, width=1.0)
    ax.set_xlabel(words()("unit"))
    ax.set_ylabel(words()("activation"))
    ax.set_title(title, fontsize=11)
    save_figure(fig, path, dpi)


def comparison_figure(table, path: Path, labels: tuple[str, str], title: str, dpi: int = 100) -> None:
    """Relative change of each changed statistic, one panel per model, each bar labelled ``a → b``."""
    t, models = words(), list(dict.fromkeys(table["model"]))
    if not models:
        fig = new_figure((6, 1.5))
        fig.text(0.5, 0.5, t("no_change"), ha="center", va="center")
        fig.suptitle(title, fontsize=11)
        save_figure(fig, path, dpi)
        return
    heights = [max(1, (table["model"] == m).sum()) for m in models]
    fig = new_figure((9, 1.2 + 0.3 * sum(heights)))
    axes = fig.subplots(len(models), 1, squeeze=False, height_ratios=heights)
    for ax, model in zip(axes[:, 0], models, strict=True):
        rows = table[table["model"] == model].iloc[::-1]
        rel = (rows["relative_change"] * 100).to_numpy()
        shown = np.clip(np.nan_to_num(rel), -100, 100)  # the label gives the exact value
        y = np.arange(len(rows))
        ax.barh(y, shown, color=np.where(shown >= 0, "tab:blue", "tab:red"))
        ax.set_yticks(y, [f"{layer} · {stat}" for layer, stat in zip(rows["layer"], rows["statistic"], strict=True)])
        for yi, r, a, b in zip(y, rel, rows["a"], rows["b"], strict=True):
            label = f"{a:.4g} → {b:.4g}" + ("" if np.isnan(r) else f" ({r:+.1f} %)")
            right = np.nan_to_num(r) < 0  # the label goes on the other side of zero, clear of the bar
            ax.annotate(
                label,
                (0, yi),
                xytext=(4 if right else -4, 0),
                textcoords="offset points",
                ha="left" if right else "right",
                va="center",
                fontsize=8,
            )
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_xlim(-100, 100)
        ax.set_title(t.term("model", model), loc="left", fontsize=10)
        ax.set_xlabel(t("relative_change", a=labels[0], b=labels[1]))
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    save_figure(fig, path, dpi)
