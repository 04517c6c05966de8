"""Matplotlib figures (Agg, no screen): histograms, mosaics, the sample image, a layer's vector and the comparison
of two runs; and what every figure shares: a figure without pyplot, the atomic PNG save, the pixel limit.

The analyses' figures (class heatmaps, activation maximization, Grad-CAM, dataset examples, confusion matrix) are in
``figures_analyses``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.path import Path as MplPath
from matplotlib.text import Text
from matplotlib.textpath import TextPath
from matplotlib.transforms import Affine2D, IdentityTransform

from convlens.errors import ConvlensError
from convlens.pipeline.files import atomic_path
from convlens.render.grids import FILTER_GUTTER, filter_labels, map_gutter, tile_origins
from convlens.render.language import FALLBACK, line_spacing, words

# The largest PNG a figure may become (~400 MB of RGB while drawn): a dpi or a grid beyond it is a mistake.
MAX_PIXELS = 1 << 27


# Inches per mosaic tile: a filter is a few pixels, a feature map up to 28 × 28.
FILTER_TILE_INCHES = 0.9
MAP_TILE_INCHES = 1.5
TITLE_LINE_INCHES = 0.2  # a wrapped 11-point title line (:func:`fit_title`): the title band grows by one a line


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


def space_lines(fig: Figure) -> None:
    """Give each text of ``fig`` of several lines the line spacing of :func:`words`' language
    (:func:`~convlens.render.language.line_spacing`: Korean lines apart, not touching), where none was chosen; a
    language without one keeps matplotlib's. Called before a figure is laid out or drawn (:func:`save_figure`)."""
    spacing = line_spacing()
    if spacing is None:
        return
    for text in fig.findobj(Text):
        if "\n" in text.get_text() and text.get_linespacing() == "normal":
            text.set_linespacing(spacing)


def text_inches(text: str, fontsize: float, dpi: int) -> float:
    """How wide ``text`` (its widest line) is drawn at ``fontsize`` points, in inches (the language's font); on a
    canvas of its own that is never drawn, not a figure of the run's (``new_figure``)."""
    fig = Figure(figsize=(1.0, 1.0), dpi=dpi)
    FigureCanvasAgg(fig)
    artist = fig.text(0, 0, text, fontsize=fontsize)
    return artist.get_window_extent(fig.canvas.get_renderer()).width / dpi


def fit_title(title: str, width: float, fontsize: float, dpi: int) -> str:
    """``title`` as it is where it fits ``width`` inches (a wide figure's title keeps its bytes), else each too-wide
    line broken between words into lines that fit (a word wider than ``width`` on a line of its own): a narrow
    figure (a few tiles) cuts a long title at both ends, and ``bbox_inches="tight"`` does not bring it back."""
    if text_inches(title, fontsize, dpi) <= width:
        return title
    lines: list[str] = []
    for line in title.split("\n"):
        current = ""
        for word in line.split(" "):
            wider = f"{current} {word}" if current else word
            if current and text_inches(wider, fontsize, dpi) > width:
                lines.append(current)
                current = word
            else:
                current = wider
        lines.append(current)
    return "\n".join(lines)


def save_figure(fig: Figure, path: Path, dpi: int) -> None:
    """Write the figure as PNG, atomically; zlib level 1: about half the encoding time, files ~2× larger."""
    width, height = fig.get_size_inches() * dpi
    check_figure_size(round(height), round(width), dpi)
    space_lines(fig)
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


TITLE_INCHES = 0.5  # the title line above a mosaic
BAR_INCHES = 0.75  # the band under a mosaic that holds its colourbar, the bar's ticks and its label
LABEL_SHARE = 0.2  # a tile index is at most this share of its tile high…
LABEL_POINTS = 9  # …and at most this many points
LABEL_MIN_PIXELS = 7  # an index under 7 pixels (its em; its digits ~5) cannot be read: tiles under 35 get none


@dataclass(frozen=True)
class ColourBar:
    """A mosaic's colourbar: the values its colours 0 and 1 stand for (``low``, ``high``) and its label. ``ends``
    puts a word at each end instead of numbers (feature maps: each on its own range, so no colour is one value);
    ``clipped``: values beyond the range are drawn in the end colours (the bar's arrows)."""

    low: float
    high: float
    label: str
    ends: tuple[str, str] | None = None
    clipped: bool = False


