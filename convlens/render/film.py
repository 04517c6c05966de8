"""The film of the filters (issue 23 §3): a conv layer's filters and the samples' feature maps at every snapshot of a
training run (``train@trained``'s ``outputs/train/snapshots``), as one strip figure and as an animated GIF.

Arrays in, figures and frames out; ``stages/render_film.py`` reads the snapshots and writes the files.

- **One colour scale for the whole film.** A layer's filters are drawn on ``±m``, ``m`` the 99th percentile of
  ``|w|`` over *all* its snapshots (:func:`kernel_range`), zero at the middle colour, so a filter that grows is seen
  to grow instead of being rescaled away; the 1 % of weights beyond it are clipped to the end colours (the colour
  bar's arrows). With the largest ``|w|`` instead, one outlier (1.54 in the real run's conv2d, where 99 % are under
  0.55) would leave every filter one colour; the book's fixed ``-0.5..0.5`` (``render.filter_vmin``/``vmax``) would
  do for conv2d but not for a layer of another size (the real run's conv2d_1: 99 % under 0.40).
- **Feature maps:** each map (channel) on its own range over all the snapshots (:func:`maps_range`): a channel that
  wakes up is seen to, whatever the other channels do, and no frame is rescaled on its own.
- **Frames** are drawn on one matplotlib figure whose image and caption are swapped frame by frame, so every frame
  has the same size; each caption says the epoch and the validation accuracy after it (epoch 0: the untrained
  baseline, before any training). GIFs are written by Pillow, atomically (``atomic_path``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib import patheffects
from matplotlib.colors import Normalize
from matplotlib.ticker import MaxNLocator

from convlens.errors import ConvlensError
from convlens.pipeline.files import atomic_path
from convlens.render.figures import (
    LABEL_MIN_PIXELS,
    LABEL_POINTS,
    LABEL_SHARE,
    GridKey,
    check_figure_size,
    new_figure,
    save_figure,
    space_lines,
)
from convlens.render.grids import (
    FILTER_GUTTER,
    filter_tiles,
    grid_shape,
    map_gutter,
    mosaic,
    normalize_tiles,
    tile_origins,
)
from convlens.render.language import Strings, counted

# The book model's kernel std per conv layer (chapter 8-3's first printout) and that of the untrained model
# (untrained.seed=42, the book notebook's numbers), as the default run (model=book) wrote them to the metrics
# weights_trained.json and weights_untrained.json (commit 1f892b3). Pinned here because with -S model=train those
# files hold the model trained here instead. Drawn only for a layer of the same name and kernel shape.
BOOK_KERNEL_STD: dict[str, dict[str, object]] = {
    "conv2d": {"shape": (3, 3, 1, 32), "trained": 0.23351653, "untrained": 0.08463709},
    "conv2d_1": {"shape": (3, 3, 32, 64), "trained": 0.13839592, "untrained": 0.047982484},
}

PREFIX = "film_"  # the film's words in the figures' catalogue (convlens/render/strings.yaml): film_epoch, …


def film_text(language: str) -> dict[str, str]:
    """The film's words in ``language`` (``report.language``), from the figures' catalogue, without their prefix:
    ``{"epoch": "epoch {epoch}", …}``. The stage draws inside ``figure_language`` for the language's font."""
    table = Strings(language).tables()[language]
    return {key.removeprefix(PREFIX): text for key, text in table.items() if key.startswith(PREFIX)}


def reason_words(history: Mapping, text: Mapping[str, str]) -> str:
    """Why training ended, in the film's language, from ``history.json``'s numbers (its ``reason`` is the log's
    English): stopped early ``epochs_run − best_epoch`` epochs after the best one, or every epoch run."""
    best, epochs = history["best_epoch"], history["epochs_run"]
    if history["stopped_early"]:
        return text["reason_early"].format(waited_epochs=counted(text, "epochs", epochs - best), best=best)
    return text["reason_all"].format(best=best)


