"""Matplotlib figures (Agg, no screen): histograms, mosaics and the sample image."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .errors import ConvlensError
from .files import atomic_path

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
    """``train image 0: Ankle boot``: where the image comes from and its class."""
    return f"{split} image {sample}: {classes[label] if 0 <= label < len(classes) else label}"


def _figure(figsize: tuple[float, float]) -> Figure:
    """A figure drawn by Agg, without pyplot (no global figure registry, a lighter import)."""
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path, dpi: int) -> None:
    """Write the figure as PNG, atomically; zlib level 1: about half the encoding time, files ~2× larger."""
    width, height = fig.get_size_inches() * dpi
    check_figure_size(round(height), round(width), dpi)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", pil_kwargs={"compress_level": 1})


def histogram(series: Mapping[str, np.ndarray], path: Path, bins: int, title: str, dpi: int) -> None:
    """The book's weight histogram (``plt.hist``), one series or several overlaid on shared bins."""
    fig = _figure((6.4, 4.8))
    ax = fig.subplots()
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
    """A mosaic (values in [0, 1], NaN gutters white) as a PNG under a title line, sized by its grid.

    The mosaic is coloured at its own size and each of its pixels becomes a square block of pixels
    (what ``imshow(interpolation="nearest")`` shows), so only the title goes through matplotlib.
    """
    scale = max(1, round(grid[1] * tile_inches * dpi / image.shape[1]))  # grid: rows × columns of tiles
    check_figure_size(image.shape[0] * scale, image.shape[1] * scale, dpi)
    colours = mpl.colormaps[cmap].with_extremes(bad="white")(image, bytes=True)[..., :3]
    body = np.repeat(np.repeat(colours, scale, axis=0), scale, axis=1)
    pixels = np.concatenate([_title_strip(title, body.shape[1], round(0.5 * dpi), dpi), body])
    _save_pixels(pixels, path)


def _title_strip(title: str, width: int, height: int, dpi: int) -> np.ndarray:
    """A white strip of ``width`` × ``height`` pixels with ``title`` centred in it, as RGB."""
    fig = _figure((width / dpi, height / dpi))
    fig.text(0.5, 0.5, title, ha="center", va="center", fontsize=11)
    fig.set_dpi(dpi)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3]


def _save_pixels(pixels: np.ndarray, path: Path) -> None:
    """Write an RGB array as PNG, atomically (zlib level 1, as ``_save``)."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG", compress_level=1)


def sample_figure(image: np.ndarray, path: Path, cmap: str, title: str, dpi: int) -> None:
    """The input image as the book shows it (``plt.imshow(x, cmap='gray_r')``)."""
    fig = _figure((4.8, 4.8))
    ax = fig.subplots()
    ax.imshow(image, cmap=cmap)
    ax.set_title(title)
    _save(fig, path, dpi)


def vector_figure(values: np.ndarray, path: Path, title: str, dpi: int) -> None:
    """A layer output with no spatial axes (Dense, Flatten): one bar per unit."""
    fig = _figure((min(max(4.0, len(values) * 0.08), 16.0), 3.2))
    ax = fig.subplots()
    ax.bar(np.arange(len(values)), values, width=1.0)
    ax.set_xlabel("unit")
    ax.set_ylabel("activation")
    ax.set_title(title, fontsize=11)
    _save(fig, path, dpi)


def comparison_figure(table, path: Path, labels: tuple[str, str], title: str, dpi: int = 100) -> None:
    """Relative change of each changed statistic, one panel per model, each bar labelled ``a → b``."""
    models = list(dict.fromkeys(table["model"]))
    if not models:
        fig = _figure((6, 1.5))
        fig.text(0.5, 0.5, "no statistic changed", ha="center", va="center")
        fig.suptitle(title, fontsize=11)
        _save(fig, path, dpi)
        return
    heights = [max(1, (table["model"] == m).sum()) for m in models]
    fig = _figure((9, 1.2 + 0.3 * sum(heights)))
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
        ax.set_title(model, loc="left", fontsize=10)
        ax.set_xlabel(f"relative change from {labels[0]} to {labels[1]} (%, bars clipped at ±100)")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    _save(fig, path, dpi)


def class_heatmaps(
    tables: Mapping[str, np.ndarray], classes: Sequence[str], path: Path, title: str, cmap: str, dpi: int
) -> None:
    """Channels × classes mean activations, one panel per model side by side, each channel scaled from its
    least to its most active class (which classes make a filter fire, whatever its overall strength)."""
    height = 2.4 + 0.12 * max(len(t[0]) for t in tables.values())
    fig = _figure((4.2 * len(tables), height))
    fig.subplots_adjust(bottom=1.1 / height, top=1 - 0.7 / height)  # room for the slanted class names
    axes = fig.subplots(1, len(tables), squeeze=False)
    for ax, (model, class_means) in zip(axes[0], tables.items(), strict=True):
        values = np.nan_to_num(class_means.T)  # channels × classes
        low = values.min(axis=1, keepdims=True)
        span = values.max(axis=1, keepdims=True) - low
        scaled = np.divide(values - low, span, out=np.zeros_like(values), where=span > 0)
        image = ax.imshow(scaled, cmap=cmap, vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=8)
        ax.set_title(model, fontsize=10)
    axes[0, 0].set_ylabel("channel")
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.6, label="per channel: least (0) to most (1) active class")
    fig.suptitle(title, fontsize=11)
    _save(fig, path, dpi)


def labelled_mosaic_figure(
    tiles: np.ndarray,
    path: Path,
    cmap: str,
    title: str,
    labels: Sequence[str],
    columns: int | None,
    value_range: tuple[float, float],
    dpi: int,
) -> None:
    """Tiles (n, h, w) on one fixed ``value_range`` as one mosaic with each tile's label in its corner
    (activation maximization: one optimized input per channel, on the pixels' range, the channel index on it)."""
    from .grids import grid_shape, mosaic, normalize_tiles

    n, h, w = tiles.shape
    rows, cols = grid_shape(n, columns)
    gutter = max(1, h // 14)
    image = mosaic(normalize_tiles(tiles, *value_range), (rows, cols), gutter)
    fig = _figure((cols * MAP_TILE_INCHES * 0.8, rows * MAP_TILE_INCHES * 0.8 + 0.5))
    ax = fig.add_axes((0, 0, 1, 1 - 0.5 / fig.get_size_inches()[1]))
    ax.imshow(image, cmap=mpl.colormaps[cmap].with_extremes(bad="white"), interpolation="nearest", vmin=0, vmax=1)
    ax.set_axis_off()
    for i, label in enumerate(labels):
        r, c = divmod(i, cols)
        ax.text(
            c * (w + gutter), r * (h + gutter), label, ha="left", va="top", fontsize=7, color="tab:red",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.8},
        )  # fmt: skip
    fig.suptitle(title, fontsize=11, y=1 - 0.1 / fig.get_size_inches()[1], va="top")
    _save(fig, path, dpi)


def overlay_figure(
    image: np.ndarray,
    panels: Sequence[Sequence[tuple[np.ndarray, str]]],
    path: Path,
    titles: tuple[str, Sequence[str]],
    cmaps: tuple[str, str],
    alpha: float,
    dpi: int,
) -> None:
    """One row per entry of ``panels``: the image, then each (map in [0, 1], title) of the row drawn over it
    (Grad-CAM: trained beside untrained). ``titles``: the figure's title and one label per row; ``cmaps``:
    the image's colormap and the maps'."""
    title, row_labels = titles
    columns = 1 + max(len(row) for row in panels)
    height = 3.4 * len(panels) + 0.7
    fig = _figure((3.0 * columns, height))
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - 1.1 / height, wspace=0.08, hspace=0.35)
    axes = fig.subplots(len(panels), columns, squeeze=False)
    for ax_row, row, label in zip(axes, panels, row_labels, strict=True):
        ax_row[0].imshow(image, cmap=cmaps[0])
        ax_row[0].set_title(label, fontsize=9)
        for ax, (heat, heading) in zip(ax_row[1:], row, strict=False):
            ax.imshow(image, cmap=cmaps[0])
            ax.imshow(heat, cmap=cmaps[1], alpha=alpha, vmin=0, vmax=1)
            ax.set_title(heading, fontsize=9)
        for ax in ax_row:
            ax.set_axis_off()
    fig.suptitle(title, fontsize=10)
    _save(fig, path, dpi)


