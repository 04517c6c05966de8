"""The analyses' figures (Agg, no screen): the class heatmaps of the dataset statistics, the labelled mosaic of
activation maximization, Grad-CAM's overlays, the dataset examples and the confusion matrix. They draw and save
through the helpers of ``figures``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from convlens.render.figures import (
    MAP_TILE_INCHES,
    check_figure_size,
    fit_title,
    new_figure,
    rgb_bytes,
    sample_title,
    save_figure,
    show_image,
)
from convlens.render.language import words


def gradcam_title(
    split: str, sample: int, label: int, classes: Sequence[str], layer: str, rho: Mapping[str, float | None]
) -> str:
    """A sample's Grad-CAM figure's title: the image, the ``layer``, and per target the Spearman correlation of the
    trained and untrained maps (``rho``; a dash where it is undefined)."""
    t = words()
    correlations = ", ".join(f"{t.term('target', k)} {t('none') if r is None else f'{r:.2f}'}" for k, r in rho.items())
    return t(
        "gradcam_title", sample=sample_title(split, sample, label, classes), layer=layer, correlations=correlations
    )


def activation_max_title(model: str, layer: str, steps: int) -> str:
    """The title of a layer's mosaic of optimized inputs."""
    t = words()
    return t("actmax_title", model=t.term("model", model), layer=layer, steps=t.count("actmax_steps", steps))


def channel_order(selectivity: np.ndarray, order: str) -> np.ndarray:
    """The heatmap's rows as channel indices: ``selectivity`` order (most selective first, equal ones in the layer's
    order; NaN as 0) or ``layer`` order."""
    if order == "layer":
        return np.arange(len(selectivity))
    return np.argsort(-np.nan_to_num(np.asarray(selectivity, np.float64)), kind="stable")


def heatmap_values(class_means: np.ndarray, scale: str) -> tuple[np.ndarray, tuple[float, float]]:
    """Class means (classes × channels; NaN as 0) as the heatmap's channels × classes values and their colour
    range: ``channel`` scales each channel from its least (0) to its most (1) active class (a flat channel all 0),
    ``absolute`` keeps the activations on one range, from 0 (or the lowest, if negative) to the highest."""
    values = np.nan_to_num(np.asarray(class_means, np.float64).T)
    if scale == "channel":
        low = values.min(axis=1, keepdims=True)
        span = values.max(axis=1, keepdims=True) - low
        return np.divide(values - low, span, out=np.zeros_like(values), where=span > 0), (0.0, 1.0)
    low = min(0.0, float(values.min(initial=0.0)))
    high = float(values.max(initial=low))
    return values, (low, high if high > low else low + 1.0)


def class_heatmaps(
    tables: Mapping[str, np.ndarray],
    selectivities: Mapping[str, np.ndarray],
    classes: Sequence[str],
    path: Path,
    title: str,
    style: tuple[str, str, str],
    dpi: int,
) -> None:
    """Channels × classes mean activations (``tables``: model → classes × channels), one panel per model side by
    side (``render_dataset@<model>`` draws one model per figure), each with its channels' selectivity as bars beside
    the rows and a colourbar. ``style``: the colormap, the scale (:func:`heatmap_values`: ``channel``, or
    ``absolute`` on one range for every panel of the figure) and the rows' order (:func:`channel_order`:
    ``selectivity`` or ``layer``); the rows are labelled with their channel index."""
    cmap, scale, order = style
    t = words()
    channels = max(len(t[0]) for t in tables.values())
    height, width = 2.4 + 0.12 * channels, 5.6 * len(tables)
    fig = new_figure((width, height))
    ratios = [4.0, 1.0, 0.2, 1.0] * len(tables)
    grid = fig.add_gridspec(
        1, len(ratios) - 1, width_ratios=ratios[:-1], wspace=0.12,
        left=0.5 / width, right=1 - 0.7 / width, bottom=1.1 / height, top=1 - 0.7 / height,
    )  # fmt: skip
    label = t("heatmap_scale_channel") if scale == "channel" else t("mean_activation")
    drawn = {model: heatmap_values(class_means, scale) for model, class_means in tables.items()}
    low, high = min(r[0] for _, r in drawn.values()), max(r[1] for _, r in drawn.values())  # absolute: one range
    for i, (model, (values, _)) in enumerate(drawn.items()):
        rows = channel_order(selectivities[model], order)
        heat = fig.add_subplot(grid[0, 4 * i])
        image = heat.imshow(values[rows], cmap=cmap, vmin=low, vmax=high, aspect="auto", interpolation="nearest")
        heat.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=8)
        heat.set_yticks(range(len(rows)), [str(c) for c in rows], fontsize=5)
        heat.set_ylabel(t("channel_by_selectivity") if order == "selectivity" else t("channel"), fontsize=8)
        heat.set_title(t.term("model", model), fontsize=10)
        bars = fig.add_subplot(grid[0, 4 * i + 1], sharey=heat)
        bars.barh(range(len(rows)), np.nan_to_num(np.asarray(selectivities[model], np.float64))[rows], color="0.45")
        bars.set_xlim(0, 1)
        bars.set_ylim(len(rows) - 0.5, -0.5)
        bars.tick_params(labelleft=False, labelsize=6)
        bars.set_xlabel(t("selectivity"), fontsize=8)
        colourbar = fig.colorbar(image, cax=fig.add_subplot(grid[0, 4 * i + 2]))
        colourbar.set_label(label, fontsize=7)
        colourbar.ax.tick_params(labelsize=6)
    fig.suptitle(title, fontsize=11)
    save_figure(fig, path, dpi)


