"""The TensorFlow half: Grad-CAM against a hand computation, gradient ascent raising every channel, and the
activation_max and gradcam stages on tiny data."""

import json
import logging

import numpy as np
import pytest

from convlens.analysis.ascent import selectivity
from convlens.analysis.attribution import TARGETS, gradcam, spearman
from convlens.errors import ConvlensError
from convlens.model.archive import Archive, open_model
from convlens.model.forward import load_network
from convlens.model.inputs import model_inputs
from convlens.pipeline import paths
from convlens.pipeline.files import read_csv_columns
from stages import activation_max
from stages import gradcam as gradcam_stage
from tests.support.helpers import tiny_model


def gap_model(last: str, seed: int = 3, functional: bool = False):
    """Conv2D (same padding, ReLU) → global average pooling → Dropout → Dense: d(logit c)/d(feature map k at any
    position) is the Dense kernel's W[k, c] / (H·W), whatever the input (Dropout is the identity at inference).
    ``last``: how the softmax comes (or "sigmoid": no softmax); a Sequential or the same as a functional model."""
    from convlens.model.keras_models import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 6, 1))
    layers = [
        keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv"),
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dropout(0.5, name="dropout"),  # as in the book's model: it must not drop at inference
    ]
    if last in ("softmax activation", "sigmoid"):
        layers.append(keras.layers.Dense(4, activation=last.split()[0], name="dense"))
    elif last == "Activation layer":  # linear logits, then Activation("softmax")
        layers += [keras.layers.Dense(4, name="dense"), keras.layers.Activation("softmax", name="softmax")]
    else:  # a separate Softmax layer after linear logits
        layers += [keras.layers.Dense(4, name="dense"), keras.layers.Softmax(name="softmax")]
    if not functional:
        return keras.Sequential([inputs, *layers])
    x = inputs
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


@pytest.mark.parametrize("functional", [False, True], ids=["sequential", "functional"])
@pytest.mark.parametrize("last", ["softmax activation", "softmax layer", "Activation layer"])
def test_gradcam_of_a_loaded_model_equals_the_hand_computation(last, functional, tmp_path):
    from convlens.analysis.gradients import class_scores, feature_map_gradients, probabilities
    from convlens.model.keras_models import keras, load_model

    gap_model(last, functional=functional).save(tmp_path / "gap.keras")
    model = load_model(tmp_path / "gap.keras")  # a loaded Sequential: its layer outputs lie off-graph
    x = np.random.default_rng(0).random((3, 6, 6, 1)).astype(np.float32)
    softmax_out = np.asarray(model(x, training=False))
    maps = np.asarray(keras.Model(model.inputs[0], model.get_layer("conv").output)(x))
    kernel = model.get_layer("dense").get_weights()[0]  # (3 feature maps, 4 classes)
    classes = np.array([0, 2, 3])

    scorer, logits = class_scores(model, "conv")
    conv, grads, scores = feature_map_gradients(scorer, x, classes)
    assert logits
    np.testing.assert_allclose(probabilities(scores, logits), softmax_out, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(conv, maps, rtol=1e-6)
    for i, c in enumerate(classes):
        by_hand = np.broadcast_to(kernel[:, c] / 36.0, (6, 6, 3))  # the gradient, in closed form
        np.testing.assert_allclose(grads[i], by_hand, rtol=1e-5, atol=1e-7)
        expected = np.maximum((maps[i] * kernel[:, c] / 36.0).sum(axis=-1), 0)  # ReLU(Σ_k α_k A_k)
        np.testing.assert_allclose(gradcam(conv[i], grads[i], (6, 6)), expected, rtol=1e-5, atol=1e-7)


def test_a_layer_without_feature_maps_is_refused_for_gradcam():
    from convlens.analysis.gradients import class_scores

    with pytest.raises(ConvlensError, match="gradcam.layer 'gap' outputs shape \\(3,\\), not H×W×C feature maps"):
        class_scores(gap_model("softmax layer"), "gap")
    with pytest.raises(ConvlensError) as error:
        class_scores(gap_model("softmax layer"), "nope")
    assert str(error.value) == (
        "gradcam.layer 'nope' outputs shape None, not H×W×C feature maps; choose a Conv2D or pooling layer of the "
        "model (null: the last conv layer)"
    )


def test_scores_without_a_softmax_are_taken_as_they_are():
    from convlens.analysis.gradients import class_scores, feature_map_gradients
    from convlens.model.keras_models import keras

    x = np.random.default_rng(1).random((2, 6, 6, 1)).astype(np.float32)
    sigmoid = gap_model("sigmoid")
    want = np.asarray(sigmoid(x))
    scorer, logits = class_scores(sigmoid, "conv")
    assert not logits and sigmoid.get_layer("dense").activation is keras.activations.sigmoid
    np.testing.assert_allclose(feature_map_gradients(scorer, x, np.array([0, 3]))[2], want, rtol=1e-6)
    pooled = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(2, 3, name="conv"), keras.layers.Flatten()])
    assert class_scores(pooled, "conv")[1] is False  # a last layer with no activation at all
    squashed = keras.Sequential([keras.Input((6, 6, 1)), *pooled.layers, keras.layers.Activation("sigmoid")])
    scorer, logits = class_scores(squashed, "conv")  # a last Activation that is not a softmax stays
    assert not logits
    np.testing.assert_allclose(feature_map_gradients(scorer, x, np.array([0, 1]))[2], squashed(x), rtol=1e-6)


