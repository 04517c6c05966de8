"""The sanity checks over many images (TensorFlow): the cascading randomization's models and curves, and the
deletion curve, on tiny models whose layers are randomized by hand."""

import numpy as np
import pytest

from convlens.analysis.attribution import cascade_rows, deletion_fractions, deletion_rows, sanity_summary
from tests.support.helpers import tiny_model


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The tiny book-like model ("trained") and the same architecture with other weights ("untrained")."""
    folder = tmp_path_factory.mktemp("models")
    for role, seed in (("trained", 1), ("untrained", 2)):
        tiny_model(seed=seed).save(folder / f"{role}.keras")
    return folder / "trained.keras", folder / "untrained.keras"


def images(n: int, seed: int = 0) -> np.ndarray:
    """Blobs on black: structured inputs whose maps have something to agree on."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28, 1), np.float32)
    for i in range(n):
        r, c = rng.integers(4, 20, 2)
        x[i, r : r + 8, c : c + 6] = rng.uniform(0.5, 1)
    return x


def test_the_cascade_randomizes_the_weighted_layers_from_the_top_down(models):
    from convlens.analysis.gradients import class_scores
    from convlens.analysis.saliency import scores
    from convlens.analysis.sanity import cascade
    from convlens.model.keras_models import load_model

    layers, scorers = cascade(*models, "conv2d_1")
    assert layers == ["none", "dense", "conv2d_1", "conv2d"]
    x = images(4)
    for role, step in (("trained", 0), ("untrained", -1)):
        own = class_scores(load_model(models[0 if role == "trained" else 1]), "conv2d_1")[0]
        np.testing.assert_allclose(scores(scorers[step], x), scores(own, x), rtol=1e-5, atol=1e-6)
    middle = scores(scorers[1], x)  # only the head randomized: neither model's scores
    assert not np.allclose(middle, scores(scorers[0], x)) and not np.allclose(middle, scores(scorers[-1], x))


@pytest.mark.parametrize("method", ["gradcam", "saliency", "integrated_gradients"])
def test_the_cascading_curve_falls_as_layers_are_randomized(models, method):
    from convlens.analysis.saliency import Settings
    from convlens.analysis.sanity import cascade, sanity_pass

    layers, scorers = cascade(*models, "conv2d_1")
    x = images(24)
    batches = [(x[:16], np.zeros(16, np.int64)), (x[16:], np.zeros(8, np.int64))]
    settings = Settings(0.1, 2, 8, 4, 4, 0)
    tally = sanity_pass(scorers, batches, [method], np.zeros((28, 28, 1)), settings, deletion_fractions(4))
    assert tally.images == 24 and all(len(step) == 24 for step in tally.similar[method])
    rows = cascade_rows(tally.similar[method], layers)
    curve = [row["spearman_nonzero"] for row in rows]  # over the pixels not zero in both: the ties left out
    assert [row["layer"] for row in rows] == layers and [row["randomized"] for row in rows] == [0, 1, 2, 3]
    assert curve[0] == pytest.approx(1.0) and rows[0]["spearman_nonzero"] == pytest.approx(1.0)
    assert curve[1] < curve[0] - 0.3  # the head randomized: the map no longer follows the trained one
    if method != "gradcam":  # (Grad-CAM on blobs drifts back towards the blob once conv2d is random too)
        assert curve[-1] == min(curve) and curve[-1] < 0.5
    if method == "integrated_gradients":  # x · gradient is 0 on the black background of both maps: ties
        assert rows[-1]["tied"] > 0.5 and rows[-1]["spearman"] > curve[-1] + 0.3
    assert all(0 <= row["tied"] <= 1 for row in rows)


def test_the_deletion_curve_starts_at_the_accuracy_and_ends_at_the_baselines_class(models):
    from convlens.analysis.gradients import class_scores
    from convlens.analysis.saliency import Settings, scores
    from convlens.analysis.sanity import RANDOM, cascade, sanity_pass
    from convlens.model.keras_models import load_model

    trained = class_scores(load_model(models[0]), "conv2d_1")[0]
    x = images(20, seed=3)
    labels = scores(trained, x).argmax(axis=1)
    labels[:5] = (labels[:5] + 1) % 10  # 15 of 20 right
    baseline = np.full((28, 28, 1), 0.3)
    baseline_class = scores(trained, baseline[None].astype(np.float32)).argmax()
    _, scorers = cascade(*models, "conv2d_1")
    fractions = deletion_fractions(5)
    tally = sanity_pass(scorers, [(x, labels)], ["saliency"], baseline, Settings(0.1, 2, 4, 4, 4, 0), fractions)
    for name in ("saliency", RANDOM):
        rows = deletion_rows(fractions, tally.correct[name], tally.images)
        assert rows[0] == {"removed": 0.0, "accuracy": 0.75} and rows[-1]["removed"] == 1.0
        assert rows[-1]["accuracy"] == pytest.approx(np.mean(labels == baseline_class))
    summary = sanity_summary({"saliency": cascade_rows(tally.similar["saliency"], ["none", "a", "b", "c"])}, {
        n: deletion_rows(fractions, c, tally.images) for n, c in tally.correct.items()
    }, 0.5)  # fmt: skip
    assert set(summary) == {"saliency", RANDOM} and set(summary[RANDOM]) == {"deletion_auc"}
    assert set(summary["saliency"]) == {
        "deletion_auc", "spearman", "spearman_images", "spearman_nonzero", "spearman_nonzero_images", "tied", "passes"
    }  # fmt: skip
    assert summary["saliency"]["spearman_images"] == 20 and summary["saliency"]["passes"] in (0, 1)


def test_a_methods_deletion_counts_depend_neither_on_the_other_methods_nor_on_the_batches(models):
    """Outside tester: one generator for every method and batch in turn made Grad-CAM's deletion AUC change with
    ``attribution.methods`` and ``attribution.batch_size``; each method now draws from its own stream per image."""
    from convlens.analysis.saliency import Settings
    from convlens.analysis.sanity import RANDOM, cascade, sanity_pass

    _, scorers = cascade(*models, "conv2d_1")
    x = images(12, seed=5)
    labels = np.zeros(12, np.int64)
    settings, fractions = Settings(0.1, 2, 4, 4, 4, 0), deletion_fractions(8)

    def run(methods, size):
        batches = [(x[i : i + size], labels[i : i + size]) for i in range(0, len(x), size)]
        return sanity_pass(scorers[:1], batches, methods, np.zeros((28, 28, 1)), settings, fractions)

    alone, with_others, one_by_one = run(["gradcam"], 6), run(["gradcam", "smoothgrad"], 6), run(["gradcam"], 1)
    for tally in (with_others, one_by_one):
        for name in ("gradcam", RANDOM):
            np.testing.assert_array_equal(tally.correct[name], alone.correct[name])
    smoothgrad = run(["smoothgrad"], 12)
    np.testing.assert_array_equal(smoothgrad.correct["smoothgrad"], with_others.correct["smoothgrad"])
    assert smoothgrad.similar["smoothgrad"] == with_others.similar["smoothgrad"]  # its noise: per image too
