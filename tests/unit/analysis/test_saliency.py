"""The pixel-level attribution methods (TensorFlow) against hand computations on tiny models."""

import logging

import numpy as np
import pytest

from tests.support.helpers import tiny_model


def linear_model():
    """Scores linear in the input: a 1×1 conv (no bias) → Flatten → Dense(3, softmax), softmax dropped for scores."""
    from convlens.model.keras_models import keras

    keras.utils.set_random_seed(3)
    return keras.Sequential(
        [
            keras.Input((4, 4, 1)),
            keras.layers.Conv2D(1, 1, use_bias=False, name="conv"),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax", name="head"),
        ]
    )


def linear_gradient(model, c: int) -> np.ndarray:
    """∂score_c/∂x of :func:`linear_model` by hand: the conv's weight × the head's column c."""
    k = float(model.get_layer("conv").get_weights()[0].ravel()[0])
    return k * model.get_layer("head").get_weights()[0][:, c].reshape(4, 4, 1)


@pytest.fixture(scope="module")
def linear():
    from convlens.analysis.gradients import class_scores

    model = linear_model()
    weights = [linear_gradient(model, c) for c in range(3)]
    return class_scores(model, "conv")[0], weights


@pytest.fixture(scope="module")
def tiny():
    from convlens.analysis.gradients import class_scores

    return class_scores(tiny_model(seed=5), "conv2d_1")[0]


def images(n: int, shape=(28, 28, 1), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (n, *shape)).astype(np.float32)


def test_saliency_of_a_linear_model_is_its_weights(linear):
    from convlens.analysis.saliency import saliency

    scorer, weights = linear
    x, classes = images(3, (4, 4, 1)), np.array([0, 2, 1])
    np.testing.assert_allclose(saliency(scorer, x, classes), [weights[c] for c in classes], rtol=1e-5, atol=1e-7)


def test_saliency_is_the_finite_difference_of_the_score(tiny):
    from convlens.analysis.saliency import saliency, scores

    x, c = images(1, seed=1), 4
    grad = saliency(tiny, x, np.array([c]))[0]
    for r, col in [(5, 7), (14, 14), (20, 3)]:
        step = np.zeros_like(x)
        step[0, r, col, 0] = 1e-3
        difference = (scores(tiny, x + step)[0, c] - scores(tiny, x - step)[0, c]) / 2e-3
        assert difference == pytest.approx(grad[r, col, 0], rel=2e-2, abs=2e-4)  # float32 scores


def test_smoothgrad_of_a_linear_model_is_its_absolute_weights_at_any_noise(linear):
    from convlens.analysis.saliency import Settings, smoothgrad

    scorer, weights = linear
    for noise in (0.0, 0.5):
        settings = Settings(noise=noise, samples=5, steps=1, window=1, stride=1, seed=0)
        got = smoothgrad(scorer, images(2, (4, 4, 1)), np.array([1, 1]), settings)
        np.testing.assert_allclose(got, [np.abs(weights[1])] * 2, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kind", ["black", "mean"])
def test_integrated_gradients_are_complete(tiny, kind):
    """Σ attributions = score(x) − score(baseline), to 1e-4 with enough steps, on a ReLU network."""
    from convlens.analysis.attribution import baseline_input
    from convlens.analysis.saliency import integrated_gradients, scores

    x, classes = images(2, seed=2), np.array([3, 7])
    baseline = baseline_input(kind, [images(5, seed=9)])
    attributions = integrated_gradients(tiny, x, classes, baseline, steps=8192)
    own = scores(tiny, x)[[0, 1], classes]
    start = scores(tiny, baseline[None].astype(np.float32))[0, classes]
    np.testing.assert_allclose(attributions.sum(axis=(1, 2, 3)), own - start, atol=1e-4)


def test_integrated_gradients_of_a_linear_model_are_input_times_weights(linear):
    from convlens.analysis.saliency import integrated_gradients

    scorer, weights = linear
    x = images(1, (4, 4, 1))
    got = integrated_gradients(scorer, x, np.array([2]), np.zeros((4, 4, 1)), steps=3)
    np.testing.assert_allclose(got[0], x[0] * weights[2], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(("window", "stride"), [(4, 4), (5, 3), (28, 1)])
def test_occlusion_is_the_mean_score_drop_of_the_patches_over_each_pixel(tiny, window, stride):
    """Against a brute-force loop: every patch position (the last flush with the edge), one image at a time."""
    from convlens.analysis.saliency import occlusion, scores

    x, classes, baseline = images(2, seed=4), np.array([1, 8]), np.full((28, 28, 1), 0.25)
    got = occlusion(tiny, x, classes, baseline, window, stride)
    starts = sorted({*range(0, 28 - window + 1, stride), 28 - window})
    for i, c in enumerate(classes):
        total, covered = np.zeros((28, 28)), np.zeros((28, 28))
        for r in starts:
            for col in starts:
                hidden = x[i].copy()
                hidden[r : r + window, col : col + window] = 0.25
                drop = scores(tiny, x[i : i + 1])[0, c] - scores(tiny, hidden[None])[0, c]
                total[r : r + window, col : col + window] += drop
                covered[r : r + window, col : col + window] += 1
        np.testing.assert_allclose(got[i], total / covered, rtol=1e-4, atol=1e-5)


def test_method_maps_give_grad_cam_as_gradients_computes_it(tiny):
    from convlens.analysis.gradients import gradcam_maps
    from convlens.analysis.saliency import Settings, method_maps

    x, classes = images(3, seed=6), np.array([0, 5, 9])
    settings = Settings(0.1, 2, 4, 4, 4, 0)
    got = method_maps("gradcam", tiny, x, classes, np.zeros((28, 28, 1)), settings)
    np.testing.assert_allclose(got, gradcam_maps(tiny, x, [classes], (28, 28))[:, 0], rtol=1e-5, atol=1e-6)
    for method in ("saliency", "smoothgrad", "integrated_gradients", "occlusion"):
        assert method_maps(method, tiny, x, classes, np.zeros((28, 28, 1)), settings).shape[:3] == (3, 28, 28)


def test_tensorflows_retracing_note_is_dropped_and_its_other_warnings_kept(caplog):
    """One gradient function is traced per model on purpose (the cascade's randomized copies): TensorFlow's
    "triggered tf.function retracing" note would be noise in the stage's log; its other warnings stay."""
    from convlens.model.keras_models import tf

    logger = tf.get_logger()
    with caplog.at_level(logging.WARNING, logger=logger.name):
        logger.warning("5 out of the last 11 calls to <function f> triggered tf.function retracing. Tracing is …")
        logger.warning("something else")
    assert [r.getMessage() for r in caplog.records] == ["something else"]