@dataclass(frozen=True)
class GridKey:
    """What a mosaic's tiles and colours mean (issue 24 §3): each tile's index in its top-left corner (``""``: none),
    each row's label in the bottom-left corner of the row's first tile, the ``gutter`` the tiles were laid out with
    (in the mosaic's pixels, :func:`convlens.render.grids.mosaic`) and the colourbar (``None``: none)."""

    labels: Sequence[str] = ()
    row_labels: Sequence[str] = ()
    gutter: int = 1
    bar: ColourBar | None = None


def filter_key(kernel_shape: tuple[int, ...], input_channels: str, vmin: float, vmax: float) -> GridKey:
    """A filter grid's key: each tile's filter index (under ``all``: the filter indices along the top row, each
    row's input channel on its first tile) and the fixed ``vmin``..``vmax`` as a colourbar whose arrows say that
    weights beyond it are drawn in its end colours. Colour filters (``rgb``, each min–max scaled to its own range
    in its own colours) get no colourbar: no one colour scale holds for them."""
    t = words()
    labels, rows = filter_labels(kernel_shape, input_channels)
    bar = None if input_channels == "rgb" else ColourBar(vmin, vmax, t("filter_colorbar"), clipped=True)
    return GridKey(labels, [t("filter_row", channel=c) for c in rows], FILTER_GUTTER, bar)


def map_key(maps: np.ndarray) -> GridKey:
    """A feature-map grid's key (maps H × W × C): each tile's channel index, and a colourbar that says what the
    colours are: each map from its own minimum to its own maximum, as the book's ``imshow`` calls draw them (a
    constant map: all the low colour), with the range of all the maps in its label."""
    t = words()
    values = np.asarray(maps, np.float64)
    finite = values[np.isfinite(values)]
    low, high = (f"{finite.min():.3g}", f"{finite.max():.3g}") if finite.size else (t("none"), t("none"))
    bar = ColourBar(0.0, 1.0, t("map_colorbar", low=low, high=high), ends=(t("map_min"), t("map_max")))
    return GridKey([str(c) for c in range(values.shape[-1])], (), map_gutter(values.shape[0]), bar)


def mosaic_scale(image: np.ndarray, tile_inches: float, grid: tuple[int, int], dpi: int) -> int:
    """How many PNG pixels square each of a mosaic's pixels becomes: its columns of tiles ``tile_inches`` wide."""
    return max(1, round(grid[1] * tile_inches * dpi / image.shape[1]))  # grid: rows × columns of tiles


def mosaic_figure(
    image: np.ndarray,
    path: Path,
    cmap: str,
    title: str,
    tile_inches: float,
    grid: tuple[int, int],
    dpi: int,
    key: GridKey | None = None,
) -> None:
    """A mosaic (values in [0, 1], NaN gutters white) as a PNG under a title line, sized by its grid; with a
    ``key``, each tile's index on it and a colourbar in a band under it.

    The mosaic is coloured at its own size and each of its pixels becomes a square block of pixels
    (what ``imshow(interpolation="nearest")`` shows). The title, the indices and the colourbar are drawn by
    matplotlib on a transparent layer (:func:`mosaic_layer`) laid over those pixels, so the key moves no tile:
    the mosaic starts at the same pixel and keeps its size with or without one, and the figure keeps its width.
    A colour mosaic (H, W, 3) keeps its own colours.
    """
    scale = mosaic_scale(image, tile_inches, grid, dpi)
    wrapped = fit_title(title, 0.96 * image.shape[1] * scale / dpi, 11, dpi)
    extra = wrapped.count("\n") - title.count("\n")  # a narrow mosaic's title wrapped: a line more a wrap
    top, band = _bands(key, dpi, extra)
    body = (image.shape[0] * scale, image.shape[1] * scale)
    check_figure_size(top + body[0] + band, body[1], dpi)
    if image.ndim == 3:  # a colour mosaic (H, W, 3): its own colours, ``cmap`` unused
        colours = rgb_bytes(image)
    else:
        colours = mpl.colormaps[cmap].with_extremes(bad="white")(image, bytes=True)[..., :3]
    pixels = np.full((top + body[0] + band, body[1], 3), 255, np.uint8)
    pixels[top : top + body[0]] = np.repeat(np.repeat(colours, scale, axis=0), scale, axis=1)
    layer = mosaic_layer(wrapped, image.shape, grid, scale, cmap, dpi, key, extra)
    space_lines(layer)
    layer.canvas.draw()
    _lay_over(pixels, np.asarray(layer.canvas.buffer_rgba()))
    _save_pixels(pixels, path)


@dataclass(frozen=True)
class Mark:
    """A tile index as :func:`mosaic_layer` draws it: its text, its size (an em, in pixels) and the PNG's pixel
    (``x`` right, ``y`` down) of its corner that ``anchor`` names: ``top`` (a tile's index, by its top-left
    corner) or ``bottom`` (a row's label, by its bottom-left corner)."""

    text: str
    x: float
    y: float
    size: float
    anchor: str