@pytest.mark.parametrize("layer", ["conv2d", "conv2d_1", "dense"])
def test_gradient_ascent_raises_every_channel_and_stays_in_the_input_range(layer):
    from convlens.analysis.gradients import Ascent, maximize_channels

    model = tiny_model(seed=5)
    ascent = Ascent(steps=12, learning_rate=0.05, jitter=1, blur_every=4, blur_sigma=0.5, decay=0.01, seed=0)
    x, before, after = maximize_channels(model, layer, (28, 28, 1), 1.0, ascent)
    channels = model.get_layer(layer).output.shape[-1]
    assert x.shape == (channels, 28, 28, 1) and before.shape == after.shape == (channels,)
    assert (after > before).all(), (before, after)
    assert x.min() >= 0 and x.max() <= 1
    again, _, same = maximize_channels(model, layer, (28, 28, 1), 1.0, ascent)
    np.testing.assert_array_equal(again, x)  # seeded: the same inputs every run
    np.testing.assert_array_equal(same, after)


def test_gradient_ascent_runs_the_model_in_inference_mode():
    from convlens.analysis.gradients import Ascent, maximize_channels

    model = gap_model("softmax layer")  # a Dropout before the layer maximized: it must not drop
    ascent = Ascent(steps=3, learning_rate=0.05, jitter=0, blur_every=0, blur_sigma=0.5, decay=0.0, seed=1)
    first, again = (maximize_channels(model, "dense", (6, 6, 1), 1.0, ascent) for _ in range(2))
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_gradient_ascent_starts_in_the_input_range_scales_with_it_and_decays_toward_zero():
    from convlens.analysis.gradients import Ascent, maximize_channels
    from convlens.model.keras_models import keras

    keras.utils.set_random_seed(4)
    conv = keras.layers.Conv2D(3, 3, use_bias=False, activation="relu", name="conv")  # f(a·x) = a·f(x), a > 0
    model = keras.Sequential([keras.Input((28, 28, 1)), conv])

    def ascend(top, **options):
        settings = {"steps": 3, "learning_rate": 0.05, "jitter": 0, "blur_every": 2, "blur_sigma": 0.5}
        return maximize_channels(
            model, "conv", (28, 28, 1), top, Ascent(**{**settings, "decay": 0.01, "seed": 0, **options})
        )

    start, _, _ = ascend(255.0, steps=0)
    assert start.min() == 0 and start.max() == 255  # gray noise, clipped to the input range from the start
    x, before, after = ascend(255.0)
    x1, before1, after1 = ascend(1.0)
    np.testing.assert_allclose(x, 255 * x1, rtol=1e-4, atol=1e-3)  # each step a fraction of the input range
    np.testing.assert_allclose([before, after], [255 * before1, 255 * after1], rtol=1e-4)
    decayed, _, _ = ascend(255.0, steps=1, learning_rate=0.0, decay=0.5)
    np.testing.assert_allclose(decayed, start * 0.5, rtol=1e-6)  # no step: only the decay, toward 0


