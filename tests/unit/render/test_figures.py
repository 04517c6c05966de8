"""What each figure of ``figures.py`` draws: read back from the matplotlib figure it saves, and the PNG's size."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from PIL import Image

from convlens.render import analyses as figures_analyses
from convlens.render import figures
from convlens.render.language import accuracy_title
from tests.support.helpers import MIRROR


def png_size(path):
    with Image.open(path) as image:
        return image.size


def test_a_vector_is_one_bar_per_unit_on_a_figure_as_wide_as_its_units(drawn, tmp_path):
    values = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    figures.vector_figure(values, tmp_path / "v.png", "dense: 3 units", 50)
    ((fig, path, dpi),) = drawn
    (ax,) = fig.axes
    bars = ax.patches
    assert [b.get_height() for b in bars] == [0.5, -1.0, 2.0]
    assert [b.get_x() + b.get_width() / 2 for b in bars] == [0, 1, 2] and {b.get_width() for b in bars} == {1.0}
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("unit", "activation", "dense: 3 units")
    assert tuple(fig.get_size_inches()) == (4.0, 3.2) and png_size(path) == (200, 160) and dpi == 50
    for units, width in ((100, 8.0), (1000, 16.0)):  # 0.08 inch a unit, at most 16 inches
        figures.vector_figure(np.ones(units), tmp_path / f"{units}.png", "t", 10)
        assert tuple(drawn[-1][0].get_size_inches()) == pytest.approx((width, 3.2))


def comparison(rows):
    return pd.DataFrame(rows, columns=["model", "layer", "statistic", "a", "b", "relative_change"])


def test_the_comparison_is_one_panel_per_model_with_a_labelled_bar_per_changed_statistic(drawn, tmp_path):
    table = comparison(
        [
            ("trained", "conv2d", "mean", -0.0144, -0.0072, -0.5),
            ("trained", "conv2d", "std", 0.2, 0.8, 3.0),
            ("trained", "dense", "zeros", 0.0, 2.0, np.nan),
            ("untrained", "conv2d", "std", 0.1, 0.11, 0.1),
        ]
    )
    figures.comparison_figure(table, tmp_path / "c.png", ("v1", "v2"), "v1 → v2: 4 of 9 statistics changed", dpi=20)
    ((fig, path, dpi),) = drawn
    trained, untrained = fig.axes
    assert (trained.get_title(loc="left"), untrained.get_title(loc="left")) == ("trained", "untrained")
    assert fig.get_suptitle() == "v1 → v2: 4 of 9 statistics changed"
    # bottom to top: the table's rows reversed, so they read top-down as in the table
    assert [t.get_text() for t in trained.get_yticklabels()] == ["dense · zeros", "conv2d · std", "conv2d · mean"]
    bars = trained.patches
    assert [b.get_width() for b in bars] == [0.0, 100.0, -50.0]  # NaN drawn as 0, 300 % clipped at 100
    assert [b.get_facecolor() for b in bars] == [to_rgba(c) for c in ("tab:blue", "tab:blue", "tab:red")]
    labels = [(t.get_text(), t.get_ha(), t.xyann) for t in trained.texts]
    assert labels == [
        ("0 → 2", "right", (-4, 0)),
        ("0.2 → 0.8 (+300.0 %)", "right", (-4, 0)),
        ("-0.0144 → -0.0072 (-50.0 %)", "left", (4, 0)),  # a bar to the left: its label to the right of zero
    ]
    assert [t.xy for t in trained.texts] == [(0, 0), (0, 1), (0, 2)]
    assert {t.get_va() for t in trained.texts} == {"center"}
    assert trained.get_xlim() == (-100, 100) and untrained.get_xlim() == (-100, 100)
    assert trained.get_xlabel() == "relative change from v1 to v2 (%, bars clipped at ±100)"
    assert [line.get_xdata() for line in trained.get_lines()] == [[0, 0]]
    assert [b.get_width() for b in untrained.patches] == pytest.approx([10.0])
    # panels as tall as their bars: 3 and 1 rows
    heights = [ax.get_position().height for ax in fig.axes]
    assert heights[0] / heights[1] == pytest.approx(3, rel=0.15)
    assert tuple(fig.get_size_inches()) == pytest.approx((9, 0.9 * 3 + 0.3 * 4)) and dpi == 20
    assert png_size(path) == (180, 78)


def test_panels_of_one_changed_statistic_each_have_room_for_their_titles_and_axes(drawn, tmp_path):
    """Outside tester: two training runs, one change per model: each panel's title, ticks and axis label overlapped
    the next panel (matplotlib: "Tight layout not applied")."""
    table = comparison([("trained", "(training)", "val_accuracy", 0.9, 0.99, 0.1), ("untrained", "conv2d", "std",
                        0.5, 0.6, 0.2)])  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figures.comparison_figure(table, tmp_path / "c.png", ("tr2", "after-kill3"), "tr2 → after-kill3: 2 changed")
    fig = drawn[0][0]
    renderer = fig.canvas.get_renderer()
    upper, lower = (ax.get_tightbbox(renderer) for ax in fig.axes)
    assert upper.y0 > lower.y1  # the upper panel's axis label above the lower panel's title


def test_no_changed_statistic_is_said_in_a_small_figure(drawn, tmp_path):
    figures.comparison_figure(comparison([]), tmp_path / "c.png", ("a", "b"), "a → b: 0 of 9 statistics changed")
    ((fig, path, dpi),) = drawn
    assert [t.get_text() for t in fig.texts] == ["no statistic changed", "a → b: 0 of 9 statistics changed"]
    assert (fig.texts[0].get_position(), fig.texts[0].get_ha(), fig.texts[0].get_va()) == (
        (0.5, 0.5),
        "center",
        "center",
    )
    assert fig.get_suptitle() == "a → b: 0 of 9 statistics changed"
    assert not fig.axes and dpi == 100 and png_size(path) == (600, 150)


def test_a_sample_is_drawn_as_it_is_under_its_title(drawn, tmp_path):
    image = np.random.default_rng(0).uniform(0, 255, (28, 28))
    figures.sample_figure(image, tmp_path / "s.png", "gray_r", "test image 3: Bag", 30)
    ((fig, _, _),) = drawn
    (ax,) = fig.axes
    np.testing.assert_array_equal(ax.images[0].get_array(), image)
    assert (ax.images[0].get_cmap().name, ax.get_title()) == ("gray_r", "test image 3: Bag")


def test_overlaid_histograms_bin_each_series_over_its_own_range_translucent_with_a_legend(drawn, tmp_path):
    trained, untrained = np.array([-1.0, 0.0, 0.5, np.nan]), np.array([1.0, np.inf, 3.0])
    figures.histogram({"trained": trained, "untrained": untrained}, tmp_path / "h.png", 4, "conv2d weights", 30)
    ((fig, _, _),) = drawn
    (ax,) = fig.axes
    bars = {"trained": ax.patches[:4], "untrained": ax.patches[4:]}
    lefts = {k: [round(p.get_x(), 9) for p in v] for k, v in bars.items()}
    assert lefts == {"trained": [-1.0, -0.625, -0.25, 0.125], "untrained": [1.0, 1.5, 2.0, 2.5]}  # each its own 4
    heights = {k: [round(p.get_height(), 9) for p in v] for k, v in bars.items()}
    # NaN and inf left out; densities: count ÷ (the series' finite values × its bin width)
    assert heights == {"trained": [0.888888889, 0, 0.888888889, 0.888888889], "untrained": [1.0, 0, 0, 1.0]}
    assert {p.get_alpha() for p in ax.patches} == {0.55}
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["trained", "untrained"]
    assert (ax.get_xlabel(), ax.get_title()) == ("weight", "conv2d weights")
    assert ax.get_ylabel() == "density (each series' own bins)"
    assert tuple(fig.get_size_inches()) == (6.4, 4.8) and png_size(tmp_path / "h.png") == (192, 144)  # plt.hist's
    figures.histogram({"trained": trained}, tmp_path / "one.png", 2, "one", 30)
    (ax,) = drawn[-1][0].axes
    assert ax.get_legend() is None and {p.get_alpha() for p in ax.patches} == {1.0}
    assert [p.get_height() for p in ax.patches] == [1, 2]  # edges -1, -0.25, 0.5: 0.5 in the last bin


def test_class_heatmaps_scale_each_channel_from_its_least_to_its_most_active_class(drawn, tmp_path):
    classes = ["T-shirt/top", "Trouser", "Ankle boot"]
    trained = np.array([[1.0, 5.0], [3.0, 5.0], [2.0, np.nan]])  # classes × channels
    untrained = np.zeros((3, 4))
    tables, selectivities = {"trained": trained, "untrained": untrained}, {"trained": [0, 0], "untrained": [0] * 4}
    style = ("viridis", "channel", "layer")
    figures_analyses.class_heatmaps(tables, selectivities, classes, tmp_path / "h.png", "class means", style, 40)
    ((fig, path, _),) = drawn
    left, right = fig.axes[0], fig.axes[3]  # each model: heatmap, selectivity bars, colourbar
    np.testing.assert_allclose(left.images[0].get_array(), [[0, 1, 0.5], [1, 1, 0]])  # NaN as 0; flat → 0
    assert left.images[0].get_clim() == (0, 1) and not np.any(right.images[0].get_array())
    assert (left.get_title(), right.get_title(), left.get_ylabel()) == ("trained", "untrained", "channel")
    assert [t.get_text() for t in left.get_xticklabels()] == classes
    assert tuple(fig.get_size_inches()) == pytest.approx((11.2, 2.4 + 0.12 * 4))  # taller for more channels
    renderer = fig.canvas.get_renderer()
    for label in left.get_xticklabels():  # the slanted class names fit in the figure
        assert label.get_window_extent(renderer).y0 >= 0
    assert fig.get_suptitle() == "class means" and png_size(path) == (448, 115)


def test_a_labelled_mosaic_draws_every_tile_on_the_fixed_range_and_labels_its_corner(drawn, tmp_path):
    tiles = np.stack([np.full((28, 28), v) for v in (0.0, 127.5, 255.0, 510.0, -1.0)])
    labels = [f"#{i}" for i in range(5)]
    figures_analyses.labelled_mosaic_figure(tiles, tmp_path / "m.png", "gray", "conv2d", labels, 3, (0, 255), 20)
    ((fig, _, _),) = drawn
    (ax,) = fig.axes
    image = ax.images[0].get_array()
    gutter = 2  # 28 // 14
    assert image.shape == (2 * 28 + gutter, 3 * 28 + 2 * gutter)
    corners = [image[r * 30, c * 30] for r, c in ((0, 0), (0, 1), (0, 2), (1, 0), (1, 1))]
    assert corners == [0, 0.5, 1, 1, 0]  # on the pixels' range, clipped
    assert np.ma.is_masked(image[28, 0]) and np.ma.is_masked(image[0, 28])  # the gutters: white
    assert ax.images[0].get_clim() == (0, 1)
    assert [(t.get_text(), t.get_position()) for t in ax.texts] == [
        ("#0", (0, 0)),
        ("#1", (30, 0)),
        ("#2", (60, 0)),
        ("#3", (0, 30)),
        ("#4", (30, 30)),
    ]
    assert fig.get_suptitle() == "conv2d"


def test_dataset_examples_are_one_image_with_each_channels_caption_under_its_tile(drawn, tmp_path):
    from convlens.analysis.examples import examples_grid

    pictures = np.random.default_rng(0).uniform(0, 1, (3, 4, 28, 28))  # 3 channels, 4 images each
    grid = examples_grid(pictures, 2)
    captions = ["channel 0", "channel 1", "channel 2"]
    figures_analyses.examples_figure(grid, captions, tmp_path / "e.png", "gray_r", "conv2d: top images", 30)
    ((fig, path, _),) = drawn
    (ax,) = fig.axes
    np.testing.assert_array_equal(ax.images[0].get_array().filled(np.nan), grid.image)
    assert ax.images[0].get_clim() == (0, 1) and ax.images[0].get_cmap().name == "gray_r"
    assert ax.images[0].get_interpolation() == "nearest"  # each pixel a square, not smoothed into its neighbours
    height, width = grid.image.shape
    body = (2 * 1.3, 2 * 1.3 * height / width)  # 1.3 inches a tile, as tall as the mosaic is
    assert tuple(fig.get_size_inches()) == pytest.approx((body[0], body[1] + 0.5))
    assert ax.get_position().height == pytest.approx(body[1] / (body[1] + 0.5))
    (th, tw), gap, band = grid.tile, grid.gutter, grid.band
    centres = [(c * (tw + gap) + tw / 2, r * (th + gap) + th - band / 2) for r, c in ((0, 0), (0, 1), (1, 0))]
    assert [(t.get_text(), t.get_position()) for t in ax.texts] == list(zip(captions, centres, strict=True))
    assert {t.get_ha() for t in ax.texts} == {"center"}
    assert ax.texts[0].get_fontsize() == pytest.approx(band * body[0] * 72 / width * 0.7)  # fits in its band
    assert [t.get_text() for t in fig.texts] == ["conv2d: top images"]
    assert png_size(path) == pytest.approx((body[0] * 30, (body[1] + 0.5) * 30), abs=1)


def test_the_confusion_matrix_writes_each_count_and_outlines_the_diagonal(drawn, tmp_path):
    confusion = np.array([[9, 1, 0], [2, 7, 1], [0, 0, 10]])
    classes = ["T-shirt/top", "Trouser", "Ankle boot"]
    figures_analyses.confusion_figure(confusion, classes, tmp_path / "c.png", "test split", "Blues", 20)
    ((fig, _, _),) = drawn
    ax, _ = fig.axes  # the counts; the shares of each row: tests/unit/render/test_honest_figures.py
    np.testing.assert_array_equal(ax.images[0].get_array(), confusion)
    assert ax.images[0].get_cmap().name == "Blues"
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t for t in ax.texts}
    assert {k: t.get_text() for k, t in texts.items()} == {(i, j): str(c) for (i, j), c in np.ndenumerate(confusion)}
    assert texts[(2, 2)].get_color() == "white" and texts[(0, 1)].get_color() == "black"  # light text on dark cells
    outlined = [(p.get_xy(), p.get_width(), p.get_edgecolor()) for p in ax.patches]
    assert outlined == [((i - 0.5, i - 0.5), 1, to_rgba("tab:red")) for i in range(3)]
    assert [t.get_text() for t in ax.get_xticklabels()] == classes == [t.get_text() for t in ax.get_yticklabels()]
    assert ax.get_xticklabels()[0].get_rotation() == 45
    assert (ax.get_xlabel(), ax.get_ylabel(), fig.get_suptitle()) == ("predicted class", "actual class", "test split")
    assert tuple(fig.get_size_inches()) == pytest.approx((2 * (2.5 + 0.55 * 3), 2.3 + 0.5 * 3))


def test_the_gradcam_title_names_the_image_the_layer_and_each_targets_correlation():
    title = figures_analyses.gradcam_title(
        "train", 0, 9, ["T-shirt/top"] * 9 + ["Ankle boot"], "conv2d_1", {"predicted": 0.123, "true": None}
    )
    assert title == (
        "train image 0: Ankle boot, Grad-CAM at conv2d_1\n"
        "Spearman correlation of the trained and untrained maps: predicted 0.12, true –"
    )
    unnamed = figures_analyses.gradcam_title("test", 3, 12, ["Bag"], "conv", {"predicted": -1.0, "true": 0.996})
    assert unnamed.startswith("test image 3: 12, Grad-CAM at conv\n")  # a label data.classes does not name
    assert unnamed.endswith("maps: predicted -1.00, true 1.00")


def test_the_accuracy_title_is_the_models_accuracy_on_the_split():
    assert accuracy_title("trained", 0.91254, 10000, "test") == ("trained: accuracy 0.9125 on 10000 test images")
    assert accuracy_title("untrained", float("nan"), 0, "train") == ("untrained: accuracy nan on 0 train images")


def test_the_activation_max_title_names_the_model_the_layer_and_the_steps():
    assert figures_analyses.activation_max_title("untrained", "block/conv", 128) == (
        "untrained block/conv: the input that maximizes each channel's mean activation (128 steps)"
    )
    assert figures_analyses.activation_max_title("trained", "conv2d", 1).endswith("(1 step)")  # not "1 steps"


@pytest.mark.mirror
@pytest.mark.skipif(not MIRROR.is_dir(), reason="needs ../shared/mirror")
def test_the_overlay_keeps_the_untrained_conv2d_spread_visible_on_the_book_model(drawn, tmp_path):
    """Issue 24 §2: shared bins put the untrained conv2d's even spread (about ±0.14) into 2 of the trained layer's
    10 bars; its own bins give it at least 8 non-empty ones."""
    from convlens.model.keras_models import load_with_untrained_model

    trained, untrained = load_with_untrained_model(MIRROR / "best-cnn-model.keras", 42)
    kernels = {"trained": trained, "untrained": untrained}
    kernels = {role: np.asarray(model.get_layer("conv2d").get_weights()[0]) for role, model in kernels.items()}
    shared = np.histogram_bin_edges(np.concatenate([k.ravel() for k in kernels.values()]), bins=10)
    assert np.count_nonzero(np.histogram(kernels["untrained"], bins=shared)[0]) <= 3  # what the book's bins showed
    figures.histogram(kernels, tmp_path / "overlay.png", 10, "conv2d weights: trained vs untrained", 50)
    (ax,) = drawn[-1][0].axes
    untrained_bars = ax.patches[10:]
    assert sum(p.get_height() > 0 for p in untrained_bars) >= 8


def _title_extents(monkeypatch, draw) -> list:
    """(title's window extent, figure's, the tiles') of each figure ``draw`` saves."""
    from convlens.render import analyses as module

    seen = []

    def keep(fig, path, dpi):
        fig.set_dpi(dpi)
        renderer = fig.canvas.get_renderer()
        seen.append((fig._suptitle.get_window_extent(renderer), fig.bbox, fig.axes[0].bbox))

    monkeypatch.setattr(module, "save_figure", keep)
    draw()
    return seen


@pytest.mark.parametrize("language", ["en", "ko"])
@pytest.mark.parametrize("channels", [1, 4])
def test_an_activation_max_title_of_a_narrow_figure_is_wrapped_inside_it(monkeypatch, tmp_path, language, channels):
    from convlens.render.analyses import activation_max_legend, activation_max_title, labelled_mosaic_figure
    from convlens.render.language import figure_language

    tiles = np.random.default_rng(0).random((channels, 12, 12))
    with figure_language(language):
        title = activation_max_title("trained", "dw", 224) + "\n" + activation_max_legend(["dead", "below"], "mean")
        [(text, figure, tiles_box)] = _title_extents(
            monkeypatch,
            lambda: labelled_mosaic_figure(
                tiles, tmp_path / "m.png", "gray_r", title, [str(i) for i in range(channels)], None, (0, 1), 80
            ),
        )
    assert text.x0 >= figure.x0 and text.x1 <= figure.x1, (text, figure)  # no end of a line off the canvas
    assert text.y1 <= figure.y1 and text.y0 >= tiles_box.y1 - 1  # the wrapped lines above the tiles, not over them


@pytest.mark.parametrize("language", ["en", "ko"])
@pytest.mark.parametrize("tiles", [1, 4])
def test_a_filter_grid_title_of_a_narrow_mosaic_is_wrapped_inside_it(monkeypatch, tmp_path, language, tiles):
    from convlens.render.grids import filter_grid
    from convlens.render.language import figure_language

    layers = []
    real = figures.mosaic_layer
    monkeypatch.setattr(figures, "mosaic_layer", lambda *a, **k: layers.append(real(*a, **k)) or layers[-1])
    kernel = np.random.default_rng(0).normal(size=(3, 3, 16, tiles))
    image, grid = filter_grid(kernel, "first", 16, -0.5, 0.5)
    title = "trained dw filters (3, 3, 16, 1) (input channels: first, each filter min–max scaled)"
    with figure_language(language):
        figures.mosaic_figure(image, tmp_path / "f.png", "gray", title, figures.FILTER_TILE_INCHES, grid, 100)
    (layer,) = layers
    renderer = layer.canvas.get_renderer()
    text = layer.texts[0].get_window_extent(renderer)
    assert text.x0 >= 0 and text.x1 <= layer.bbox.x1 and text.y1 <= layer.bbox.y1, (text, layer.bbox)
    top = layer.bbox.y1 - figures._bands(None, 100, layer.texts[0].get_text().count("\n"))[0]
    assert text.y0 >= top - 1  # the wrapped lines stay in the title band, above the tiles
    with Image.open(tmp_path / "f.png") as png:
        assert png.size == (round(layer.bbox.width), round(layer.bbox.height))
