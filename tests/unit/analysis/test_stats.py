import warnings

import numpy as np

from convlens.analysis.stats import (
    as_number,
    channel_stats,
    filter_stats,
    kernel_stats,
    layer_summary,
    sample_summaries,
    table_rows,
)


def test_kernel_stats_are_numpys_float32_numbers():
    kernel = np.random.default_rng(0).normal(0, 0.2, (3, 3, 1, 32)).astype(np.float32)
    stats = kernel_stats(kernel, [5, 50, 95])
    assert stats["shape"] == "3x3x1x32"
    assert stats["count"] == 288
    assert stats["mean"] == float(str(kernel.mean()))
    assert stats["std"] == float(str(kernel.std()))
    assert stats["min"] == as_number(kernel.min()) and stats["max"] == as_number(kernel.max())
    assert stats["p50"] == as_number(np.median(kernel))
    assert stats["nan"] == stats["inf"] == 0


def test_kernel_stats_count_nonfinite_and_describe_the_rest():
    kernel = np.array([1.0, 3.0, np.nan, np.inf, -np.inf], dtype=np.float32)
    stats = kernel_stats(kernel, [50])
    assert stats["nan"] == 1 and stats["inf"] == 2
    assert stats["mean"] == 2.0 and stats["max"] == 3.0 and stats["p50"] == 2.0


def test_filter_stats_per_output_channel():
    kernel = np.zeros((3, 3, 2, 2), np.float32)
    kernel[..., 1] = 1.0
    out = filter_stats(kernel, np.array([0.5, -0.5], np.float32))
    np.testing.assert_allclose(out["l2_norm"], [0.0, np.sqrt(18)])
    np.testing.assert_allclose(out["mean"], [0.0, 1.0])
    np.testing.assert_allclose(out["bias"], [0.5, -0.5])


def test_nonfinite_filter_stats_without_warnings():
    kernel = np.ones((3, 3, 1, 3), np.float32)
    kernel[..., 1] = np.nan
    kernel[0, 0, 0, 2] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = filter_stats(kernel, None)
        stats = kernel_stats(kernel, [50])
    np.testing.assert_allclose(out["mean"][[0, 2]], [1.0, 1.0])
    np.testing.assert_allclose(out["l2_norm"][[0, 2]], [3.0, np.sqrt(8)])
    assert np.isnan(out["mean"][1]) and np.isnan(out["std"][1])
    assert stats["nan"] == 9 and stats["inf"] == 1 and stats["mean"] == 1.0


def test_filter_mean_and_std_are_over_each_filters_finite_values():
    """Filter 0 holds 1, 3 and a NaN: mean 2, std 1 (the NaN adds no spread); filter 1 one finite value, 7."""
    kernel = np.array([[1.0, 7.0], [3.0, np.nan], [np.nan, np.nan]], np.float32).reshape(3, 1, 1, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = filter_stats(kernel, None)
    np.testing.assert_allclose(out["mean"], [2.0, 7.0])
    np.testing.assert_allclose(out["std"], [1.0, 0.0])
    np.testing.assert_allclose(out["l2_norm"], [np.sqrt(10), 7.0])


def test_channel_stats_and_dead_channels_without_warnings():
    maps = np.zeros((2, 4, 4, 3), np.float32)
    maps[..., 0] = 1.0
    maps[0, 0, 0, 1] = 5.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        channels = channel_stats(maps)
        summary = layer_summary(channels)
    np.testing.assert_allclose(channels["mean"], [1.0, 5 / 32, 0.0])
    np.testing.assert_allclose(channels["max"], [1.0, 5.0, 0.0])
    np.testing.assert_allclose(channels["fraction_active"], [1.0, 1 / 32, 0.0])
    assert summary["dead_channels"] == 1 and summary["channels"] == 3 and summary["map_max"] == 5.0
    assert channels["mean"].dtype == channels["max"].dtype == np.float64  # float32 maps, float64 statistics


def test_table_rows_number_the_rows():
    rows = table_rows("filter", {"l2_norm": np.array([1.5, 2.0])})
    assert rows == [{"filter": 0, "l2_norm": 1.5}, {"filter": 1, "l2_norm": 2.0}]


def test_layer_summary_names_the_metrics_dvc_exp_show_lists():
    """The keys are the metric names users diff (``trained.conv2d.map_mean``): each with its own value."""
    maps = np.zeros((1, 2, 2, 4), np.float32)
    maps[..., 0] = [[1.0, -1.0], [3.0, 0.0]]
    maps[..., 1] = 2.0
    summary = layer_summary(channel_stats(maps))
    assert summary == {
        "map_mean": as_number((0.75 + 2.0) / 4),
        "map_fraction_active": as_number((0.5 + 1.0) / 4),
        "map_max": 3.0,
        "channels": 4,
        "dead_channels": 2,
    }


def test_sample_summaries_are_each_images_own_not_the_samples_together():
    maps = np.zeros((2, 2, 2, 3), np.float32)
    maps[0, ..., 0] = [[1.0, -1.0], [3.0, 0.0]]  # image 0: channel 0 fires on one position in four
    maps[1] = 2.0  # image 1: every channel fires everywhere
    first, second = sample_summaries(maps)
    assert first == layer_summary(channel_stats(maps[:1])) and second == layer_summary(channel_stats(maps[1:]))
    assert (first["map_fraction_active"], first["dead_channels"]) == (as_number(0.5 / 3), 2)
    assert (second["map_mean"], second["dead_channels"]) == (2.0, 0)
    assert sample_summaries(maps[:1]) == [layer_summary(channel_stats(maps[:1]))]  # one sample: the layer's numbers
