import warnings

import numpy as np
import pytest

from convlens.analysis.stats import channel_stats, layer_summary
from convlens.errors import ConvlensError
from convlens.render.grids import (
    feature_map_grid,
    filter_grid,
    filter_tiles,
    grid_shape,
    input_tiles,
    mosaic,
    normalize_tiles,
)


@pytest.mark.parametrize(
    ("n", "columns", "shape"),
    [
        (32, 16, (2, 16)),
        (32, None, (4, 8)),
        (64, None, (8, 8)),
        (64, 16, (4, 16)),
        (10, None, (3, 4)),
        (1, None, (1, 1)),
        (2, None, (1, 2)),
        (128, None, (8, 16)),
        (3, 16, (1, 3)),
    ],
)
def test_grid_shape_matches_the_book_and_generalises(n, columns, shape):
    assert grid_shape(n, columns) == shape


def test_no_tiles_is_refused():
    with pytest.raises(ConvlensError, match="cannot lay out 0 tiles in a grid"):
        grid_shape(0)


def test_filter_tiles_modes():
    kernel = np.arange(3 * 3 * 2 * 4, dtype=np.float32).reshape(3, 3, 2, 4)
    first, cols = filter_tiles(kernel, "first")
    assert first.shape == (4, 3, 3) and cols is None
    np.testing.assert_array_equal(first[2], kernel[:, :, 0, 2])
    mean, _ = filter_tiles(kernel, "mean")
    np.testing.assert_allclose(mean[1], kernel[:, :, :, 1].mean(axis=2))
    every, cols = filter_tiles(kernel, "all")
    assert every.shape == (8, 3, 3) and cols == 4
    np.testing.assert_array_equal(every[1 * 4 + 3], kernel[:, :, 1, 3])
    np.testing.assert_array_equal(filter_tiles(kernel)[0], first)  # the book's kernel[:, :, 0, i] by default
    with pytest.raises(ConvlensError, match="render.input_channels='sum' is not one of first, mean, all"):
        filter_tiles(kernel, "sum")
    with pytest.raises(ConvlensError, match="cannot be drawn"):
        filter_tiles(np.zeros((10, 4)), "first")


def test_normalize_fixed_range_clips_like_imshow_vmin_vmax():
    tiles = np.array([[[-1.0, -0.5], [0.0, 0.5]]])
    np.testing.assert_allclose(normalize_tiles(tiles, -0.5, 0.5), [[[0.0, 0.0], [0.5, 1.0]]])
    with pytest.raises(ConvlensError, match=r"render.filter_vmin \(0.5\) must be below render.filter_vmax \(-0.5\)"):
        normalize_tiles(tiles, 0.5, -0.5)
    np.testing.assert_allclose(normalize_tiles(tiles, -1.0, 1.0), [[[0.0, 0.25], [0.5, 0.75]]])  # a span other than 1
    with pytest.raises(ConvlensError, match="must be below"):
        normalize_tiles(tiles, 0.5, 0.5)  # an empty interval would divide by zero


def test_normalize_each_tile_on_its_own_and_dead_tiles_quietly():
    tiles = np.stack([np.array([[0.0, 2.0], [1.0, 2.0]]), np.zeros((2, 2)), np.array([[10.0, 20.0], [15.0, 20.0]])])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = normalize_tiles(tiles)
    np.testing.assert_allclose(out[0], [[0.0, 1.0], [0.5, 1.0]])
    np.testing.assert_array_equal(out[1], 0.0)
    np.testing.assert_allclose(out[2], out[0])
    bad = np.array([[[-np.inf, 0.5], [1.0, np.inf]], [[np.nan, 0.5], [1.0, 0.0]]])  # non-finite values draw as 0
    np.testing.assert_allclose(normalize_tiles(bad), [[[0.0, 0.5], [1.0, 0.0]], [[0.0, 0.5], [1.0, 0.0]]])


def test_dead_feature_maps_render_without_warnings_and_are_counted(tmp_path):
    from convlens.render.figures import mosaic_figure

    maps = np.zeros((1, 14, 14, 8), np.float32)
    maps[0, 3, 3, :2] = 1.5  # two live channels, six dead (all zero)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image, grid = feature_map_grid(maps[0], None)
        mosaic_figure(image, tmp_path / "maps.png", "viridis", "dead maps", 1.5, grid, 50)
        summary = layer_summary(channel_stats(maps))
    assert (tmp_path / "maps.png").stat().st_size > 0
    assert summary["dead_channels"] == 6 and summary["channels"] == 8
    assert np.nanmax(image) == 1.0 and np.nanmin(image) == 0.0


