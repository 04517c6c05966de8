"""The analyses' figures (Agg, no screen): the class heatmaps of the dataset statistics, the labelled mosaic of
activation maximization, Grad-CAM's overlays, the dataset examples and the confusion matrix. They draw and save
through the helpers of ``figures``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib.patches import Rectangle

from convlens.render.figures import (
    MAP_TILE_INCHES,
    check_figure_size,
    new_figure,
    rgb_bytes,
    sample_title,
    save_figure,
    show_image,
)


def gradcam_title(
    split: str, sample: int, label: int, classes: Sequence[str], layer: str, rho: Mapping[str, float | None]
) -> str:
    """A sample's Grad-CAM figure's title: the image, the ``layer``, and per target the Spearman correlation of the
    trained and untrained maps (``rho``; a dash where it is undefined)."""
    correlations = ", ".join(f"{t} {'–' if r is None else f'{r:.2f}'}" for t, r in rho.items())
    return (
        f"{sample_title(split, sample, label, classes)}, Grad-CAM at {layer}\nSpearman "
        f"correlation of the trained and untrained maps: {correlations}"
    )


def accuracy_title(model: str, accuracy: float, images: int, split: str) -> str:
    """``trained: accuracy 0.9125 on 10000 test images``: a confusion matrix's title, and evaluate's log line."""
    return f"{model}: accuracy {accuracy:.4f} on {images} {split} images"


def activation_max_title(model: str, layer: str, steps: int) -> str:
    """The title of a layer's mosaic of optimized inputs."""
    return f"{model} {layer}: the input that maximizes each channel's mean activation ({steps} steps)"


def class_heatmaps(
    tables: Mapping[str, np.ndarray], classes: Sequence[str], path: Path, title: str, cmap: str, dpi: int
) -> None:
    """Channels × classes mean activations, one panel per model side by side, each channel scaled from its
    least to its most active class (which classes make a filter fire, whatever its overall strength)."""
    height = 2.4 + 0.12 * max(len(t[0]) for t in tables.values())
    fig = new_figure((4.2 * len(tables), height))
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
    save_figure(fig, path, dpi)


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
    """Tiles (n, h, w), or colour tiles (n, h, w, 3) drawn in their own colours, on one fixed ``value_range`` as
    one mosaic with each tile's label in its corner (activation maximization: one optimized input per channel, on
    the pixels' range, the channel index on it)."""
    from convlens.render.grids import grid_shape, mosaic, normalize_tiles

    n, h, w = tiles.shape[:3]
    rows, cols = grid_shape(n, columns)
    gutter = max(1, h // 14)
    image = mosaic(normalize_tiles(tiles, *value_range), (rows, cols), gutter)
    fig = new_figure((cols * MAP_TILE_INCHES * 0.8, rows * MAP_TILE_INCHES * 0.8 + 0.5))
    ax = fig.add_axes((0, 0, 1, 1 - 0.5 / fig.get_size_inches()[1]))
    if image.ndim == 3:
        ax.imshow(rgb_bytes(image), interpolation="nearest")
    else:
        ax.imshow(image, cmap=mpl.colormaps[cmap].with_extremes(bad="white"), interpolation="nearest", vmin=0, vmax=1)
    ax.set_axis_off()
    for i, label in enumerate(labels):
        r, c = divmod(i, cols)
        ax.text(
            c * (w + gutter), r * (h + gutter), label, ha="left", va="top", fontsize=7, color="tab:red",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.8},
        )  # fmt: skip
    fig.suptitle(title, fontsize=11, y=1 - 0.1 / fig.get_size_inches()[1], va="top")
    save_figure(fig, path, dpi)


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
    the image's colormap (unused for a colour image (H, W, 3), drawn in its own colours) and the maps'."""
    title, row_labels = titles
    columns = 1 + max(len(row) for row in panels)
    height = 3.4 * len(panels) + 0.7
    fig = new_figure((3.0 * columns, height))
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - 1.1 / height, wspace=0.08, hspace=0.35)
    axes = fig.subplots(len(panels), columns, squeeze=False)
    for ax_row, row, label in zip(axes, panels, row_labels, strict=True):
        show_image(ax_row[0], image, cmaps[0])
        ax_row[0].set_title(label, fontsize=9)
        for ax, (heat, heading) in zip(ax_row[1:], row, strict=False):
            show_image(ax, image, cmaps[0])
            ax.imshow(heat, cmap=cmaps[1], alpha=alpha, vmin=0, vmax=1)
            ax.set_title(heading, fontsize=9)
        for ax in ax_row:
            ax.set_axis_off()
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path, dpi)


EXAMPLE_TILE_INCHES = 1.3  # one channel's tile of dataset examples (3 × 3 images of 28 × 28 by default)


def examples_figure(grid, captions: Sequence[str], path: Path, cmap: str, title: str, dpi: int) -> None:
    """Dataset examples (an ``examples.ExamplesGrid``) drawn as one image in one axes, each tile's caption written
    in the blank band under its images: one image and a text per tile, not one axes per tile. A colour grid
    (its image (H, W, 3)) is drawn in its own colours, ``cmap`` unused."""
    cols = grid.grid[1]
    height, width = grid.image.shape[:2]
    body = (cols * EXAMPLE_TILE_INCHES, cols * EXAMPLE_TILE_INCHES * height / width)
    inches = (body[0], body[1] + 0.5)  # + the title line
    check_figure_size(round(inches[1] * dpi), round(inches[0] * dpi), dpi)
    fig = new_figure(inches)
    ax = fig.add_axes((0, 0, 1, body[1] / inches[1]))
    if grid.image.ndim == 3:
        ax.imshow(rgb_bytes(grid.image), interpolation="nearest")
    else:
        colours = mpl.colormaps[cmap].with_extremes(bad="white")
        ax.imshow(grid.image, cmap=colours, vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    points = grid.band * body[0] * 72 / width * 0.7  # the band's height in points, less a margin
    for i, caption in enumerate(captions):
        r, c = divmod(i, cols)
        x = c * (grid.tile[1] + grid.gutter) + grid.tile[1] / 2
        y = r * (grid.tile[0] + grid.gutter) + grid.tile[0] - grid.band / 2
        ax.text(x, y, caption, ha="center", va="center", fontsize=points)
    fig.text(0.5, 1 - 0.25 / inches[1], title, ha="center", va="center", fontsize=11)
    save_figure(fig, path, dpi)


def confusion_figure(
    confusion: np.ndarray, classes: Sequence[str], path: Path, title: str, cmap: str, dpi: int
) -> None:
    """The confusion matrix as a heatmap, actual classes down, predicted across, every count written in its cell
    (light text on dark cells), the diagonal's cells outlined."""
    n = len(classes)
    fig = new_figure((2.5 + 0.55 * n, 2.0 + 0.5 * n))
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
    save_figure(fig, path, dpi)