MARK_GLYPHS = {"dead": "×", "below": "↓"}  # activation maximization's failed channels (analysis.ascent's marks)
MARK_COLOR = "red"
# A failed channel's border: red between white and black lines (a red border alone vanishes on a red-dominant RGB
# tile), and its glyph red in a black outline.
MARK_BORDER = (("black", 4.5), ("white", 3.0), (MARK_COLOR, 1.5))
MARK_OUTLINE = [patheffects.Stroke(linewidth=2, foreground="black"), patheffects.Normal()]
TITLE_LINE_INCHES = 0.2  # a 10-point title line (the activation-max figure's band grows by one per wrapped line)


def activation_max_legend(marks: Sequence[str], what: str) -> str:
    """The line under an activation-max mosaic's title: how many tiles carry each mark, what the marks and the
    numbers on the tiles mean, and what black and white are (``what``)."""
    dead, below = marks.count("dead"), marks.count("below")
    return words()(
        "actmax_legend", dead_mark=MARK_GLYPHS["dead"], dead=dead, below_mark=MARK_GLYPHS["below"], below=below,
        what=what,
    )  # fmt: skip


def tile_labels(values: Sequence[float]) -> list[str]:
    """Each tile's corner label: the channel's index and its own input's mean activation."""
    return [f"{c}: {v:.3g}" for c, v in enumerate(values)]


def labelled_mosaic_figure(
    tiles: np.ndarray,
    path: Path,
    cmap: str,
    title: str,
    labels: Sequence[str],
    columns: int | None,
    value_range: tuple[float, float],
    dpi: int,
    marks: Sequence[str] = (),
    colorbar: str | None = None,
) -> None:
    """Tiles (n, h, w), or colour tiles (n, h, w, 3) drawn in their own colours, on one fixed ``value_range`` as
    one mosaic with each tile's label in its corner (activation maximization: one optimized input per channel, on
    the pixels' range, the channel index on it). A tile whose entry of ``marks`` is one of :data:`MARK_GLYPHS` gets
    a red border and that glyph; ``colorbar`` labels a colour bar of the gray tiles' ``value_range``."""
    from convlens.render.grids import grid_shape, mosaic, normalize_tiles

    n, h, w = tiles.shape[:3]
    rows, cols = grid_shape(n, columns)
    gutter = max(1, h // 14)
    image = mosaic(normalize_tiles(tiles, *value_range), (rows, cols), gutter)
    bar = 1.0 if colorbar and image.ndim == 2 else 0.0
    width = cols * MAP_TILE_INCHES * 0.8
    wrapped = fit_title(title, 0.96 * (width + bar), 10, dpi)
    band = 0.7 + (wrapped.count("\n") - title.count("\n")) * TITLE_LINE_INCHES  # a line more for each wrap
    fig = new_figure((width + bar, rows * MAP_TILE_INCHES * 0.8 + band))
    top = 1 - band / fig.get_size_inches()[1]
    ax = fig.add_axes((0, 0, width / (width + bar), top))
    if image.ndim == 3:
        ax.imshow(rgb_bytes(image), interpolation="nearest")
    else:
        shown = ax.imshow(
            image, cmap=mpl.colormaps[cmap].with_extremes(bad="white"), interpolation="nearest", vmin=0, vmax=1
        )
        if bar:
            scale = fig.colorbar(
                shown, cax=fig.add_axes((1 - 0.75 * bar / (width + bar), 0.08, 0.1 / (width + bar), 0.8 * top))
            )
            scale.set_ticks([0, 1], labels=[f"{value_range[0]:.3g}", f"{value_range[1]:.3g}"])
            scale.set_label(colorbar, fontsize=7)
    ax.set_axis_off()
    for i, label in enumerate(labels):
        r, c = divmod(i, cols)
        ax.text(
            c * (w + gutter), r * (h + gutter), label, ha="left", va="top", fontsize=6, color="black",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.8},
        )  # fmt: skip
    for i, mark in enumerate(marks):
        if mark in MARK_GLYPHS:
            r, c = divmod(i, cols)
            x0, y0 = c * (w + gutter) - 0.5, r * (h + gutter) - 0.5
            for colour, line in MARK_BORDER:  # black | white | red | white | black: seen on any tile's colour
                ax.add_patch(Rectangle((x0, y0), w, h, fill=False, edgecolor=colour, linewidth=line))
            ax.text(x0 + w - 0.5, y0 + h - 0.5, MARK_GLYPHS[mark], ha="right", va="bottom", fontsize=9,
                    color=MARK_COLOR, fontweight="bold", path_effects=MARK_OUTLINE)  # fmt: skip
    fig.suptitle(wrapped, fontsize=10, y=1 - 0.1 / fig.get_size_inches()[1], va="top")
    save_figure(fig, path, dpi)