def test_mosaic_places_tiles_row_major_with_nan_gutters():
    tiles = np.stack([np.full((2, 2), i, float) for i in range(3)])
    image = mosaic(tiles, (2, 2))  # one-pixel gutters unless told otherwise
    assert image.shape == (5, 5)
    assert image[0, 0] == 0 and image[0, 3] == 1 and image[3, 0] == 2
    assert np.isnan(image[2]).all() and np.isnan(image[:, 2]).all()
    assert np.isnan(image[3:, 3:]).all()  # the empty fourth cell
    with pytest.raises(ConvlensError, match="do not fit"):
        mosaic(tiles, (1, 2))


def test_filter_and_feature_map_grids_have_the_books_layouts():
    _, grid = filter_grid(np.zeros((3, 3, 1, 32), np.float32), "first", 16, -0.5, 0.5)
    assert grid == (2, 16)
    image, grid = feature_map_grid(np.random.default_rng(0).random((14, 14, 64)), None)
    assert grid == (8, 8)
    assert np.nanmin(image) == 0.0 and np.nanmax(image) == 1.0


def test_a_figure_too_large_to_draw_is_refused_before_it_is_allocated(tmp_path):
    from convlens.render.figures import MAX_PIXELS, mosaic_figure

    tiles = np.zeros((4096, 28, 28))
    image = mosaic(tiles, grid_shape(len(tiles)))
    with pytest.raises(ConvlensError) as err:
        mosaic_figure(image, tmp_path / "m.png", "viridis", "t", 1.5, grid_shape(len(tiles)), 600)
    assert str(err.value).startswith("a figure of ") and f"over the {MAX_PIXELS:,} pixel limit" in str(err.value)
    assert "lower render.dpi or render.map_columns" in str(err.value) and not list(tmp_path.iterdir())


def test_filter_grid_draws_the_chosen_input_channel_on_the_fixed_scale_with_one_pixel_gutters():
    kernel = np.zeros((3, 3, 2, 4), np.float32)
    kernel[:, :, 1, :] = 0.5  # input channel 0 is 0, channel 1 is 0.5: "mean" draws 0.25
    kernel[:, :, :, 3] = 2.0  # beyond vmax: clipped
    image, grid = filter_grid(kernel, "mean", None, -0.5, 0.5)
    assert grid == (2, 2) and image.shape == (7, 7)  # 2 × 3 pixels + one gutter each way
    np.testing.assert_allclose(image[:3, :3], 0.75)  # (0.25 − vmin) / (vmax − vmin), not per-tile scaled
    np.testing.assert_allclose(image[4:, 4:], 1.0)
    first, _ = filter_grid(kernel, "first", None, -0.5, 0.5)
    np.testing.assert_allclose(first[:3, :3], 0.5)


def test_feature_map_grid_honours_columns_and_scales_the_gutter_with_the_map_height():
    maps = np.random.default_rng(0).random((28, 14, 8))  # H 28, W 14: gutter 28 // 14 = 2
    image, grid = feature_map_grid(maps, 2)  # without columns, 8 maps would be 2 × 4
    assert grid == (4, 2) and image.shape == (4 * 30 - 2, 2 * 16 - 2)
    assert np.isnan(image[28:30]).all() and not np.isnan(image[30, :14]).any()
    small, grid = feature_map_grid(maps[:14], 2)  # 14 high: the one-pixel minimum
    assert grid == (4, 2) and small.shape == (4 * 15 - 1, 2 * 15 - 1)


def test_input_tiles_are_the_one_channel_or_the_mean_of_several():
    gray = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 1)
    np.testing.assert_array_equal(input_tiles(gray), gray[..., 0])
    rgb = np.stack([np.zeros((2, 3, 3)), np.ones((2, 3, 3)), np.full((2, 3, 3), 5.0)], axis=-1)
    np.testing.assert_array_equal(input_tiles(rgb), np.full((2, 3, 3), 2.0))
    assert input_tiles(rgb).shape == (2, 3, 3)


def test_a_depthwise_kernel_is_drawn_as_one_tile_per_input_channel_and_multiplier():
    from convlens.render.grids import depthwise_grid, depthwise_tiles

    kernel = np.arange(3 * 3 * 16 * 2, dtype=float).reshape(3, 3, 16, 2)  # 16 channels, multiplier 2
    tiles = depthwise_tiles(kernel)
    assert tiles.shape == (32, 3, 3)  # not the 2 of input channel 0 (filter_tiles' "first")
    for c in range(16):
        for j in range(2):
            np.testing.assert_array_equal(tiles[c * 2 + j], kernel[:, :, c, j])  # tile c·m+j: channel c's j-th
    assert filter_tiles(kernel, "first")[0].shape == (2, 3, 3)  # what the grid drew before
    image, grid = depthwise_grid(kernel[..., :1], 16, -0.5, 0.5)  # the tester's dw: 3×3×16×1
    assert grid == (1, 16) and image.shape[1] > 15 * 3
    with pytest.raises(ConvlensError, match="depthwise"):
        depthwise_tiles(np.zeros((3, 3, 4)))
