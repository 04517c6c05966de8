"""The numpy half of the gradient views: Grad-CAM arithmetic, upsampling, ranks and Spearman, the metrics."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from convlens.analysis.attribution import (
    TARGETS,
    ascent_line,
    ascent_metrics,
    ascent_summary,
    gaussian_kernel,
    gradcam,
    gradcam_layer,
    gradcam_record,
    gradcam_targets,
    normalized,
    randomization_line,
    randomization_summary,
    randomization_test,
    ranks,
    sample_panels,
    spearman,
    upsample,
)
from convlens.analysis.compare import statistic_rows
from convlens.errors import ConvlensError
from convlens.model.layers import LayerInfo


def brute_force_ranks(values: np.ndarray) -> np.ndarray:
    """Each value's rank: 1 + how many are smaller, + half of the others equal to it (the mean rank of a tie)."""
    flat = values.ravel()
    return np.array([1 + (flat < v).sum() + ((flat == v).sum() - 1) / 2 for v in flat])


def brute_force_spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = brute_force_ranks(a), brute_force_ranks(b)
    return float(np.corrcoef(ra, rb)[0, 1])


small_maps = arrays(np.float64, (4, 5), elements=st.integers(-3, 3).map(float))  # small integers: many ties


@settings(max_examples=60, deadline=None)
@given(small_maps)
def test_ranks_equal_a_brute_force_count_ties_included(values):
    np.testing.assert_allclose(ranks(values), brute_force_ranks(values))


@settings(max_examples=60, deadline=None)
@given(small_maps, small_maps)
def test_spearman_equals_the_brute_force_rank_correlation(a, b):
    expected = brute_force_spearman(a, b) if a.std() > 0 and b.std() > 0 else math.nan
    got = spearman(a, b)
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected, abs=1e-12)


def test_spearman_of_monotone_maps_is_one_and_of_reversed_ones_minus_one():
    a = np.random.default_rng(0).random((7, 7))
    assert spearman(a, np.exp(3 * a)) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert math.isnan(spearman(a, np.zeros_like(a)))  # an all-zero Grad-CAM map ranks nothing


def test_gradcam_weights_each_map_by_its_mean_gradient_then_relu():
    conv = np.zeros((2, 2, 2))
    conv[..., 0] = [[1, 2], [3, 4]]
    conv[..., 1] = [[4, 0], [0, 1]]
    grads = np.zeros((2, 2, 2))
    grads[..., 0] = [[1, 1], [1, 1]]  # mean 1
    grads[..., 1] = [[-4, 0], [0, -4]]  # mean -2
    # 1·[[1,2],[3,4]] − 2·[[4,0],[0,1]] = [[-7,2],[3,2]] → ReLU
    np.testing.assert_allclose(gradcam(conv, grads), [[0, 2], [3, 2]])
    assert gradcam(conv, grads, (4, 4)).shape == (4, 4)


def test_upsample_is_bilinear_with_half_pixel_centres():
    grid = np.array([[0.0, 4.0], [8.0, 12.0]])
    up = upsample(grid, (4, 4))
    np.testing.assert_allclose(up[0], [0, 1, 3, 4])  # edges clamp, inner points interpolate
    np.testing.assert_allclose(up[:, 0], [0, 2, 6, 8])
    np.testing.assert_allclose(upsample(np.full((3, 3), 2.5), (7, 11)), np.full((7, 11), 2.5))
    np.testing.assert_allclose(upsample(grid, (2, 2)), grid)


def test_upsample_matches_tensorflow_resize():
    from convlens.model.keras_models import tf

    grid = np.random.default_rng(1).random((7, 5))
    expected = tf.image.resize(grid[None, :, :, None], (28, 20), method="bilinear").numpy()[0, :, :, 0]
    np.testing.assert_allclose(upsample(grid, (28, 20)), expected, atol=1e-6)


