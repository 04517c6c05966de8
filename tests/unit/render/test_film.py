"""The film of the filters (issue 23 §3): strips, frames on one colour scale, GIFs with one frame per snapshot."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from convlens.errors import ConvlensError
from convlens.render import film
from convlens.render.figures import GridKey, new_figure
from convlens.render.grids import FILTER_GUTTER, filter_labels, map_gutter, tile_origins

TEXT = film.film_text("en")


def kernels(epochs: int, filters: int = 4, cin: int = 1, seed: int = 0) -> np.ndarray:
    """Snapshots (epochs + 1, 3, 3, cin, filters) whose weights grow epoch by epoch, as training makes them."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 0.1, (3, 3, cin, filters))
    return np.stack([base * (1 + e) for e in range(epochs + 1)]).astype(np.float32)


def test_labels_say_the_epoch_and_the_val_accuracy_and_epoch_0_is_the_untrained_baseline():
    assert film.snapshot_labels([0.8, 0.91234], TEXT) == [
        "epoch 0 (untrained)",
        "epoch 1 · val accuracy 0.8000",
        "epoch 2 · val accuracy 0.9123",
    ]


def test_the_colour_scale_is_symmetric_over_every_snapshot():
    snaps = kernels(3)
    vmin, vmax = film.kernel_range(snaps, 100)
    assert vmax == pytest.approx(np.abs(snaps).max()) and vmin == -vmax
    assert vmax == pytest.approx(4 * np.abs(snaps[0]).max())  # the last snapshot's, 4× the first's
    outlier = snaps.copy()
    outlier[-1, 0, 0, 0, 0] = 50.0  # one far-out weight does not flatten the film: it is clipped
    scale = film.kernel_range(outlier)[1]
    assert scale == pytest.approx(np.percentile(np.abs(outlier), 99)) and scale < 1
    assert film.kernel_range(np.zeros((2, 3, 3, 1, 2))) == (-1.0, 1.0)
    with_nan = snaps.copy()
    with_nan[0, 0, 0, 0, 0] = np.nan
    assert np.isfinite(film.kernel_range(with_nan)).all()


def test_frames_are_not_rescaled_so_a_filter_that_grows_is_seen_to_grow():
    snaps = kernels(1)  # snapshot 1 = 2 × snapshot 0
    vmin, vmax = film.kernel_range(snaps, 100)
    frames, grid = film.kernel_frames(snaps, "first", 4, vmin, vmax)
    assert grid == (1, 4) and len(frames) == 2
    first, last = (np.nan_to_num(f - 0.5) for f in frames)  # 0.5: weight 0
    np.testing.assert_allclose(last, 2 * first, atol=1e-6)
    assert np.abs(last).max() == pytest.approx(0.5)  # the largest weight of the film at the scale's end, not past it


def test_the_strip_has_a_row_per_snapshot_and_the_chosen_filters_as_columns():
    snaps = kernels(2, filters=6)
    vmin, vmax = film.kernel_range(snaps, 100)
    image, grid = film.strip_image(snaps, "first", 4, vmin, vmax)
    assert grid == (3, 4)
    assert image.shape == (3 * 4 - 1, 4 * 4 - 1)  # 3×3 tiles, 1-pixel gutters
    for row in range(3):
        for col in range(4):
            tile = image[row * 4 : row * 4 + 3, col * 4 : col * 4 + 3]
            np.testing.assert_allclose(tile, (snaps[row, :, :, 0, col] - vmin) / (vmax - vmin), atol=1e-6)
    assert np.isnan(image[3]).all() and np.isnan(image[:, 3]).all()  # gutters
    _, grid = film.strip_image(snaps, "first", 16, vmin, vmax)
    assert grid == (3, 6)  # fewer filters than asked: all of them


