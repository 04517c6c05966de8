"""Colour (RGB) drawing, issue 22 §4: colour filters, samples, mosaics, dataset examples and Grad-CAM overlays,
checked on the pixels of the PNGs they write; gray stays as it was (``auto`` draws a 1-channel kernel as ``first``,
byte for byte)."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from convlens.analysis.examples import examples_grid
from convlens.errors import ConvlensError
from convlens.render.analyses import attribution_figure, examples_figure, labelled_mosaic_figure
from convlens.render.figures import mosaic_figure, rgb_bytes, sample_figure
from convlens.render.grids import (
    filter_grid,
    filter_tiles,
    image_tiles,
    input_tiles,
    mosaic,
    normalize_tiles,
    resolve_input_channels,
)
from stages.render_figures import draw_kernel

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
ROSE = (200, 30, 60)  # a colour no colormap, gutter or title gives


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def count(image: np.ndarray, colour: tuple[int, int, int]) -> int:
    """How many pixels of ``image`` are exactly ``colour``."""
    return int(np.all(image == np.array(colour, np.uint8), axis=-1).sum())


def red_kernel(filters: int = 4, seed: int = 0) -> np.ndarray:
    """A (3, 3, 3, filters) kernel that reads only the red input channel, with positive weights."""
    kernel = np.zeros((3, 3, 3, filters))
    kernel[:, :, 0, :] = 0.1 + np.random.default_rng(seed).random((3, 3, filters))
    return kernel


def test_rgb_filter_tiles_are_each_filter_with_its_three_input_channels_as_colours():
    kernel = np.random.default_rng(1).standard_normal((3, 3, 3, 5))
    tiles, columns = filter_tiles(kernel, "rgb")
    assert tiles.shape == (5, 3, 3, 3) and columns is None
    for i in range(5):
        for c in range(3):
            np.testing.assert_array_equal(tiles[i][..., c], kernel[:, :, c, i])
    np.testing.assert_array_equal(filter_tiles(kernel, "auto")[0], tiles)


@pytest.mark.parametrize(
    ("mode", "shape", "drawn"),
    [
        ("auto", (3, 3, 3, 8), "rgb"),
        ("auto", (3, 3, 1, 8), "first"),
        ("auto", (3, 3, 4, 8), "first"),
        ("auto", (3, 3, 32, 64), "first"),
        ("first", (3, 3, 3, 8), "first"),
        ("mean", (3, 3, 3, 8), "mean"),
        ("all", (3, 3, 3, 8), "all"),
        ("rgb", (3, 3, 3, 8), "rgb"),
    ],
)
def test_auto_is_rgb_for_exactly_three_input_channels_and_first_otherwise(mode, shape, drawn):
    assert resolve_input_channels(mode, np.zeros(shape)) == drawn


def test_auto_draws_a_one_channel_kernel_exactly_as_first():
    kernel = np.random.default_rng(2).uniform(-0.6, 0.6, (3, 3, 1, 32))
    auto = filter_grid(kernel, "auto", 16, -0.5, 0.5)
    first = filter_grid(kernel, "first", 16, -0.5, 0.5)
    np.testing.assert_array_equal(auto[0], first[0])
    assert auto[1] == first[1] == (2, 16) and auto[0].ndim == 2


def test_rgb_refuses_a_kernel_without_three_input_channels_in_one_line():
    refused = "render.input_channels=rgb needs kernels with 3 input channels, not 32"
    with pytest.raises(ConvlensError, match=refused) as e:
        filter_tiles(np.zeros((3, 3, 32, 64)), "rgb")
    assert "\n" not in str(e.value) and "use auto" in str(e.value)
    with pytest.raises(ConvlensError, match="render.input_channels='red' is not one of first, mean, all, rgb, auto"):
        resolve_input_channels("red", np.zeros((3, 3, 3, 1)))


def test_each_rgb_filter_is_min_max_scaled_over_its_three_colours_together():
    kernel = np.zeros((2, 2, 3, 2))
    kernel[..., 0] = np.arange(12).reshape(2, 2, 3)  # filter 0: 0..11, scaled to 0..1 as one range
    kernel[..., 1] = -3.0  # filter 1: constant (a dead filter) → 0, no warning
    kernel[0, 0, 2, 1] = 5.0  # …but one value: the filter spans -3..5
    image, grid = filter_grid(kernel, "rgb", 16, -0.5, 0.5)  # the fixed range does not apply to colour tiles
    assert grid == (1, 2) and image.shape == (2, 5, 3)
    np.testing.assert_allclose(image[:, :2], kernel[..., 0] / 11.0)
    assert np.isnan(image[:, 2]).all()  # the gutter
    expected = np.zeros((2, 2, 3))
    expected[0, 0, 2] = 1.0
    np.testing.assert_allclose(image[:, 3:], expected)
    tiles = normalize_tiles(np.stack([kernel[..., 0], kernel[..., 0] * 2 + 7]))
    np.testing.assert_allclose(tiles[0], tiles[1])  # scale and offset of a whole filter do not change its tile


def test_a_red_only_kernel_draws_red_tiles(tmp_path):
    image, grid = filter_grid(red_kernel(), "rgb", 16, -0.5, 0.5)
    path = tmp_path / "filters.png"
    mosaic_figure(image, path, "viridis", "red filters", 0.9, grid, 100)
    body = pixels(path)[50:]  # below the title strip
    tiles = body[~np.all(body == 255, axis=-1)]  # the non-white pixels: the tiles
    assert len(tiles) > 0
    assert (tiles[:, 1:] == 0).all() and tiles[:, 0].max() == 255  # green and blue 0: pure reds, up to 255
    assert count(body, (255, 255, 255)) > 0  # the gutters stay white


def test_colour_mosaics_keep_each_tile_and_white_gutters():
    tiles = np.zeros((3, 2, 2, 3))
    for i in range(3):
        tiles[i, ..., i] = 1.0  # red, green, blue tiles
    image = mosaic(tiles, (2, 2), gutter=1)
    assert image.shape == (5, 5, 3)
    np.testing.assert_array_equal(image[:2, :2], tiles[0])
    np.testing.assert_array_equal(image[3:, :2], tiles[2])
    assert np.isnan(image[2]).all() and np.isnan(image[3:, 3:]).all()  # gutter row, the empty fourth cell
    colours = rgb_bytes(image)
    assert tuple(colours[0, 0]) == RED and tuple(colours[0, 3]) == GREEN and tuple(colours[3, 0]) == BLUE
    assert tuple(colours[2, 2]) == (255, 255, 255) and colours.dtype == np.uint8


def test_a_colour_sample_is_drawn_in_its_colours_and_a_gray_one_through_the_colormap(tmp_path):
    rose = np.broadcast_to(np.array(ROSE, np.uint8), (8, 8, 3))
    sample_figure(rose, tmp_path / "rgb.png", "gray_r", "a rose image", 100)
    assert count(pixels(tmp_path / "rgb.png"), ROSE) > 100 * 100  # the image, not gray_r's grays
    gray = np.full((8, 8), 200, np.uint8)
    sample_figure(gray, tmp_path / "gray.png", "gray_r", "a gray image", 100)
    drawn = pixels(tmp_path / "gray.png")
    assert count(drawn, ROSE) == 0
    assert (drawn[..., 0] == drawn[..., 1]).all() and (drawn[..., 1] == drawn[..., 2]).all()  # gray_r: grays only


def test_activation_maximization_tiles_of_a_colour_model_are_drawn_in_colour(tmp_path):
    x = np.zeros((2, 6, 6, 3))
    x[0, ..., 0] = 1.0  # channel 0's optimized input: red
    x[1, ..., 2] = 1.0  # channel 1's: blue
    tiles = image_tiles(x)
    np.testing.assert_array_equal(tiles, x)  # kept as colour, not averaged as input_tiles does
    np.testing.assert_array_equal(input_tiles(x), np.full((2, 6, 6), 1 / 3))
    assert image_tiles(x[..., :1]).shape == (2, 6, 6)  # a gray model's inputs: one channel, as before
    path = tmp_path / "am.png"
    labelled_mosaic_figure(tiles, path, "gray_r", "optimized", ["0", "1"], None, (0.0, 1.0), 100)
    drawn = pixels(path)
    assert count(drawn, RED) > 1000 and count(drawn, BLUE) > 1000


def test_colour_dataset_examples_are_drawn_in_colour(tmp_path):
    pictures = np.zeros((2, 4, 5, 5, 3))  # channels × k × h × w × RGB
    pictures[0, ..., 1] = 1.0  # channel 0's images: green
    pictures[1, ..., :] = np.array(ROSE) / 255.0  # channel 1's: rose
    grid = examples_grid(pictures)
    assert grid.image.shape[2] == 3 and grid.tile == (5 * 2 + 1 + 4, 5 * 2 + 1) and grid.grid == (1, 2)
    gray = examples_grid(pictures[..., 0])  # the same layout, gray
    assert gray.image.shape == grid.image.shape[:2] and (gray.tile, gray.band, gray.gutter) == (
        grid.tile,
        grid.band,
        grid.gutter,
    )
    path = tmp_path / "examples.png"
    examples_figure(grid, ["0: a 4/4", "1: b 4/4"], path, "gray_r", "examples", 100)
    drawn = pixels(path)
    assert count(drawn, GREEN) > 500 and count(drawn, ROSE) > 500


def test_an_attribution_map_lies_over_the_colour_image_opaque_only_where_it_is_large(tmp_path):
    """Each pixel's opacity follows its attribution: a zero map leaves the colour image as it is, a full one at
    opacity 1 covers it (the plain image panel keeps its colours either way)."""
    image = np.zeros((8, 8, 3), np.uint8)
    image[:, :4] = ROSE
    image[:, 4:] = BLUE
    drawn = {}
    for name, heat in (("zero", np.zeros((8, 8))), ("full", np.ones((8, 8)))):
        path = tmp_path / f"{name}.png"
        attribution_figure(
            image, [("row", [(heat, "trained")])], path, "Grad-CAM", ("gray_r", "jet", 1.0, "shared"), 100
        )
        drawn[name] = pixels(path)
    for colour in (ROSE, BLUE):
        assert count(drawn["full"], colour) > 1000  # the plain image panel
        assert count(drawn["zero"], colour) > 1.9 * count(drawn["full"], colour)  # and the map's panel too


def test_render_figures_draws_a_colour_models_first_kernel_in_colour_under_auto(tmp_path):
    r = OmegaConf.create(
        {"input_channels": "auto", "filter_columns": 16, "filter_vmin": -0.5, "filter_vmax": 0.5}
        | {"filter_cmap": "viridis", "hist_bins": 10, "dpi": 60}
    )
    (tmp_path / "auto").mkdir()
    draw_kernel(tmp_path / "auto", "trained", "conv2d", red_kernel(8), r)
    drawn = pixels(tmp_path / "auto" / "trained_conv2d_filters.png")
    assert drawn.shape[0] == 30 + 42  # title, one row of 3 × 14-pixel tiles: no colourbar (no one scale in colour)
    body = drawn[30 + 21 :]  # the tiles' lower halves: below the index in each tile's top-left corner
    tiles = body[~np.all(body == 255, axis=-1)]
    assert len(tiles) > 0 and (tiles[:, 1:] == 0).all()  # red tiles, no viridis
    gray = np.random.default_rng(3).uniform(-0.6, 0.6, (3, 3, 1, 8))
    for mode in ("auto", "first"):
        (tmp_path / mode).mkdir(exist_ok=True)
        draw_kernel(tmp_path / mode, "trained", "gray", gray, OmegaConf.merge(r, {"input_channels": mode}))
    same = [(tmp_path / m / "trained_gray_filters.png").read_bytes() for m in ("auto", "first")]
    assert same[0] == same[1]  # a 1-channel kernel: auto draws the book's figure, title included


def test_a_depthwise_kernel_is_drawn_as_its_filters_of_every_input_channel(tmp_path, monkeypatch):
    """outside tester 3 #3: a DepthwiseConv2D kernel kh × kw × C × m has C·m filters; drawn as a Conv2D's, with
    input channel 0 taken, it showed m of them (one tile for a multiplier of 1)."""
    import stages.render_figures as stage

    drawn = {}
    monkeypatch.setattr(stage, "mosaic_figure", lambda image, path, cmap, title, inches, grid, dpi, key: drawn.update(
        {path.name: (image, grid, title, key)}))  # fmt: skip
    r = OmegaConf.create(
        {"input_channels": "auto", "filter_columns": 16, "filter_vmin": -0.5, "filter_vmax": 0.5}
        | {"filter_cmap": "viridis", "hist_bins": 10, "dpi": 60}
    )
    kernel = np.random.default_rng(4).uniform(-0.4, 0.4, (3, 3, 6, 2))  # 6 input channels, multiplier 2
    stage.draw_kernel(tmp_path, "trained", "dw", kernel, r, depthwise=True)
    image, grid, title, key = drawn["trained_dw_filters.png"]
    assert grid == (1, 12) and len(key.labels) == 12  # 6 × 2 filters, each numbered
    assert image.shape[1] > 12 * 3  # twelve 3-pixel tiles side by side
    assert "depthwise" in title
    stage.draw_kernel(tmp_path, "trained", "conv", kernel, r)  # the same kernel as a Conv2D's: 2 filters
    assert drawn["trained_conv_filters.png"][1] == (1, 2)


def test_a_failed_channels_mark_is_seen_on_a_red_tile(tmp_path):
    tiles = np.zeros((2, 24, 24, 3))
    tiles[..., 0] = 1.0  # red-dominant optimized inputs: a red border alone vanishes on them
    tiles[..., 1:] = 0.1
    clean, marked = tmp_path / "clean.png", tmp_path / "marked.png"
    labelled_mosaic_figure(tiles, clean, "gray_r", "t", ["", ""], 2, (0.0, 1.0), 100, ["", ""])
    labelled_mosaic_figure(tiles, marked, "gray_r", "t", ["", ""], 2, (0.0, 1.0), 100, ["dead", ""])
    before, after = pixels(clean), pixels(marked)
    tile0 = (slice(40, None), slice(0, before.shape[1] // 2))  # under the title, the left tile (the marked one)
    dark = (after[tile0] < 60).all(axis=-1).sum() - (before[tile0] < 60).all(axis=-1).sum()
    light = (after[tile0] > 200).all(axis=-1).sum() - (before[tile0] > 200).all(axis=-1).sum()
    assert dark > 100 and light > 100, (dark, light)  # black and white lines around the red: seen on any colour
    right = (slice(40, None), slice(before.shape[1] // 2 + 5, None))
    np.testing.assert_array_equal(after[right], before[right])  # the unmarked tile is untouched