def snapshot_labels(val_accuracy: Sequence[float], text: Mapping[str, str]) -> list[str]:
    """One label per snapshot: ``epoch 0 (untrained)``, then ``epoch e · val accuracy 0.xxxx`` after each epoch."""
    return [text["epoch_untrained"]] + [
        text["epoch_accuracy"].format(epoch=e, accuracy=f"{a:.4f}") for e, a in enumerate(val_accuracy, start=1)
    ]


CLIP_PERCENTILE = 99.0  # the film's colour scale: this percentile of |w| over every snapshot; the rest clipped


def kernel_range(snapshots: np.ndarray, percentile: float = CLIP_PERCENTILE) -> tuple[float, float]:
    """``(-m, m)``, ``m`` the ``percentile`` of the finite ``|w|`` over every snapshot of a layer (100: the largest;
    1 for all zeros): the film's one colour scale, symmetric so that zero is the middle colour."""
    values = np.abs(np.asarray(snapshots, dtype=np.float64))
    finite = values[np.isfinite(values)]
    m = float(np.percentile(finite, percentile)) if finite.size else 0.0
    m = m if m > 0 else 1.0
    return -m, m


def maps_range(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per channel, the lowest and highest value over every snapshot of one sample's maps (snapshots, H, W, C)."""
    values = np.nan_to_num(np.asarray(maps, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return values.min(axis=(0, 1, 2)), values.max(axis=(0, 1, 2))


def check_snapshots(snapshots: np.ndarray, labels: Sequence[str], what: str) -> None:
    """One snapshot per label, each a 4-D kernel (or H×W×C maps)."""
    if snapshots.ndim != 5 or len(snapshots) != len(labels) or len(snapshots) == 0:
        raise ConvlensError(
            f"{what}: snapshots of shape {snapshots.shape} do not make {len(labels)} frames of a 4-D array each; "
            "train the model again (dvc exp run -S model=train) so the snapshots and history.json agree"
        )


def kernel_frames(
    snapshots: np.ndarray, mode: str, columns: int | None, vmin: float, vmax: float
) -> tuple[list[np.ndarray], tuple[int, int]]:
    """Each snapshot's filters (snapshots, kh, kw, in, out) as one mosaic of values in [0, 1] on ``vmin..vmax``,
    drawn as ``render.input_channels`` says (``mode``, resolved: ``first``, ``mean``, ``all``, ``rgb``)."""
    frames, grid = [], (1, 1)
    for kernel in snapshots:
        tiles, fixed = filter_tiles(np.asarray(kernel), mode)
        grid = grid_shape(len(tiles), fixed or columns)
        frames.append(mosaic(normalize_tiles(tiles, vmin, vmax), grid, gutter=FILTER_GUTTER))
    return frames, grid


def strip_image(
    snapshots: np.ndarray, mode: str, filters: int, vmin: float, vmax: float
) -> tuple[np.ndarray, tuple[int, int]]:
    """The strip: one row per snapshot, the first ``filters`` filters as columns (values in [0, 1], NaN gutters)."""
    rows = []
    for kernel in snapshots:
        tiles, _ = filter_tiles(np.asarray(kernel), mode)
        rows.append(normalize_tiles(tiles[:filters], vmin, vmax))
    tiles = np.concatenate(rows)
    grid = (len(snapshots), len(rows[0]))
    return mosaic(tiles, grid, gutter=1), grid


def maps_frames(maps: np.ndarray, columns: int | None) -> tuple[list[np.ndarray], tuple[int, int]]:
    """One sample's maps at each snapshot (snapshots, H, W, C) as mosaics, each channel on its range over all the
    snapshots (:func:`maps_range`); a channel that never changes is drawn at 0."""
    lo, hi = maps_range(maps)
    span = hi - lo
    frames, grid = [], (1, 1)
    gutter = map_gutter(maps.shape[1])
    for snapshot in maps:
        tiles = np.moveaxis(np.nan_to_num(np.asarray(snapshot, dtype=np.float64)), -1, 0)  # C, H, W
        scaled = np.divide(
            tiles - lo[:, None, None], span[:, None, None], out=np.zeros_like(tiles), where=span[:, None, None] > 0
        )
        grid = grid_shape(len(tiles), columns)
        frames.append(mosaic(np.clip(scaled, 0.0, 1.0), grid, gutter=gutter))
    return frames, grid


BAR_INCHES = 0.9  # right of a frame's mosaic: its colour bar (0.12 in), the bar's ticks and its label


def _frame_size(image: np.ndarray, dpi: int, tile_inches: float, grid: tuple[int, int]) -> tuple[float, float]:
    """Inches of a frame: the mosaic at ``tile_inches`` a tile (at most 12 inches wide), a caption and a colour bar."""
    width = min(12.0, max(3.0, grid[1] * tile_inches))
    height = width * image.shape[0] / image.shape[1]
    check_figure_size(round((height + 1.2) * dpi), round((width + 1.2) * dpi), dpi)
    return width + 1.2, height + 1.2


def frame_pixels(
    mosaics: Sequence[np.ndarray],
    captions: Sequence[str],
    cmap: str,
    dpi: int,
    tile_inches: float,
    grid: tuple[int, int],
    scale: tuple[float, float] | None,
    scale_label: str,
    key: GridKey | None = None,
) -> list[np.ndarray]:
    """Each mosaic (values in [0, 1]; colour mosaics (…, 3) in their own colours) drawn under its caption as RGB
    pixels, all of one size: one figure, its image and caption swapped frame by frame. ``scale``: the values that
    0 and 1 stand for, shown on a colour bar (None: the bar says ``scale_label`` only); colour mosaics get no bar
    (their colours are not read off ``cmap``). ``key``: each tile's label (its filter's or channel's index, as the
    strip and the mosaics carry) in its top-left corner (:func:`tile_marks`)."""
    if not mosaics or len(mosaics) != len(captions):
        raise ConvlensError(f"{len(mosaics)} mosaics for {len(captions)} captions: one frame needs one of each")
    fig = new_figure(_frame_size(mosaics[0], dpi, tile_inches, grid))
    width = fig.get_size_inches()[0]
    box = (0.04, 0.06, 0.94 - BAR_INCHES / width, 0.82)  # the mosaic's axes, clear of the colour bar's inches
    ax = fig.add_axes(box)
    ax.set_axis_off()
    colours = mpl.colormaps[cmap].with_extremes(bad="white")
    im = ax.imshow(_shown(mosaics[0]), cmap=colours, vmin=0.0, vmax=1.0, interpolation="nearest")
    if mosaics[0].ndim == 2:
        bar = fig.colorbar(
            mpl.cm.ScalarMappable(norm=Normalize(*(scale or (0.0, 1.0))), cmap=colours),
            cax=fig.add_axes((1 - 0.8 / width, 0.1, 0.12 / width, 0.74)),  # its ticks and label in the last 0.68 in
            extend="neither" if scale is None else "both",
        )
        if scale is None:
            bar.set_ticks([])
        bar.set_label(scale_label, fontsize=8)
    if key is not None:  # imshow fits the mosaic in the axes, keeping its pixels square
        inches = fig.get_size_inches() * box[2:] / (mosaics[0].shape[1], mosaics[0].shape[0])
        tile_marks(ax, mosaics[0].shape, grid, key, float(inches.min()) * 72, dpi)
    title = fig.suptitle(captions[0], fontsize=11)
    frames = []
    for image, caption in zip(mosaics, captions, strict=True):
        im.set_data(_shown(image))
        title.set_text(caption)
        space_lines(fig)
        fig.set_dpi(dpi)
        fig.canvas.draw()
        frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    return frames


def tile_marks(ax, shape: tuple[int, ...], grid: tuple[int, int], key: GridKey, pixel_points: float, dpi: int) -> None:
    """The labels of ``key`` on a mosaic of ``shape`` shown in ``ax`` (``pixel_points``: one mosaic pixel, in
    points), each in its tile's top-left corner, white in a black outline; sized as the mosaics' indices (a fifth
    of the tile, at most :data:`~convlens.render.figures.LABEL_POINTS`), none where that is under
    :data:`~convlens.render.figures.LABEL_MIN_PIXELS` of the frame's ``dpi`` (a number nobody can read)."""
    (h, w), origins = tile_origins(shape, grid, key.gutter)
    points = min(LABEL_SHARE * min(h, w) * pixel_points, LABEL_POINTS)
    if points * dpi / 72 < LABEL_MIN_PIXELS:
        return
    inset = points / 4 / pixel_points  # a quarter of the label's size, in mosaic pixels
    outline = [patheffects.Stroke(linewidth=max(2.0, points / 4), foreground="black"), patheffects.Normal()]
    for (r, c), label in zip(origins, key.labels, strict=False):
        if label:
            ax.text(c - 0.5 + inset, r - 0.5 + inset, label, ha="left", va="top", fontsize=points, color="white",
                    path_effects=outline)  # fmt: skip


def _shown(image: np.ndarray) -> np.ndarray:
    """A colour mosaic with white gutters (``imshow`` draws NaN in RGB as black), a gray one as it is."""
    return np.where(np.isnan(image), 1.0, image) if image.ndim == 3 else image


def write_gif(frames: Sequence[np.ndarray], path: Path, duration_ms: int) -> None:
    """Frames (RGB, one size) as an animated GIF that loops, ``duration_ms`` each, written atomically by Pillow.
    Every frame stays a frame (no two are merged): one per snapshot."""
    from PIL import Image

    if not frames:
        raise ConvlensError(f"{path.name}: a film needs at least one frame")
    if len({f.shape for f in frames}) != 1:
        raise ConvlensError(f"{path.name}: frames of different sizes {sorted({f.shape for f in frames})}")
    images = [Image.fromarray(np.ascontiguousarray(f, dtype=np.uint8)).quantize(colors=255) for f in frames]
    with atomic_path(path) as tmp:
        images[0].save(
            tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0, optimize=False
        )


def strip_figure(
    image: np.ndarray,
    grid: tuple[int, int],
    labels: Sequence[str],
    path: Path,
    cmap: str,
    title: str,
    scale: tuple[float, float],
    text: Mapping[str, str],
    dpi: int,
) -> None:
    """The strip (:func:`strip_image`): one row per snapshot, labelled by its epoch and val accuracy; the filters'
    numbers along the top; the colour bar in the weights' units, none for colour tiles (an RGB ``image`` (…, 3):
    its colours are the weights of the 3 input channels, not read off ``cmap``; the title says so)."""
    rows, columns = grid
    width, height = 3.4 + 0.42 * columns, 0.9 + 0.42 * rows
    fig = new_figure((width, height))
    ax = fig.add_axes((2.4 / width, 0.2 / height, 0.42 * columns / width, 0.42 * rows / height))
    colours = mpl.colormaps[cmap].with_extremes(bad="white")
    ax.imshow(_shown(image), cmap=colours, vmin=0.0, vmax=1.0, interpolation="nearest", aspect="auto")
    tile_h = (image.shape[0] + 1) / rows
    tile_w = (image.shape[1] + 1) / columns
    ax.set_yticks([(r + 0.5) * tile_h - 1 for r in range(rows)], list(labels), fontsize=8)
    ax.set_xticks([(c + 0.5) * tile_w - 1 for c in range(columns)], [str(c) for c in range(columns)], fontsize=7)
    ax.xaxis.set_ticks_position("top")
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if image.ndim == 2:
        cax = fig.add_axes(((2.5 + 0.42 * columns) / width, 0.2 / height, 0.12 / width, 0.42 * rows / height))
        bar = fig.colorbar(mpl.cm.ScalarMappable(norm=Normalize(*scale), cmap=colours), cax=cax, extend="both")
        bar.set_label(text["weight"], fontsize=8)
    fig.suptitle(title, fontsize=10, y=1 - 0.12 / height, va="top")
    save_figure(fig, path, dpi)


def learning_curves_figure(history: Mapping, path: Path, text: Mapping[str, str], dpi: int) -> None:
    """Loss and accuracy per epoch, train and validation, the best epoch (the one kept) marked; the title says how
    many epochs ran and why training stopped."""
    fig = new_figure((10, 3.8))
    axes = fig.subplots(1, 2)
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, key in zip(axes, ("loss", "accuracy"), strict=True):
        ax.plot(epochs, history[key], "o-", label=text["train"], markersize=3)
        ax.plot(epochs, history[f"val_{key}"], "o-", label=text["validation"], markersize=3)
        ax.axvline(history["best_epoch"], color="gray", linestyle="--", linewidth=1)
        late = history["best_epoch"] > (len(epochs) + 1) / 2  # the label on the line's roomier side
        ax.annotate(  # above the axes, at the line's top: clear of the line, the curves and the legend
            text["best_epoch"].format(epoch=history["best_epoch"]),
            (history["best_epoch"], 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(-3 if late else 3, 2),
            textcoords="offset points",
            ha="right" if late else "left",
            va="bottom",
            fontsize=8,
            color="gray",
        )
        ax.set_xlabel(text["epoch"].format(epoch="").strip())
        ax.set_ylabel(text[key])
        ax.set_xticks(epochs if len(epochs) <= 25 else np.linspace(1, len(epochs), 10).round())
        ax.legend(fontsize=8)
    epochs_words = counted(text, "epochs", history["epochs_run"])
    fig.suptitle(text["curves_title"].format(epochs=epochs_words, reason=history["reason"]), fontsize=10)
    space_lines(fig)  # before the layout, which measures the texts
    fig.tight_layout()
    save_figure(fig, path, dpi)


def reference_std(kernel_shapes: Mapping[str, Sequence[int]]) -> dict[str, dict[str, float]]:
    """The book's trained and the untrained model's kernel std (:data:`BOOK_KERNEL_STD`) for each layer here of the
    same name and kernel shape, and only where the model starts as the book's does: its ``conv2d`` is the book's
    (3, 3, 1, 32), one input channel as Fashion-MNIST's. A changed architecture has no reference, nor has a model of
    other input channels (RGB photos) whose later layer happens to have the book's conv2d_1 shape: its numbers are
    not comparable to the book's."""
    first = kernel_shapes.get("conv2d")
    if first is None or tuple(first) != BOOK_KERNEL_STD["conv2d"]["shape"]:
        return {}
    return {
        layer: {role: float(BOOK_KERNEL_STD[layer][role]) for role in ("trained", "untrained")}
        for layer, shape in kernel_shapes.items()
        if layer in BOOK_KERNEL_STD and tuple(shape) == BOOK_KERNEL_STD[layer]["shape"]
    }


def kernel_std_figure(
    kernel_std: Mapping[str, Sequence[float]],
    reference: Mapping[str, Mapping[str, float]],
    path: Path,
    text: Mapping[str, str],
    dpi: int,
) -> None:
    """Each conv layer's kernel std per snapshot (epoch 0: the initialisation), one line a layer; the book model's
    trained value (dashed) and the untrained baseline's (dotted) as horizontal lines in the layer's colour; without
    a reference (:func:`reference_std`) the title names no book model. Whole epochs on the x axis; the legend beside
    the axes, where it covers no line (a horizontal reference line crosses the whole plot)."""
    fig = new_figure((7.5, 4.2))
    ax = fig.subplots()
    for i, (layer, values) in enumerate(kernel_std.items()):
        colour = f"C{i % 10}"
        ax.plot(np.arange(len(values)), values, "o-", color=colour, label=layer, markersize=3)
        if layer in reference:
            for role, style in (("trained", "--"), ("untrained", ":")):
                value = reference[layer][role]
                label = text[f"book_{role}"].format(layer=layer, value=value)
                ax.axhline(value, color=colour, linestyle=style, linewidth=1, label=label)
    ax.set_xlabel(text["epoch"].format(epoch="").strip())
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(text["std"])
    ax.set_title(text["std_title" if reference else "std_title_own"], fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    space_lines(fig)  # before the layout, which measures the texts
    fig.tight_layout()
    save_figure(fig, path, dpi)