def test_colour_kernels_keep_their_colours_on_the_fixed_scale():
    snaps = kernels(1, filters=2, cin=3)
    vmin, vmax = film.kernel_range(snaps)
    frames, grid = film.kernel_frames(snaps, "rgb", 8, vmin, vmax)
    assert frames[0].shape[-1] == 3 and grid == (1, 2)
    np.testing.assert_allclose(frames[0][:3, :3], (snaps[0, :, :, :, 0] - vmin) / (vmax - vmin), atol=1e-6)


def test_feature_maps_each_on_its_own_range_fixed_over_the_snapshots():
    maps = np.zeros((3, 5, 5, 2), np.float32)
    maps[:, 2, 2, 0] = [1.0, 2.0, 4.0]  # channel 0 grows: 1/4, 1/2, 1 of its film's range
    maps[:, :, :, 1] = 7.0  # channel 1 never changes: drawn at 0
    frames, grid = film.maps_frames(maps, None)
    assert grid == (1, 2) and len(frames) == 3
    assert [f[2, 2] for f in frames] == pytest.approx([0.25, 0.5, 1.0])
    assert all(np.nanmax(f[:, 6:]) == 0 for f in frames)


def test_the_gif_has_one_frame_per_snapshot(tmp_path):
    """The acceptance test of issue 23: one frame per snapshot, even where two snapshots hold the same weights."""
    snaps = kernels(4)
    snaps[2] = snaps[1]  # an epoch that changed nothing still has its frame (its caption differs)
    labels = film.snapshot_labels([0.7, 0.7, 0.8, 0.85], TEXT)
    vmin, vmax = film.kernel_range(snaps)
    mosaics, grid = film.kernel_frames(snaps, "first", 16, vmin, vmax)
    frames = film.frame_pixels(mosaics, labels, "viridis", 40, 0.5, grid, (vmin, vmax), TEXT["weight"])
    assert len({f.shape for f in frames}) == 1 and frames[0].dtype == np.uint8
    path = tmp_path / "conv2d_filters.gif"
    film.write_gif(frames, path, 300)
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == len(snaps) == 5
        assert gif.info["duration"] == 300 and gif.info["loop"] == 0
        assert gif.size == (frames[0].shape[1], frames[0].shape[0])
    assert list(tmp_path.iterdir()) == [path]  # written atomically: no temp file left


def test_frames_of_different_sizes_write_nothing(tmp_path):
    path = tmp_path / "x.gif"
    with pytest.raises(ConvlensError, match="frames of different sizes"):
        film.write_gif([np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4, 3), np.uint8)], path, 100)
    with pytest.raises(ConvlensError, match="at least one frame"):
        film.write_gif([], path, 100)
    assert not path.exists()
    with pytest.raises(ConvlensError, match="one frame needs one of each"):
        film.frame_pixels([np.zeros((3, 3))], ["a", "b"], "viridis", 40, 0.5, (1, 1), None, "")


def test_snapshots_that_do_not_match_the_history_are_one_line():
    with pytest.raises(ConvlensError, match="do not make 3 frames"):
        film.check_snapshots(np.zeros((2, 3, 3, 1, 4)), ["a", "b", "c"], "conv2d")
    film.check_snapshots(np.zeros((3, 3, 3, 1, 4)), ["a", "b", "c"], "conv2d")


def test_the_books_values_are_drawn_only_for_the_books_layers():
    shapes = {"conv2d": (3, 3, 1, 32), "conv2d_1": (3, 3, 32, 16), "conv2d_2": (3, 3, 64, 64)}
    assert film.reference_std(shapes) == {"conv2d": {"trained": 0.23351653, "untrained": 0.08463709}}


