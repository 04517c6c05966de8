"""The numpy half of the gradient views: Grad-CAM arithmetic, upsampling, ranks and Spearman, the metrics."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from convlens.analysis.attribution import (
    TARGETS,
    flat_layers,
    gaussian_kernel,
    gradcam,
    gradcam_layer,
    gradcam_record,
    gradcam_targets,
    randomization_line,
    randomization_summary,
    randomization_test,
    ranks,
    refuse_flat_layers,
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


def test_spearman_of_two_values_is_one_or_minus_one():
    """The smallest maps that rank anything: two values (their rank spread is below 1)."""
    assert spearman(np.array([0.2, 0.7]), np.array([1.0, 5.0])) == pytest.approx(1.0)
    assert spearman(np.array([0.2, 0.7]), np.array([5.0, 1.0])) == pytest.approx(-1.0)


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


def test_randomization_summary_medians_skip_undefined_correlations():
    correlations = {
        "0": {"predicted": 0.1, "true": 0.2},
        "1": {"predicted": 0.3, "true": math.nan},
        "2": {"predicted": 0.5, "true": 0.4},
    }
    summary = randomization_summary(correlations)["spearman"]
    assert summary["median"] == {"predicted": 0.3, "true": pytest.approx(0.3)}
    assert summary["sample_1"] == {"predicted": 0.3, "true": None}  # JSON null, not NaN
    assert summary["defined"] == {"predicted": 3, "true": 2}  # the true-class median is over 2 of 3
    assert list(summary) == ["median", "defined", "sample_0", "sample_1", "sample_2"]
    ascent = {"trained": {"conv2d": {"ratio_median": 2.5, "dead": 0}}}  # as activation_max.json holds them
    rows = statistic_rows({"gradcam.json": {"spearman": summary}, "activation_max.json": ascent})
    assert rows[("spearman", "median", "predicted")] == 0.3 and rows[("spearman", "sample_2", "true")] == 0.4
    assert rows[("trained", "conv2d", "ratio_median")] == 2.5  # `python -m convlens compare` sees both files


def test_the_blur_kernel_is_a_normalized_gaussian():
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
    with pytest.raises(ConvlensError) as refused:  # known from the layer kinds: refused in fetch_model
        gradcam_layer(layers, "dense")
    assert str(refused.value) == (
        "gradcam.layer 'dense' (Dense) does not output H×W×C feature maps (the model has flattened or globally pooled "
        "them by then); choose a layer before that: here conv2d_1, block, conv2d (null: the last conv layer)"
    )
    with pytest.raises(ConvlensError, match="inside the nested model 'block'"):
        gradcam_layer(layers, "block/conv")
    with pytest.raises(ConvlensError, match="no conv layer"):
        gradcam_layer(layers[4:], None)


BOOK_LAYERS = [
    LayerInfo(i, name, kind)
    for i, (name, kind) in enumerate([
        ("conv2d", "Conv2D"), ("max_pooling2d", "MaxPooling2D"), ("conv2d_1", "Conv2D"),
        ("max_pooling2d_1", "MaxPooling2D"), ("flatten", "Flatten"), ("dense", "Dense"), ("dropout", "Dropout"),
        ("dense_1", "Dense"),
    ])
]  # fmt: skip


def test_a_flat_layer_is_refused_for_gradcam_and_activation_max_naming_every_layer_with_feature_maps():
    """Outside tester: activation_max.layers took dense, dropout and flatten (3,136 "channels", minutes), and
    gradcam.layer=dense suggested three of the book model's four layers with feature maps, not conv2d."""
    maps = "here max_pooling2d_1, conv2d_1, max_pooling2d, conv2d"  # nearest first, conv2d too
    with pytest.raises(ConvlensError) as refused:
        gradcam_layer(BOOK_LAYERS, "dense")
    assert str(refused.value).endswith(f"choose a layer before that: {maps} (null: the last conv layer)")
    for name, kind in (("flatten", "Flatten"), ("dropout", "Dropout"), ("dense_1", "Dense")):
        with pytest.raises(ConvlensError) as refused:
            refuse_flat_layers(BOOK_LAYERS, ["conv2d", name], "activation_max.layers", "every conv layer")
        assert str(refused.value) == (
            f"activation_max.layers {name!r} ({kind}) does not output H×W×C feature maps (the model has flattened or "
            f"globally pooled them by then); choose a layer before that: {maps} (null: every conv layer)"
        )
    refuse_flat_layers(BOOK_LAYERS, ["conv2d", "max_pooling2d_1"], "activation_max.layers", "every conv layer")
    deep = [LayerInfo(i, f"conv{i}", "Conv2D") for i in range(10)] + [LayerInfo(10, "gap", "GlobalAveragePooling2D")]
    with pytest.raises(ConvlensError, match=r"here conv9, conv8, .*, conv2 and 2 more \(null: the last conv layer\)"):
        gradcam_layer(deep, "gap")


def test_the_layers_past_the_models_flattening_are_known_from_their_kinds():
    """A global pooling, Flatten or Dense and whatever follows it (Dropout, a Dense head) hold no H×W×C maps; a
    conv layer after a Reshape back to maps does again."""
    kinds = ["InputLayer", "Conv2D", "MaxPooling2D", "GlobalAveragePooling2D", "Dropout", "Dense", "Reshape", "Conv2D"]
    layers = [LayerInfo(i, f"l{i}", kind) for i, kind in enumerate(kinds)]
    assert flat_layers(layers) == ["l3", "l4", "l5", "l6"]
    assert gradcam_layer(layers, "l2") == "l2" and gradcam_layer(layers, "l7") == "l7"
    with pytest.raises(ConvlensError, match=r"^gradcam.layer 'l4' \(Dropout\) does not output H×W×C feature maps"):
        gradcam_layer(layers, "l4")


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
            "defined": {"predicted": 1, "true": 2},
            "sample_7": {"predicted": 1.0, "true": -1.0},
            "sample_9": {"predicted": None, "true": 1.0},
        }
    }
    assert randomization_line(2, "conv2d_1", metrics) == (
        "2 samples at conv2d_1: Spearman trained vs untrained, median predicted 1.00 (1 of 2), true 0.00:"
        " predicted too few samples to decide, true too few samples to decide"
    )
    undefined = {"spearman": {"median": {"predicted": -0.011007545, "true": None}}}  # outside tester #16
    undefined |= {"spearman_nonzero": {"median": {"predicted": 0.6, "true": 0.1}}, "passes": {"predicted": 0}}
    assert randomization_line(1, "block2", undefined) == (
        "1 sample at block2: Spearman trained vs untrained, median predicted -0.01, true –; where not both zero "
        "predicted 0.60, true 0.10: predicted fails, true too few samples to decide"
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