def index_marks(
    shape: tuple[int, ...], grid: tuple[int, int], scale: int, key: GridKey, dpi: int, extra: int = 0
) -> list[Mark]:
    """Where the labels of ``key`` go on a mosaic of ``shape`` (each pixel ``scale`` × ``scale``) under its title:
    each tile's in its top-left corner, each row's in the bottom-left corner of the row's first tile, inset a
    quarter of their size. Their size follows the tile: a fifth of it, at most :data:`LABEL_POINTS`; none at all
    where that is under :data:`LABEL_MIN_PIXELS` (a number nobody can read)."""
    top = _bands(key, dpi, extra)[0]
    (h, w), origins = tile_origins(shape, grid, key.gutter)
    size = min(LABEL_SHARE * min(h, w) * scale, LABEL_POINTS * dpi / 72)
    if size < LABEL_MIN_PIXELS:
        return []
    inset = max(1.0, size / 4)
    marks = [
        Mark(label, c * scale + inset, top + r * scale + inset, size, "top")
        for (r, c), label in zip(origins, key.labels, strict=False)
        if label
    ]
    rows = zip(origins[:: grid[1]], key.row_labels, strict=False)
    return marks + [
        Mark(label, c * scale + inset, top + (r + h) * scale - inset, size, "bottom") for (r, c), label in rows
    ]


def mosaic_layer(
    title: str,
    shape: tuple[int, ...],
    grid: tuple[int, int],
    scale: int,
    cmap: str,
    dpi: int,
    key: GridKey | None = None,
    extra: int = 0,
) -> Figure:
    """What :func:`mosaic_figure` draws over a mosaic of ``shape`` (each pixel ``scale`` × ``scale``), as a
    transparent figure of the PNG's size at ``dpi``: the title centred in the top band; the labels of ``key``
    (:func:`index_marks`) white with a dark outline, legible on the darkest and the lightest colour, as two path
    collections (``gid`` ``tile-index-outline`` under ``tile-index``: a few times faster than a text artist per
    tile); the colourbar in the bottom band, centred, at most 4 inches wide."""
    top, band = _bands(key, dpi, extra)
    height, width = top + shape[0] * scale + band, shape[1] * scale
    fig = new_figure((width / dpi, height / dpi))
    fig.set_dpi(dpi)
    fig.patch.set_alpha(0.0)
    fig.text(0.5, 1 - top / 2 / height, title, ha="center", va="center", fontsize=11)
    if key is None:
        return fig
    marks = index_marks(shape, grid, scale, key, dpi, extra)
    if marks:
        _draw_marks(fig, marks, height, dpi)
    if key.bar is not None:
        _colour_bar(fig, key.bar, cmap, (width, height), band, dpi)
    return fig


def _draw_marks(fig: Figure, marks: Sequence[Mark], height: int, dpi: int) -> None:
    """The marks as glyph outlines in the figure's pixels (``height`` high): a black outline, white inside."""
    paths = []
    for mark in marks:
        path = TextPath((0, 0), mark.text, size=mark.size)  # the font of the figure's language (rcParams)
        points = path.vertices[path.codes != MplPath.CLOSEPOLY]  # a glyph has points at its extremes
        if not len(points):  # blank: nothing to draw
            continue
        (x0, y0), (_, y1) = points.min(axis=0), points.max(axis=0)
        y = height - mark.y - (y1 if mark.anchor == "top" else y0)  # display pixels run upwards
        paths.append(path.transformed(Affine2D().translate(mark.x - x0, y)))
    pixels, outline = IdentityTransform(), max(1.5, marks[0].size / 6) * 72 / dpi  # the outline in points
    dark = {"facecolors": "black", "edgecolors": "black", "linewidths": outline, "gid": "tile-index-outline"}
    fig.add_artist(PathCollection(paths, transform=pixels, **dark))
    fig.add_artist(PathCollection(paths, facecolors="white", edgecolors="none", transform=pixels, gid="tile-index"))


def _bands(key: GridKey | None, dpi: int, extra: int = 0) -> tuple[int, int]:
    """The pixels above a mosaic (its title, ``extra`` lines more where it was wrapped) and under it (the
    colourbar's band, if the key has a colourbar)."""
    return round((TITLE_INCHES + extra * TITLE_LINE_INCHES) * dpi), round(
        BAR_INCHES * dpi
    ) if key is not None and key.bar is not None else 0