def test_the_figures_are_written(tmp_path):
    snaps = kernels(3, filters=8)
    labels = film.snapshot_labels([0.8, 0.85, 0.84], TEXT)
    vmin, vmax = film.kernel_range(snaps)
    image, grid = film.strip_image(snaps, "first", 8, vmin, vmax)
    film.strip_figure(image, grid, labels, tmp_path / "strip.png", "viridis", "t", (vmin, vmax), TEXT, 40)
    history = {
        "epochs_run": 3,
        "best_epoch": 2,
        "reason": "val_loss did not improve for 1 epoch",
        "loss": [0.6, 0.4, 0.35],
        "val_loss": [0.5, 0.38, 0.39],
        "accuracy": [0.78, 0.85, 0.87],
        "val_accuracy": [0.8, 0.85, 0.84],
    }
    film.learning_curves_figure(history, tmp_path / "curves.png", TEXT, 40)
    std = {"conv2d": snaps.reshape(4, -1).std(axis=1)}
    film.kernel_std_figure(std, film.reference_std({"conv2d": (3, 3, 1, 32)}), tmp_path / "std.png", TEXT, 40)
    for name in ("strip.png", "curves.png", "std.png"):
        with Image.open(tmp_path / name) as png:
            assert png.format == "PNG" and min(png.size) > 50


@pytest.mark.parametrize("language", ["en", "ko"])
def test_the_reason_training_ended_is_said_in_the_films_language_from_the_numbers(language):
    text = film.film_text(language)
    early = film.reason_words({"epochs_run": 10, "best_epoch": 8, "stopped_early": True}, text)
    every = film.reason_words({"epochs_run": 20, "best_epoch": 17, "stopped_early": False}, text)
    one = film.reason_words({"epochs_run": 3, "best_epoch": 2, "stopped_early": True}, text)
    if language == "en":
        assert early == (
            "early stopping: val_loss did not improve for 2 epochs after epoch 8; the weights of epoch 8 were restored"
        )
        assert one.startswith("early stopping: val_loss did not improve for 1 epoch after epoch 2;")
        assert every == "train.epochs reached; the weights of epoch 17 (lowest val_loss) were kept"  # no count twice
    else:
        assert early.startswith("조기 종료: 8번째 에포크 이후 2개 에포크 동안") and "8번째 에포크의 가중치" in early
        assert one.startswith("조기 종료: 2번째 에포크 이후 1개 에포크 동안")
        assert every.startswith("train.epochs에 도달했고") and "17번째 에포크" in every


def test_a_model_of_other_input_channels_gets_no_book_reference_even_where_a_later_layer_has_the_books_shape():
    rgb = {"conv2d": (3, 3, 3, 32), "conv2d_1": (3, 3, 32, 64)}  # the outside tester's photos model
    assert film.reference_std(rgb) == {}
    assert film.reference_std({"conv2d_1": (3, 3, 32, 64)}) == {}  # no book-shaped first layer: not the book's
    book = film.reference_std({"conv2d": (3, 3, 1, 32), "conv2d_1": (3, 3, 32, 64)})
    assert book["conv2d_1"] == {"trained": 0.13839592, "untrained": 0.047982484} and set(book) == {"conv2d", "conv2d_1"}


def _saved_figures(monkeypatch) -> list:
    saved = []
    monkeypatch.setattr(film, "save_figure", lambda fig, path, dpi: saved.append(fig))
    return saved


@pytest.mark.parametrize("cin", [1, 3])
def test_rgb_tiles_get_no_colour_bar_and_gray_tiles_keep_theirs(monkeypatch, tmp_path, cin):
    snaps = kernels(2, filters=4, cin=cin)
    mode = "rgb" if cin == 3 else "first"
    labels = film.snapshot_labels([0.8, 0.85], TEXT)
    vmin, vmax = film.kernel_range(snaps)
    saved = _saved_figures(monkeypatch)
    image, grid = film.strip_image(snaps, mode, 4, vmin, vmax)
    film.strip_figure(image, grid, labels, tmp_path / "s.png", "viridis", "t", (vmin, vmax), TEXT, 40)
    (fig,) = saved
    assert len(fig.axes) == (1 if cin == 3 else 2)  # the tiles' axes, and a colour bar only for gray tiles
    made = []
    monkeypatch.setattr(film, "new_figure", lambda size: made.append(new_figure(size)) or made[-1])
    mosaics, grid = film.kernel_frames(snaps, mode, None, vmin, vmax)
    frames = film.frame_pixels(mosaics, labels, "viridis", 40, 0.5, grid, (vmin, vmax), "weight")
    assert len(frames) == 3 and len(made) == 1
    assert len(made[0].axes) == (1 if cin == 3 else 2)  # the GIF's frames too: no bar beside colour tiles