def test_the_blur_comes_every_blur_every_steps_and_jitter_changes_the_climb():
    from convlens.analysis.gradients import Ascent, maximize_channels

    model = tiny_model(seed=5)

    def ascend(steps, **options):
        settings = {"learning_rate": 0.0, "jitter": 0, "blur_every": 3, "blur_sigma": 1.0, "decay": 0.0, "seed": 2}
        return maximize_channels(model, "conv2d", (28, 28, 1), 1.0, Ascent(steps=steps, **{**settings, **options}))[0]

    start, two, three, five, six = (ascend(steps) for steps in (0, 2, 3, 5, 6))  # no climb: only the blur
    np.testing.assert_array_equal(two, start)
    assert not np.allclose(three, start)  # blurred after the 3rd step…
    np.testing.assert_array_equal(five, three)
    assert not np.allclose(six, three)  # …and after the 6th
    still, shaken = (ascend(4, learning_rate=0.05, blur_every=0, jitter=jitter) for jitter in (0, 2))
    assert not np.allclose(still, shaken)


def test_class_probabilities_are_the_softmax_of_logits_in_float64_or_the_scores_themselves():
    from convlens.analysis.gradients import probabilities

    scores = np.array([[1000.0, 999.0, 0.0], [0.5, 0.25, 0.25]], np.float32)  # logits of 1000: no overflow
    got = probabilities(scores, logits=True)
    assert got.dtype == np.float64 and np.isfinite(got).all()
    np.testing.assert_allclose(got[0], [1 / (1 + np.exp(-1.0)), 1 / (1 + np.e), 0.0], rtol=1e-12)
    kept = probabilities(scores[1:], logits=False)  # a softmax output: already probabilities
    assert kept.dtype == np.float64 and kept.tolist() == [[0.5, 0.25, 0.25]]


def test_the_stages_metrics_are_those_of_their_saved_arrays(project, run_pipeline, caplog):
    caplog.set_level(logging.INFO)
    run_pipeline(project, "samples.indices=[0,3,5]", "dataset.layers=[conv2d]")
    out = project / "outputs"
    archive = {role: open_model(project, role) for role in paths.ROLES}

    # activation maximization: the ratio is each optimized input's own channel mean over the dataset's best image;
    # the failures counted, the selectivity that of the saved inputs, the curve one row per step run
    metrics = json.loads((out / "metrics" / "activation_max.json").read_text(encoding="utf-8"))
    for role in paths.ROLES:
        network = load_network(archive[role], upto="conv2d_1")
        for layer, channels in (("conv2d", 4), ("conv2d_1", 8)):
            x = np.load(paths.activation_max_dir(project, role) / paths.activation_max_name(role, layer))
            assert x.shape == (channels, 28, 28, 1) and x.min() >= 0 and x.max() <= 1
            matrix = network.activations(x, [layer])[0].mean(axis=(1, 2))
            means, found = np.diag(matrix), metrics[role][layer]
            assert found["dead"] == int((means <= 1e-7).sum()) and found["selectivity"] == selectivity(matrix)
            if layer == "conv2d":
                top = read_csv_columns(paths.dataset_table(project, role, "conv2d"), ["top_image_mean"])[:, 0]
                ratio = np.divide(means, top, out=np.full(channels, np.nan), where=top > 0)
                assert found["ratio_median"] == pytest.approx(np.nanmedian(ratio), rel=1e-4)
                assert found["below_dataset"] == int(((means > 1e-7) & (means < top * (1 - 1e-5))).sum())
            else:  # not among dataset.layers: no ratio, said once in each model's log
                assert "ratio_median" not in found and "below_dataset" not in found
            assert found["activation_median"] == pytest.approx(np.median(means), rel=1e-4)
            curves = paths.activation_max_curves_dir(project, role)
            curve = read_csv_columns(curves / f"{role}_{layer}.csv", ["step"])
            assert curve[:, 0].tolist() == list(range(1, found["steps"] + 1))
    assert sum("conv2d_1 is not among dataset.layers" in r.getMessage() for r in caplog.records) == 2

    # Grad-CAM: maps of the trained model's prediction and of the label, the metric their Spearman correlation
    index = json.loads((out / "gradcam" / "index.json").read_text(encoding="utf-8"))
    labels = json.loads((out / "samples" / "index.json").read_text(encoding="utf-8"))["labels"]
    assert index["layer"] == "conv2d_1" and index["samples"] == [0, 3, 5] and index["targets"]["true"] == labels
    images = np.load(out / "samples" / "images.npy")
    network = load_network(archive["trained"])
    assert (
        index["targets"]["predicted"]
        == network.activations(model_inputs(images, 255.0), ["dense"])[0].argmax(axis=1).tolist()
    )
    maps = {role: np.load(out / "gradcam" / f"{role}.npy") for role in paths.ROLES}
    assert maps["trained"].shape == maps["untrained"].shape == (3, 2, 28, 28) and maps["trained"].min() >= 0
    found = json.loads((out / "metrics" / "gradcam.json").read_text(encoding="utf-8"))["spearman"]
    for i, sample in enumerate([0, 3, 5]):
        for k, target in enumerate(TARGETS):
            rho = spearman(maps["trained"][i, k], maps["untrained"][i, k])
            assert found[f"sample_{sample}"][target] == (None if np.isnan(rho) else pytest.approx(rho, abs=1e-6))
    assert {p.name for p in (out / "figures" / "gradcam").iterdir()} == {f"sample_{s}.png" for s in (0, 3, 5)}