def heat_layer(heat: np.ndarray, top: float, cmap: str, alpha: float) -> np.ndarray:
    """An attribution map as an RGBA layer over its image: coloured by ``cmap`` on 0..``top``, each pixel's
    opacity ``alpha`` × its share of ``top``, so where a map is zero the image shows as it is."""
    share = np.clip(np.asarray(heat, np.float64) / top, 0, 1) if top > 0 else np.zeros(np.shape(heat))
    layer = mpl.colormaps[cmap](share)
    layer[..., 3] = alpha * share
    return layer


def attribution_figure(
    image: np.ndarray,
    rows: Sequence[tuple[str, Sequence[tuple[np.ndarray, str]]]],
    path: Path,
    title: str,
    style: tuple[str, str, float, str],
    dpi: int,
) -> None:
    """One row per (label, panels) of ``rows``: the image, then each (map, heading) drawn over it (trained beside
    untrained), and a colourbar. ``style``: the image's colormap (unused for a colour image), the maps' colormap,
    their opacity at the top of the scale, and the scale: ``shared`` (one per row, 0 to the row's largest value:
    a weak map looks weak) or ``each`` (each map to its own maximum, the bar in shares of it)."""
    image_cmap, cmap, alpha, scale = style
    columns = 1 + max(len(panels) for _, panels in rows)
    height = 2.9 * len(rows) + 0.95  # the rows, and a band on top: the title's 2 lines over the panels' 3
    fig = new_figure((2.6 * columns + 1.0, height))
    fig.subplots_adjust(left=0.02, right=0.9, bottom=0.02, top=1 - 1.05 / height, wspace=0.08, hspace=0.45)
    axes = fig.subplots(len(rows), columns, squeeze=False)
    for ax_row, (label, panels) in zip(axes, rows, strict=True):
        show_image(ax_row[0], image, image_cmap)
        ax_row[0].set_title(label, fontsize=8)
        row_top = max(float(np.max(heat)) for heat, _ in panels)
        for ax, (heat, heading) in zip(ax_row[1:], panels, strict=False):
            top = row_top if scale == "shared" else float(np.max(heat))
            show_image(ax, image, image_cmap)
            ax.imshow(heat_layer(heat, top, cmap, alpha))
            ax.set_title(heading, fontsize=8)
        for ax in ax_row:
            ax.set_axis_off()
        bar_top = row_top if scale == "shared" and row_top > 0 else 1.0
        bar = mpl.cm.ScalarMappable(mpl.colors.Normalize(0, bar_top), cmap)
        caption = words()("attribution_shared" if scale == "shared" else "attribution_each")
        colorbar = fig.colorbar(bar, ax=ax_row.tolist(), shrink=0.8, pad=0.02)
        colorbar.set_label(caption, fontsize=7)
        colorbar.ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=10, y=1 - 0.08 / height, va="top")  # in the band, whatever the rows
    save_figure(fig, path, dpi)


EXAMPLE_TILE_INCHES = 1.3  # one channel's tile of dataset examples (3 × 3 images of 28 × 28 by default)