def test_the_strip_title_of_rgb_tiles_says_rgb_and_the_std_title_names_the_book_only_with_a_reference(
    monkeypatch, tmp_path
):
    for language in ("en", "ko"):
        text = film.film_text(language)
        assert "rgb" in text["filters_title_rgb"] and "±{vmax:.3g}" in text["filters_title_rgb"]
    saved = _saved_figures(monkeypatch)
    std = {"conv2d": [0.1, 0.2, 0.25]}
    film.kernel_std_figure(std, {}, tmp_path / "a.png", TEXT, 40)
    film.kernel_std_figure(std, film.reference_std({"conv2d": (3, 3, 1, 32)}), tmp_path / "b.png", TEXT, 40)
    own, book = (fig.axes[0].get_title() for fig in saved)
    assert own == TEXT["std_title_own"] and "against the book's model" not in own
    assert book == TEXT["std_title"]
    assert len(saved[1].axes[0].get_lines()) == 3 and len(saved[0].axes[0].get_lines()) == 1


def test_the_std_figure_counts_whole_epochs_and_its_legend_covers_none_of_its_lines(monkeypatch, tmp_path):
    saved = _saved_figures(monkeypatch)
    std = {"conv2d": [0.085, 0.16, 0.17], "conv2d_1": [0.048, 0.1, 0.11]}  # 2 epochs: matplotlib ticks 0.25, 0.5…
    reference = film.reference_std({"conv2d": (3, 3, 1, 32), "conv2d_1": (3, 3, 32, 64)})
    film.kernel_std_figure(std, reference, tmp_path / "std.png", TEXT, 40)
    [fig] = saved
    fig.canvas.draw()
    ax = fig.axes[0]
    low, high = ax.get_xlim()
    ticks = [tick for tick in ax.get_xticks() if low <= tick <= high]
    assert ticks == [0, 1, 2]  # whole epochs only
    legend, box = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert legend.x0 >= box.x1  # beside the axes: the dashed book lines (e.g. at 0.2335) run beneath nothing
    assert legend.x1 <= fig.bbox.x1 and legend.y0 >= fig.bbox.y0  # and within the figure


def _drawn(monkeypatch) -> list:
    """The figures the film's functions create (``film.new_figure``), to measure what they drew."""
    made = []
    monkeypatch.setattr(film, "new_figure", lambda size: made.append(new_figure(size)) or made[-1])
    return made


@pytest.mark.parametrize("best", [1, 3, 5])
def test_the_best_epoch_label_is_clear_of_the_curves_and_the_line(monkeypatch, tmp_path, best):
    made = _drawn(monkeypatch)
    history = {
        "epochs_run": 5, "best_epoch": best, "reason": "r", "loss": [0.6, 0.4, 0.35, 0.36, 0.37],
        "val_loss": [0.5, 0.4, 0.38, 0.39, 0.41], "accuracy": [0.8, 0.85, 0.87, 0.88, 0.89],
        "val_accuracy": [0.82, 0.86, 0.87, 0.87, 0.86],
    }  # fmt: skip
    film.learning_curves_figure(history, tmp_path / "curves.png", TEXT, 60)
    (fig,) = made
    renderer = fig.canvas.get_renderer()
    axes = fig.axes
    for ax in axes:
        (label,) = ax.texts
        box = label.get_window_extent(renderer)
        assert label.get_text() == f"best epoch {best} (kept)"
        assert box.y0 >= ax.bbox.y1  # above the plot: over no curve, no point, not the dashed line
        assert box.y1 <= fig.bbox.y1 and box.x0 >= 0 and box.x1 <= fig.bbox.x1
        assert not any(box.overlaps(other.bbox) for other in axes if other is not ax)
        assert not box.overlaps(fig._suptitle.get_window_extent(renderer))