EXAMPLE_TILE_INCHES = 1.3  # one channel's tile of dataset examples (3 × 3 images of 28 × 28 by default)


def examples_figure(grid, captions: Sequence[str], path: Path, cmap: str, title: str, dpi: int) -> None:
    """Dataset examples (an ``examples.ExamplesGrid``) drawn as one image in one axes, each tile's caption written
    in the blank band under its images: one image and a text per tile, not one axes per tile."""
    cols = grid.grid[1]
    height, width = grid.image.shape
    body = (cols * EXAMPLE_TILE_INCHES, cols * EXAMPLE_TILE_INCHES * height / width)
    inches = (body[0], body[1] + 0.5)  # + the title line
    check_figure_size(round(inches[1] * dpi), round(inches[0] * dpi), dpi)
    fig = _figure(inches)
    ax = fig.add_axes((0, 0, 1, body[1] / inches[1]))
    ax.imshow(grid.image, cmap=mpl.colormaps[cmap].with_extremes(bad="white"), vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    points = grid.band * body[0] * 72 / width * 0.7  # the band's height in points, less a margin
    for i, caption in enumerate(captions):
        r, c = divmod(i, cols)
        x = c * (grid.tile[1] + grid.gutter) + grid.tile[1] / 2
        y = r * (grid.tile[0] + grid.gutter) + grid.tile[0] - grid.band / 2
        ax.text(x, y, caption, ha="center", va="center", fontsize=points)
    fig.text(0.5, 1 - 0.25 / inches[1], title, ha="center", va="center", fontsize=11)
    _save(fig, path, dpi)


def confusion_figure(
    confusion: np.ndarray, classes: Sequence[str], path: Path, title: str, cmap: str, dpi: int
) -> None:
    """The confusion matrix as a heatmap, actual classes down, predicted across, every count written in its cell
    (light text on dark cells), the diagonal's cells outlined."""
    n = len(classes)
    fig = _figure((2.5 + 0.55 * n, 2.0 + 0.5 * n))
    ax = fig.subplots()
    colours = mpl.colormaps[cmap]
    ax.imshow(confusion, cmap=colours, interpolation="nearest")
    top = max(int(confusion.max()), 1)
    for (i, j), count in np.ndenumerate(confusion):
        dark = sum(colours(count / top)[:3]) < 1.5
        ax.text(j, i, str(count), ha="center", va="center", fontsize=8, color="white" if dark else "black")
    for i in range(n):
        ax.add_patch(Rectangle((i - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="tab:red", linewidth=1))
    ax.set_xticks(range(n), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("actual class")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path, dpi)