def examples_figure(grid, captions: Sequence[str], path: Path, cmap: str, title: str, dpi: int) -> None:
    """Dataset examples (an ``examples.ExamplesGrid``) drawn as one image in one axes, each tile's caption written
    in the blank band under its images: one image and a text per tile, not one axes per tile. A colour grid
    (its image (H, W, 3)) is drawn in its own colours, ``cmap`` unused. The grid's ``outlines`` (top, left, bottom,
    right in its pixels; the patch each channel's top image shows) are drawn as red rectangles; a tile wider than
    tall (patches beside an image) is drawn as tall as a square one, wider."""
    cols = grid.grid[1]
    height, width = grid.image.shape[:2]
    inches_per_tile = EXAMPLE_TILE_INCHES * max(1.0, grid.tile[1] / grid.tile[0])
    body = (cols * inches_per_tile, cols * inches_per_tile * height / width)
    inches = (body[0], body[1] + 0.5 + 0.2 * title.count("\n"))  # + the title's lines
    check_figure_size(round(inches[1] * dpi), round(inches[0] * dpi), dpi)
    fig = new_figure(inches)
    ax = fig.add_axes((0, 0, 1, body[1] / inches[1]))
    if grid.image.ndim == 3:
        ax.imshow(rgb_bytes(grid.image), interpolation="nearest")
    else:
        colours = mpl.colormaps[cmap].with_extremes(bad="white")
        ax.imshow(grid.image, cmap=colours, vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    pixel = body[0] * 72 / width  # one pixel of the mosaic, in points
    for top, left, bottom, right in getattr(grid, "outlines", ()):
        corner = (left - 0.5, top - 0.5)  # imshow centres pixel (r, c) on (c, r)
        ax.add_patch(Rectangle(corner, right - left, bottom - top, fill=False, edgecolor="tab:red", linewidth=pixel))
    points = grid.band * pixel * 0.7  # the band's height in points, less a margin
    for i, caption in enumerate(captions):
        r, c = divmod(i, cols)
        x = c * (grid.tile[1] + grid.gutter) + grid.tile[1] / 2
        y = r * (grid.tile[0] + grid.gutter) + grid.tile[0] - grid.band / 2
        ax.text(x, y, caption, ha="center", va="center", fontsize=points)
    fig.text(0.5, 1 - (inches[1] - body[1]) / 2 / inches[1], title, ha="center", va="center", fontsize=11)
    save_figure(fig, path, dpi)


def recall_matrix(confusion: np.ndarray) -> np.ndarray:
    """The confusion matrix with each row divided by its total: the share of each actual class's images given each
    predicted class (the diagonal: each class's recall); NaN across a class with no image."""
    counts = np.asarray(confusion, np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.full(counts.shape, np.nan), where=totals > 0)


def confusion_panel(
    ax: Axes, values: np.ndarray, texts: np.ndarray, top: float, classes: Sequence[str], cmap: str
) -> None:
    """One heatmap of a confusion matrix on 0..``top``: each cell's text written in it (light on dark cells), the
    diagonal's cells outlined, actual classes down, predicted across."""
    n = len(classes)
    colours = mpl.colormaps[cmap].with_extremes(bad="white")
    ax.imshow(values, cmap=colours, vmin=0, vmax=top, interpolation="nearest")
    for (i, j), value in np.ndenumerate(values):
        dark = np.isfinite(value) and sum(colours(value / top)[:3]) < 1.5
        ax.text(j, i, texts[i, j], ha="center", va="center", fontsize=8, color="white" if dark else "black")
    for i in range(n):
        ax.add_patch(Rectangle((i - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="tab:red", linewidth=1))
    ax.set_xticks(range(n), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set_xlabel(words()("predicted_class"))
    ax.set_ylabel(words()("actual_class"))


def confusion_figure(
    confusion: np.ndarray, classes: Sequence[str], path: Path, title: str, cmap: str, dpi: int
) -> None:
    """The confusion matrix twice, side by side: the counts, and each row divided by its total
    (:func:`recall_matrix`, on 0..1: a rare class's errors show as large as a common one's), every cell's value
    written in it, the diagonal's cells outlined."""
    n = len(classes)
    fig = new_figure((2 * (2.5 + 0.55 * n), 2.3 + 0.5 * n))
    counts_ax, recall_ax = fig.subplots(1, 2)
    counts = np.asarray(confusion)
    confusion_panel(counts_ax, counts, counts.astype(str), max(float(counts.max()), 1.0), classes, cmap)
    counts_ax.set_title(words()("confusion_counts"), fontsize=9)
    shares = recall_matrix(counts)
    texts = np.vectorize(lambda v: words()("none") if np.isnan(v) else f"{v:.2f}", otypes=[object])(shares)
    confusion_panel(recall_ax, shares, texts, 1.0, classes, cmap)
    recall_ax.set_title(words()("confusion_shares"), fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi)