def test_bad_layers_and_classes_fail_before_anything_is_written(project, run_pipeline, stage_config):
    from stages import build_untrained, dataset, fetch_data, fetch_model, samples

    run_pipeline(project, stages=[fetch_data, fetch_model, samples, build_untrained, dataset])
    Archive.read(paths.model_path(project, "trained"))
    for role in paths.ROLES:
        with pytest.raises(ConvlensError, match="unknown layer 'conv9'; this model has 0:conv2d"):
            activation_max.run(stage_config("activation_max", "activation_max.layers=[conv9]"), project, role)
    with pytest.raises(ConvlensError, match="gradcam.layer 'flatten' \\(Flatten\\) does not output H×W×C feature"):
        gradcam_stage.run(stage_config("gradcam", "gradcam.layer=flatten"), project)
    for path in ("activation_max", "gradcam", "metrics/gradcam.json", "figures/activation_max", "figures/gradcam"):
        assert not (project / "outputs" / path).exists(), path


def test_gradcam_is_skipped_when_the_head_does_not_score_the_datas_classes(project, run_pipeline, stage_config, caplog):
    """Data of 9 classes for a 10-output model: one log line, the reason as the metrics, empty folders (no figure
    drawn by render_gradcam)."""
    import logging

    from stages import build_untrained, fetch_data, fetch_model, render_gradcam, samples

    run_pipeline(project, stages=[fetch_data, fetch_model, samples, build_untrained])
    paths.classes(project).write_text(json.dumps([f"c{i}" for i in range(9)]), encoding="utf-8")
    caplog.set_level(logging.INFO)
    gradcam_stage.run(stage_config("gradcam"), project)
    render_gradcam.run(stage_config("render_gradcam"), project)
    reason = (
        "the model's last layer 'dense' outputs 10 values per image, not one score for each of the data's 9 classes; "
        "use a classifier trained on this data"
    )
    assert f"gradcam skipped: {reason}" in caplog.messages
    assert json.loads(paths.gradcam_metrics(project).read_text(encoding="utf-8")) == {"skipped": reason}
    assert list(paths.gradcam_dir(project).iterdir()) == list(paths.gradcam_figures_dir(project).iterdir()) == []


def test_gradcam_maps_stack_each_targets_maps_of_each_image_and_probabilities_are_softmaxed(tmp_path):
    from convlens.analysis.attribution import upsample
    from convlens.analysis.gradients import class_probabilities, gradcam_maps
    from convlens.model.keras_models import keras, load_model

    gap_model("softmax activation").save(tmp_path / "gap.keras")
    model = load_model(tmp_path / "gap.keras")
    x = np.random.default_rng(1).random((2, 6, 6, 1)).astype(np.float32)
    softmax_out = np.asarray(model(x, training=False))
    maps = np.asarray(keras.Model(model.inputs[0], model.get_layer("conv").output)(x))
    kernel = model.get_layer("dense").get_weights()[0]  # (3 feature maps, 4 classes)

    scorer, probs = class_probabilities(model, "conv", x)  # the softmax switched off for the scores, then applied
    np.testing.assert_allclose(probs, softmax_out, rtol=1e-5, atol=1e-6)
    targets = [np.array([0, 3]), np.array([2, 2])]
    got = gradcam_maps(scorer, x, targets, (12, 12))
    assert got.shape == (2, 2, 12, 12) and got.dtype == np.float32 and got.any()  # images × targets × H × W
    for i in range(2):
        for k, classes in enumerate(targets):
            by_hand = np.maximum((maps[i] * kernel[:, classes[i]] / 36.0).sum(axis=-1), 0)  # ReLU(Σ_k α_k A_k)
            np.testing.assert_allclose(got[i, k], upsample(by_hand, (12, 12)), rtol=1e-5, atol=1e-6)