@pytest.mark.parametrize(("maps", "tile_inches"), [(False, 0.45), (True, 0.75)])
def test_each_gif_frame_carries_its_tiles_indices_in_their_corners(monkeypatch, maps, tile_inches):
    made = _drawn(monkeypatch)
    if maps:
        mosaics, grid = film.maps_frames(np.random.default_rng(0).random((2, 28, 28, 8)), None)
        key = GridKey([str(c) for c in range(8)], (), map_gutter(28))
    else:
        snaps = kernels(1, filters=8)
        mosaics, grid = film.kernel_frames(snaps, "first", None, *film.kernel_range(snaps))
        key = GridKey(filter_labels(snaps.shape[1:], "first")[0], (), FILTER_GUTTER)
    frames = film.frame_pixels(mosaics, ["a", "b"], "gray", 60, tile_inches, grid, None, "", key)
    plain = film.frame_pixels(mosaics, ["a", "b"], "gray", 60, tile_inches, grid, None, "")
    assert not np.array_equal(frames[1], plain[1])  # drawn on every frame
    ax = made[0].axes[0]
    assert [t.get_text() for t in ax.texts] == [str(c) for c in range(8)]
    (h, w), origins = tile_origins(mosaics[0].shape, grid, key.gutter)
    renderer = made[0].canvas.get_renderer()
    for text, (r, c) in zip(ax.texts, origins, strict=True):  # inside its own tile, in its top-left corner
        (x0, y1), (x1, y0) = ax.transData.transform([(c - 0.5, r - 0.5), (c + w - 0.5, r + h - 0.5)])
        box = text.get_window_extent(renderer)
        assert x0 <= box.x0 <= (x0 + x1) / 2 and box.x1 <= x1 and (y0 + y1) / 2 <= box.y1 <= y1 and box.y0 >= y0


def test_a_gif_of_tiles_too_small_for_a_readable_index_carries_none(monkeypatch):
    made = _drawn(monkeypatch)
    snaps = kernels(1, filters=8)
    mosaics, grid = film.kernel_frames(snaps, "first", None, *film.kernel_range(snaps))
    key = GridKey([str(c) for c in range(8)], (), FILTER_GUTTER)
    film.frame_pixels(mosaics, ["a", "b"], "gray", 20, 0.1, grid, None, "", key)
    assert len(made[0].axes[0].texts) == 0  # at 20 dpi an index would be 2 pixels high


@pytest.mark.parametrize("filters", [8, 32])
def test_a_frames_colour_bar_keeps_its_ticks_and_label_inside_the_frame(monkeypatch, filters):
    """Its label was cut at the frame's right edge (helper, seen on the GIFs): the bar now has its inches."""
    made = _drawn(monkeypatch)
    snaps = kernels(2, filters=filters)
    vmin, vmax = film.kernel_range(snaps)
    mosaics, grid = film.kernel_frames(snaps, "first", 16, vmin, vmax)
    film.frame_pixels(mosaics, ["a"] * len(mosaics), "viridis", 100, 0.35, grid, (vmin, vmax), "weight")
    fig = made[0]
    mosaic, bar = fig.axes
    renderer = fig.canvas.get_renderer()
    ink = bar.get_tightbbox(renderer)  # the bar, its tick labels and its label
    assert bar.get_ylabel() == "weight" and ink.x1 <= fig.bbox.x1 and ink.x0 >= mosaic.bbox.x1