def _colour_bar(fig: Figure, bar: ColourBar, cmap: str, size: tuple[int, int], band: int, dpi: int) -> None:
    """A horizontal colourbar of ``cmap`` from ``bar.low`` to ``bar.high`` in the bottom ``band`` pixels of a
    figure of ``size`` (width, height) pixels: 0.14 inch high, its ticks and its label under it."""
    width, height = size
    length = min(4.0 * dpi, 0.8 * width)
    bottom = band - 0.24 * dpi
    axes = fig.add_axes(((width - length) / 2 / width, bottom / height, length / width, 0.14 * dpi / height))
    shown = mpl.cm.ScalarMappable(mpl.colors.Normalize(bar.low, bar.high), mpl.colormaps[cmap])
    colourbar = fig.colorbar(shown, cax=axes, orientation="horizontal", extend="both" if bar.clipped else "neither")
    if bar.ends is not None:
        colourbar.set_ticks([bar.low, bar.high], labels=list(bar.ends))
    else:  # the range's ends among the ticks: the value range, read off the bar
        colourbar.set_ticks(np.linspace(bar.low, bar.high, 5))
    colourbar.ax.tick_params(labelsize=7)
    colourbar.set_label(bar.label, fontsize=8, wrap=True)  # a narrow grid: the label on two lines, not cut off


def _lay_over(pixels: np.ndarray, layer: np.ndarray) -> None:
    """Blend an RGBA ``layer`` (straight alpha, as Agg draws) over RGB ``pixels`` of its size, in place; only the
    pixels it covers change."""
    covered = layer[..., 3] > 0
    drawn = layer[covered].astype(np.uint16)
    alpha = drawn[:, 3:]
    blended = (drawn[:, :3] * alpha + pixels[covered] * (255 - alpha) + 127) // 255
    pixels[covered] = blended.astype(np.uint8)


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


PANEL_HEADROOM = 0.9  # inches: a comparison panel's title, tick labels and axis label, and the figure's title


def symbols_first(families: Sequence[str]) -> list[str]:
    """``font.family`` with :data:`~convlens.render.language.FALLBACK` (DejaVu Sans) first where it is there: its
    → and hyphen for a chart of numbers and arrows (NanumGothic draws → as a small stub and the hyphen raised),
    the language's font after it for its letters, glyph by glyph; ``families`` as they are without it."""
    return [FALLBACK, *(f for f in families if f != FALLBACK)] if FALLBACK in families else list(families)


def comparison_figure(table, path: Path, labels: tuple[str, str], title: str, dpi: int = 100) -> None:
    """Relative change of each changed statistic, one panel per model, each bar labelled ``a → b (+9.9 %)`` (the
    percentage as :func:`words`' language writes it); its numbers and arrows drawn by :func:`symbols_first`."""
    with mpl.rc_context({"font.family": symbols_first(mpl.rcParams["font.family"])}):
        _comparison_figure(table, path, labels, title, dpi)


def _comparison_figure(table, path: Path, labels: tuple[str, str], title: str, dpi: int) -> None:
    t, models = words(), list(dict.fromkeys(table["model"]))
    if not models:
        fig = new_figure((6, 1.5))
        fig.text(0.5, 0.5, t("no_change"), ha="center", va="center")
        fig.suptitle(title, fontsize=11)
        save_figure(fig, path, dpi)
        return
    heights = [max(1, (table["model"] == m).sum()) for m in models]
    fig = new_figure((9, PANEL_HEADROOM * (len(models) + 1) + 0.3 * sum(heights)))  # title, axis: the panel's own
    axes = fig.subplots(len(models), 1, squeeze=False, height_ratios=heights)
    for ax, model in zip(axes[:, 0], models, strict=True):
        rows = table[table["model"] == model].iloc[::-1]
        rel = (rows["relative_change"] * 100).to_numpy()
        shown = np.clip(np.nan_to_num(rel), -100, 100)  # the label gives the exact value
        y = np.arange(len(rows))
        ax.barh(y, shown, color=np.where(shown >= 0, "tab:blue", "tab:red"))
        ax.set_yticks(y, [f"{layer} · {stat}" for layer, stat in zip(rows["layer"], rows["statistic"], strict=True)])
        for yi, r, a, b in zip(y, rel, rows["a"], rows["b"], strict=True):
            label = f"{a:.4g} → {b:.4g}" + ("" if np.isnan(r) else f" ({t('percent', value=f'{r:+.1f}')})")
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
    space_lines(fig)  # before the layout, which measures the texts
    fig.tight_layout()
    save_figure(fig, path, dpi)