def test_ascent_summary_ratios_to_the_dataset_and_silent_channels():
    achieved = np.array([2.0, 1.0, 0.5, 3.0])
    top = np.array([1.0, 2.0, 0.0, 1.5])  # channel 2 never fires on the data: no ratio
    summary = ascent_summary(achieved, top)
    assert summary["channels"] == 4 and summary["silent_on_data"] == 1
    assert summary["ratio_median"] == 2.0 and summary["ratio_min"] == 0.5  # ratios 2, 0.5, 2
    assert summary["beats_dataset"] == pytest.approx(2 / 3, abs=1e-6)
    assert set(ascent_summary(achieved)) == {"channels", "activation_median"}  # a layer without dataset statistics
    with pytest.raises(ValueError, match="channels"):
        ascent_summary(achieved, top[:3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no mean of an empty slice
        silent = ascent_summary(achieved[:2], np.zeros(2))
    assert silent == {
        "channels": 2, "activation_median": 1.5, "ratio_median": None, "ratio_min": None,
        "beats_dataset": None, "silent_on_data": 2,
    }  # fmt: skip


def test_randomization_summary_medians_skip_undefined_correlations():
    correlations = {
        "0": {"predicted": 0.1, "true": 0.2},
        "1": {"predicted": 0.3, "true": math.nan},
        "2": {"predicted": 0.5, "true": 0.4},
    }
    summary = randomization_summary(correlations)["spearman"]
    assert summary["median"] == {"predicted": 0.3, "true": pytest.approx(0.3)}
    assert summary["sample_1"] == {"predicted": 0.3, "true": None}  # JSON null, not NaN
    assert list(summary) == ["median", "sample_0", "sample_1", "sample_2"]
    ascent = {"trained": {"conv2d": ascent_summary(np.array([2.0, 3.0]), np.array([1.0, 1.0]))}}
    rows = statistic_rows({"gradcam.json": {"spearman": summary}, "activation_max.json": ascent})
    assert rows[("spearman", "median", "predicted")] == 0.3 and rows[("spearman", "sample_2", "true")] == 0.4
    assert rows[("trained", "conv2d", "ratio_median")] == 2.5  # `python -m convlens compare` sees both files


def test_normalized_maps_and_the_blur_kernel():
    np.testing.assert_allclose(normalized(np.array([[0.0, 2.0], [1.0, 4.0]])), [[0, 0.5], [0.25, 1]])
    assert not normalized(np.zeros((2, 2))).any()
    kernel = gaussian_kernel(0.5)
    assert kernel.shape == (3, 3) and kernel.sum() == pytest.approx(1) and kernel[1, 1] == kernel.max()


def test_the_gradcam_layer_defaults_to_the_last_conv_layer_of_the_model_itself():
    layers = [
        LayerInfo(0, "conv2d", "Conv2D"),
        LayerInfo(1, "block", "Sequential"),
        LayerInfo(None, "block/conv", "Conv2D"),
        LayerInfo(2, "conv2d_1", "Conv2D"),
        LayerInfo(3, "dense", "Dense"),
    ]
    assert gradcam_layer(layers, None) == "conv2d_1"
    assert gradcam_layer(layers[:3], None) == "conv2d"  # a nested conv layer is not the model's own
    assert gradcam_layer(layers, "dense") == "dense"  # checked for feature maps once the model is loaded
    with pytest.raises(ConvlensError, match="inside the nested model 'block'"):
        gradcam_layer(layers, "block/conv")
    with pytest.raises(ConvlensError, match="no conv layer"):
        gradcam_layer(layers[4:], None)


def test_sample_panels_title_each_model_with_its_prediction_and_the_explained_class():
    classes = ["T-shirt/top", "Trouser", "Bag"]
    probs = {"trained": np.array([[0.1, 0.2, 0.7]]), "untrained": np.array([[0.4, 0.35, 0.25]])}
    maps = {"trained": np.array([[[0.0, 2.0]], [[1.0, 4.0]]]), "untrained": np.zeros((2, 1, 2))}
    rows, labels = sample_panels(maps, probs, 0, {"predicted": np.array([2]), "true": np.array([1])}, classes)
    assert labels == ["predicted class: Bag", "true class: Trouser"]
    assert [title for _, title in rows[1]] == [
        "trained: predicts Bag 0.70\np(Trouser) = 0.20",
        "untrained: predicts T-shirt/top 0.40\np(Trouser) = 0.35",
    ]
    np.testing.assert_allclose(rows[0][0][0], [[0, 1]])  # each map scaled by its maximum
    np.testing.assert_allclose(rows[1][0][0], [[0.25, 1]])
    assert not rows[0][1][0].any()


def test_ascent_metrics_refuse_a_dataset_table_of_another_channel_count():
    achieved, top = np.array([2.0, 1.0, 0.5]), np.array([1.0, 2.0, 0.0])
    assert ascent_metrics("conv2d", achieved, top) == ascent_summary(achieved, top)
    assert ascent_metrics("conv2d", achieved) == {"channels": 3, "activation_median": 1.0}
    with pytest.raises(ConvlensError, match="^conv2d has 3 channels but the dataset table has another count; rerun$"):
        ascent_metrics("conv2d", achieved, top[:2])


def test_the_ascent_line_gives_the_medians_and_the_ratio_to_the_dataset_when_there_is_one():
    before, after = np.array([0.01, 0.02, 0.03]), np.array([1.5, 2.25, 3.0])
    with_data = ascent_metrics("conv2d", after, np.array([1.0, 1.0, 1.0]))
    assert ascent_line("trained", "conv2d", 1.26, before, after, with_data) == (
        "trained conv2d: 3 channels in 1.3 s, median mean activation 0.02 → 2.25, 2.25 × the dataset's best image"
    )
    without = ascent_metrics("conv2d_1", after)
    assert ascent_line("untrained", "conv2d_1", 0.04, before, after, without) == (
        "untrained conv2d_1: 3 channels in 0.0 s, median mean activation 0.02 → 2.25"
    )


def test_gradcam_explains_the_trained_models_prediction_and_the_label():
    probs = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]])
    targets = gradcam_targets(probs, np.array([2, 0]))
    assert list(targets) == list(TARGETS)
    assert targets["predicted"].tolist() == [1, 0] and targets["true"].tolist() == [2, 0]


def test_the_randomization_test_correlates_each_samples_maps_per_target():
    trained = np.arange(2 * 2 * 2 * 3, dtype=np.float32).reshape(2, 2, 2, 3)  # samples × targets × H × W
    untrained = trained.copy()
    untrained[0, 1] = -trained[0, 1]  # sample 0's true-class map reversed: −1
    untrained[1, 0] = 0.0  # sample 1's predicted-class map constant: undefined
    metrics = randomization_test(trained, untrained, [7, 9])
    assert metrics == {
        "spearman": {
            "median": {"predicted": 1.0, "true": 0.0},
            "sample_7": {"predicted": 1.0, "true": -1.0},
            "sample_9": {"predicted": None, "true": 1.0},
        }
    }
    assert randomization_line(2, "conv2d_1", metrics) == (
        "2 samples at conv2d_1: Spearman trained vs untrained, median predicted 1.0, true 0.0"
    )


def test_the_gradcam_record_says_what_each_map_explains_and_what_each_model_predicts():
    index = {"split": "train", "samples": [0, 5], "labels": [9, 2]}
    probs = {"trained": np.array([[0.1, 0.9], [0.6, 0.4]]), "untrained": np.array([[0.5, 0.5], [0.3333333333, 0.7]])}
    targets = gradcam_targets(probs["trained"], np.array([1, 0]))
    assert gradcam_record("conv2d", index, targets, probs) == {
        "layer": "conv2d", "split": "train", "samples": [0, 5], "labels": [9, 2],
        "targets": {"predicted": [1, 0], "true": [1, 0]},
        "predicted": {"trained": [1, 0], "untrained": [0, 1]},
        "probability": {"trained": [0.9, 0.6], "untrained": [0.5, 0.7]},
    }  # fmt: skip
    rounded = gradcam_record("conv2d", index, targets, {"m": np.array([[0.3333333333, 0.1], [0.0, 0.1234567]])})
    assert rounded["probability"] == {"m": [0.333333, 0.123457]}
