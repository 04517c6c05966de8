"""Input range: a model that scales its own pixels gets raw ones; a model fed the wrong range is named."""

import json

import numpy as np
import pytest

from convlens.errors import ConvlensError
from convlens.model.archive import Archive
from convlens.model.forward import load_network
from convlens.model.inputs import (
    InputScale,
    describe_preprocessing,
    first_conv,
    input_scale,
    model_inputs,
    preprocessing_layers,
    read_input_scale,
)
from convlens.model.layers import LayerInfo
from convlens.pipeline import paths
from convlens.pipeline.config import compose, load_config, read_yaml, write_params
from convlens.pipeline.paths import input_range_path
from convlens.report.build import report_page
from stages import build_untrained, dataset, feature_maps, fetch_data, fetch_model, render_dataset, samples
from tests.support.helpers import MIRROR, copy_project, run_dataset_pass, run_stage
from tests.support.report_pages import Page

BEFORE_MAPS = [fetch_model, fetch_data, samples, build_untrained]
RESCALING = "the model starts with Rescaling (scale 0.00392157, offset 0): feeding raw 0–255 pixels, "
RESCALING += "input.scale ignored"


def entry(kind, name="first", **config):
    return {"class_name": kind, "config": {"name": name, **config}}


def model_config(*entries):
    return {"class_name": "Sequential", "config": {"layers": list(entries)}}


# --- the decision, from config.json ------------------------------------------------------------------


def test_rescaling_and_normalization_anywhere_before_the_first_conv_layer_are_found_nested_ones_included():
    rescaling, norm, conv = entry("Rescaling", "rescaling"), entry("Normalization", "norm"), entry("Conv2D", "conv2d")
    nested = {"class_name": "Sequential", "config": {"name": "preprocessing", "layers": [entry("InputLayer", "i")]}}
    nested["config"]["layers"] += [entry("Dropout", "drop"), rescaling]
    assert preprocessing_layers(model_config(entry("InputLayer", "in"), nested, conv)) == [
        ("preprocessing/rescaling", rescaling)
    ]
    functional = {"class_name": "Functional", "config": {"name": "outer", "layers": [nested]}}
    found = preprocessing_layers(model_config(entry("GaussianNoise"), functional, norm, conv))
    assert found == [("outer/preprocessing/rescaling", rescaling), ("norm", norm)]  # both, in order
    assert preprocessing_layers(model_config(conv, rescaling)) == []  # after the first conv: not the input's scale
    assert preprocessing_layers(model_config(entry("InputLayer", "in"), conv)) == []
    assert preprocessing_layers(model_config(entry("Reshape"), rescaling, conv)) == [("rescaling", rescaling)]


class ConfigOnly:
    """An archive whose weights file must not be read: only a Normalization first layer needs it."""

    def __init__(self, config):
        self.config = config
        self.read = []

    def weights(self, names):
        self.read.append(names)
        return {name: [np.array([72.94]), np.array([8100.0]), 0] for name in names}


def test_the_weights_file_is_read_for_a_normalization_first_layer_only():
    for first in (entry("Conv2D"), entry("Rescaling", scale=1 / 255), None):
        archive = ConfigOnly(model_config(entry("InputLayer", "in"), *([first] if first else [])))
        assert read_input_scale(archive, 255.0).divisor == (1 if first and first["class_name"] == "Rescaling" else 255)
        assert archive.read == []
    archive = ConfigOnly(model_config(entry("Normalization", "norm", mean=None)))
    assert read_input_scale(archive, 255.0).preprocessing == "Normalization (mean 72.94, variance 8100)"
    assert archive.read == [["norm"]]


def test_the_first_conv_layer_is_the_first_of_any_conv_kind_and_none_without_one():
    dense = LayerInfo(0, "dense", "Dense")
    assert first_conv([dense, LayerInfo(1, "dw", "DepthwiseConv2D"), LayerInfo(2, "c", "Conv2D")]) == "dw"
    assert first_conv([dense]) is None


def test_rescaling_or_normalization_first_means_raw_pixels_else_the_configured_scale():
    plain = read_input_scale(ConfigOnly(model_config(entry("Conv2D"))), 255.0)
    assert plain == InputScale(255.0) and plain.note() is None
    rescaled = read_input_scale(ConfigOnly(model_config(entry("Rescaling", scale=1 / 255, offset=0.0))), 255.0)
    assert rescaled.divisor == 1 and rescaled.note() == RESCALING
    given = read_input_scale(ConfigOnly(model_config(entry("Normalization", mean=72.94, variance=8100.0))), 255.0)
    assert given.divisor == 1
    assert given.note().startswith("the model starts with Normalization (mean 72.94, variance 8100): feeding raw")
    adapted = read_input_scale(ConfigOnly(model_config(entry("Normalization", mean=None))), 255.0)
    assert "Normalization (mean 72.94, variance 8100)" in adapted.note()
    assert input_scale(1).divisor == 1 and input_scale(5, []) == InputScale(5.0)


def test_a_preprocessing_layer_is_described_by_its_numbers():
    def said(class_name, config=None, weights=()):
        entry = {"class_name": class_name} if config is None else {"class_name": class_name, "config": config}
        return describe_preprocessing(entry, list(weights))

    assert said("Rescaling", {"scale": 1 / 255, "offset": -1}) == "Rescaling (scale 0.00392157, offset -1)"
    assert said("Rescaling") == "Rescaling (scale 1, offset 0)"  # Keras' defaults
    assert said("Rescaling", {"scale": [0.123456, 2]}) == "Rescaling (scale [0.1235 2.    ], offset 0)"
    assert said("Normalization", {"mean": [0.5] * 7, "variance": [1] * 6}) == (
        "Normalization (mean [0.5 0.5 0.5 ... 0.5 0.5 0.5], variance [1. 1. 1. 1. 1. 1.])"
    )  # more than 6 values are cut in the middle
    adapted = [np.array([0.1234567]), np.array([2.0]), np.array(3)]  # mean, variance, count: its weights
    assert said("Normalization", {"mean": None}, adapted) == "Normalization (mean 0.123457, variance 2)"


@pytest.mark.parametrize("scale", [0, -255, float("nan"), "abc", True, 1e-37])
def test_the_scale_must_be_a_positive_number_even_when_ignored(scale):
    with pytest.raises(ConvlensError, match="input.scale must be a finite number in 0.001..1000000"):
        input_scale(scale, ["Rescaling (scale 0.00392157, offset 0)"])
    with pytest.raises(ConvlensError, match="input.scale must be a finite number in 0.001..1000000"):
        model_inputs(np.zeros((1, 2, 2), np.uint8), scale)


@pytest.mark.parametrize("scale", [255, 255.0, 1, 127.5, 2, 1e-3])
def test_model_inputs_divide_by_the_configured_scale(scale):
    images = np.random.default_rng(9).integers(0, 256, (3, 5, 4), dtype=np.uint8)
    x = model_inputs(images, scale)
    assert x.dtype == np.float32 and x.shape == (3, 5, 4, 1)
    np.testing.assert_array_equal(x[..., 0], images.astype(np.float32) / np.float32(scale))
    np.testing.assert_array_equal(model_inputs(images[..., None], scale), x)  # a channel axis already there
    assert x.max() == np.float32(images.max()) / np.float32(scale)
    assert model_inputs(images.astype(np.float64), scale).dtype == np.float32  # whatever the pixels' type


def test_more_than_half_the_channels_silent_is_a_warning_naming_the_scale_key():
    peaks = np.r_[np.zeros(18), np.full(14, 0.5)]
    assert InputScale(255.0).silent_warning("conv2d", peaks, "train images [0]") == (
        "warning: 18 of 32 channels of conv2d never fire on train images [0]; is the input scale right? "
        "the model may expect raw pixels: input.scale=1"
    )
    assert InputScale(1.0).silent_warning("conv2d", peaks, "x").endswith("pixels in 0..1: input.scale=255")
    raw = input_scale(255.0, ["Rescaling (scale 0.00392157, offset 0)"])
    assert raw.silent_warning("conv2d", peaks, "x").endswith(
        "it gets raw 0–255 pixels, as its first layer Rescaling (scale 0.00392157, offset 0) asks"
    )
    assert InputScale(255.0).silent_warning("conv2d", np.r_[np.zeros(16), np.ones(16)], "x") is None  # half: fine
    assert InputScale(255.0).silent_warning("conv2d", np.full(4, -1e-3), "x").startswith("warning: 4 of 4")


def test_a_model_trained_here_is_warned_about_its_training_not_its_input_scale():
    """The pipeline trained it at this very scale: ``input.scale=1`` would be false advice; a diverged run is not."""
    peaks = np.r_[np.zeros(31), 0.5]
    here = input_scale(255.0, trained_here=True)
    assert (here.divisor, here.suggestion()) == (255.0, "diverged")
    assert here.silent_warning("conv2d", peaks, "the 10000 test images") == (
        "warning: 31 of 32 channels of conv2d never fire on the 10000 test images: the training of this run may "
        "have diverged (see its learning curves; a lower train.learning_rate)"
    )
    assert here.record("conv2d", peaks, "test", 10000)["suggestion"] == "diverged"
    assert here.silent_warning("conv2d", np.ones(32), "x") is None  # a healthy trained-here model: no warning
    assert input_scale(255.0).suggestion() == "raw"  # not trained here: the scale hint as before


# --- through the stages, on the tiny data ---------------------------------------------------------------


def small_cnn(first=None, conv_weights=None, seed=5):
    """Conv2D → MaxPool → Flatten → Dense after an optional first (preprocessing) layer; all named."""
    from convlens.model.keras_models import keras

    keras.utils.set_random_seed(seed)
    layers = [keras.Input((28, 28, 1)), *([first] if first is not None else [])]
    layers += [
        keras.layers.Conv2D(8, 3, activation="relu", padding="same", name="conv2d"),
        keras.layers.MaxPooling2D(2, name="max_pooling2d"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(10, activation="softmax", name="dense"),
    ]
    model = keras.Sequential(layers)
    if conv_weights is not None:
        model.get_layer("conv2d").set_weights(conv_weights)
    return model


def run_maps(project, stage_config, composed, run_pipeline, model_path, *extra):
    """The stages up to feature maps and dataset statistics for ``model_path``, the first conv layer only."""
    overrides = (f"model.path={model_path}", "feature_maps.layers=[conv2d]", "dataset.layers=[conv2d]", *extra)
    run_pipeline(project, *overrides, stages=BEFORE_MAPS)
    run_stage(feature_maps, stage_config, composed, project, *overrides)
    run_dataset_pass(stage_config, composed, project, *overrides)
    out = project / "outputs"
    return np.load(out / "feature_maps" / "conv2d" / "trained.npy"), (
        paths.dataset_table(project, "trained", "conv2d")
    ).read_text(encoding="utf-8")


def as_numbers(csv_text):
    return np.genfromtxt(csv_text.splitlines()[1:], delimiter=",")


def test_a_model_starting_with_rescaling_gets_raw_pixels_not_pixels_divided_twice(
    project, stage_config, composed, run_pipeline, tmp_path, caplog
):
    from convlens.model.keras_models import keras

    plain = small_cnn()
    plain.save(tmp_path / "plain.keras")
    rescaled = small_cnn(keras.layers.Rescaling(1 / 255, name="rescaling"), plain.get_layer("conv2d").get_weights())
    rescaled.save(tmp_path / "rescaled.keras")

    caplog.set_level("INFO")
    plain_maps, plain_table = run_maps(project, stage_config, composed, run_pipeline, tmp_path / "plain.keras")
    assert "feeding raw" not in caplog.text
    caplog.clear()
    maps, table = run_maps(project, stage_config, composed, run_pipeline, tmp_path / "rescaled.keras")
    assert caplog.text.count(RESCALING) == 3  # feature_maps, dataset@trained and dataset@untrained, once each
    np.testing.assert_allclose(maps, plain_maps, rtol=1e-5, atol=1e-6)  # raw → Rescaling(1/255) ≡ /255 → plain
    assert table.splitlines()[0] == plain_table.splitlines()[0]
    np.testing.assert_allclose(as_numbers(table), as_numbers(plain_table), rtol=1e-5, atol=1e-6)  # the whole split
    twice = load_network(Archive.read(tmp_path / "rescaled.keras"), upto="conv2d").activations(
        np.load(project / "outputs" / "samples" / "images.npy") / np.float32(255), ["conv2d"]
    )[0]
    assert not np.allclose(twice, plain_maps, atol=1e-3)  # what the stage computed before: pixels / 255 / 255


def test_a_model_starting_with_an_adapted_normalization_gets_raw_pixels_in_both_models(
    project, stage_config, composed, run_pipeline, tmp_path, caplog
):
    from convlens.model.keras_models import keras, load_model
    from tests.support.keras_reference import activation_model

    norm = keras.layers.Normalization(name="normalization")
    norm.adapt(np.random.default_rng(0).integers(0, 256, (64, 28, 28, 1)).astype(np.float32))
    small_cnn(norm).save(tmp_path / "norm.keras")
    caplog.set_level("INFO")
    maps, _ = run_maps(project, stage_config, composed, run_pipeline, tmp_path / "norm.keras")
    assert "the model starts with Normalization (mean 127." in caplog.text
    assert "feeding raw 0–255 pixels, input.scale ignored" in caplog.text
    images = np.load(project / "outputs" / "samples" / "images.npy")[..., None].astype(np.float32)
    want = activation_model(load_model(tmp_path / "norm.keras"), ["conv2d"])(images, training=False)
    np.testing.assert_allclose(maps, np.asarray(want), rtol=1e-4, atol=1e-5)
    untrained = load_model(project / "outputs" / "models" / "untrained.keras").get_layer("normalization")
    for theirs, mine in zip(untrained.get_weights(), norm.get_weights(), strict=True):
        np.testing.assert_array_equal(theirs, mine)  # the data statistics are kept (a clone resets them)


def raw_pixel_model():
    """A first conv layer built for raw 0–255 pixels: 6 of 8 biases so negative that pixels / 255
    (at most 9 × 0.1 × 1 = 0.9 per 3×3 window) never exceed them, while raw pixels do."""
    rng = np.random.default_rng(6)
    kernel = rng.uniform(0.01, 0.1, (3, 3, 1, 8)).astype(np.float32)
    bias = np.r_[np.full(6, -2.0), np.zeros(2)].astype(np.float32)
    return small_cnn(conv_weights=[kernel, bias])


def test_a_model_built_for_raw_pixels_run_at_255_is_warned_about_naming_the_key(
    project, stage_config, composed, run_pipeline, tmp_path, caplog
):
    raw_pixel_model().save(tmp_path / "raw.keras")
    caplog.set_level("INFO")
    run_maps(project, stage_config, composed, run_pipeline, tmp_path / "raw.keras")
    hint = "is the input scale right? the model may expect raw pixels: input.scale=1"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        f"warning: 6 of 8 channels of conv2d never fire on train images [0]; {hint}",
        f"warning: 6 of 8 channels of conv2d never fire on the 6 test images; {hint}",
    ]
    summary = json.loads((project / "outputs" / "feature_maps" / "conv2d" / "summary.json").read_text(encoding="utf-8"))
    assert summary["trained"]["dead_channels"] == 6

    caplog.clear()
    run_maps(project, stage_config, composed, run_pipeline, tmp_path / "raw.keras", "input.scale=1")
    assert not [r for r in caplog.records if r.levelname == "WARNING"]  # the fix the warning names works
    summary = json.loads((project / "outputs" / "feature_maps" / "conv2d" / "summary.json").read_text(encoding="utf-8"))
    assert summary["trained"]["dead_channels"] == 0


def test_a_healthy_model_is_not_warned_about(project, stage_config, composed, run_pipeline, tiny_assets, caplog):
    caplog.set_level("INFO")
    run_maps(project, stage_config, composed, run_pipeline, tiny_assets["model"])
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    assert "feeding raw" not in caplog.text


@pytest.mark.mirror
@pytest.mark.skipif(not MIRROR.is_dir(), reason="needs ../shared/mirror")
def test_the_book_model_on_the_books_data_is_not_warned_about(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("CONVLENS_MIRROR", str(MIRROR))
    root = copy_project(tmp_path / "project")
    caplog.set_level("INFO")
    write_params(root, compose(root, ["feature_maps.layers=[conv2d]", "dataset.layers=[conv2d]"]))
    for module in (*BEFORE_MAPS, feature_maps, dataset):
        name = module.__name__.rsplit(".", 1)[1]
        cfg = load_config(name, [], root)
        module.run(cfg, root, *({feature_maps: ["conv2d"], dataset: ["trained"]}.get(module, [])))
    assert "trained conv2d: feature maps (1, 28, 28, 32)" in caplog.text
    assert "trained: 10000 test images through conv2d" in caplog.text
    assert "trained: accuracy 0.9125 on 10000 test images" in caplog.text  # the book's number, unchanged
    record = json.loads(paths.dataset_summary(root, "trained").read_text(encoding="utf-8"))["input_range"]
    assert (record["divisor"], record["silent_channels"], record["channels"], record["warning"]) == (255, 0, 32, None)
    assert not [r for r in caplog.records if r.levelname == "WARNING"] and "feeding raw" not in caplog.text
    summary = json.loads((root / "outputs" / "feature_maps" / "conv2d" / "summary.json").read_text(encoding="utf-8"))
    assert summary["trained"]["dead_channels"] == 0


def test_the_feature_maps_stage_divides_pixels_by_input_scale(project, stage_config, composed, run_pipeline, tmp_path):
    """Zero biases and ReLU: conv2d(pixels / 1) = 255 · conv2d(pixels / 255) exactly, up to float32 rounding."""
    rng = np.random.default_rng(10)
    kernel = rng.normal(0, 0.3, (3, 3, 1, 8)).astype(np.float32)
    small_cnn(conv_weights=[kernel, np.zeros(8, np.float32)]).save(tmp_path / "m.keras")
    overrides = (f"model.path={tmp_path / 'm.keras'}", "feature_maps.layers=[conv2d]", "samples.indices=[0,3]")
    run_pipeline(project, *overrides, stages=BEFORE_MAPS)
    maps = {}
    for scale in (255, 1, 5):
        run_stage(feature_maps, stage_config, composed, project, *overrides, f"input.scale={scale}")
        maps[scale] = np.load(project / "outputs" / "feature_maps" / "conv2d" / "trained.npy")
    from convlens.model.keras_models import load_model
    from tests.support.keras_reference import activation_model

    images = np.load(project / "outputs" / "samples" / "images.npy")[..., None].astype(np.float32)
    want = activation_model(load_model(tmp_path / "m.keras"), ["conv2d"])(images / 5, training=False)
    np.testing.assert_allclose(maps[5], np.asarray(want), rtol=1e-5, atol=1e-5)  # the stage fed pixels / input.scale
    assert maps[255].max() > 0.1
    np.testing.assert_allclose(maps[1], 255 * maps[255], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(maps[1], 5 * maps[5], rtol=1e-5, atol=1e-4)


# --- a preprocessing model inside the model (issue 28 §3) ----------------------------------------------------


def test_a_nested_normalization_is_described_from_its_weights_read_by_its_nested_address():
    norm = entry("Normalization", "norm", mean=None)
    nested = {"class_name": "Sequential", "config": {"name": "preprocessing", "layers": [norm]}}
    archive = ConfigOnly(model_config(entry("InputLayer", "in"), nested, entry("Conv2D", "conv2d")))
    scale = read_input_scale(archive, 255.0)
    assert archive.read == [["preprocessing/norm"]]
    assert (scale.divisor, scale.preprocessing) == (1, "Normalization (mean 72.94, variance 8100) in preprocessing")
    twice = model_config(entry("Rescaling", "a", scale=1 / 255), entry("Rescaling", "b", scale=2, offset=-1))
    both = read_input_scale(ConfigOnly(twice), 255.0)  # several in a row: each applies, the model scales itself
    assert both.divisor == 1 and both.note() == (
        "the model starts with Rescaling (scale 0.00392157, offset 0), then Rescaling (scale 2, offset -1): "
        "feeding raw 0–255 pixels, input.scale ignored"
    )


def test_a_rescaling_in_a_nested_preprocessing_model_gets_raw_pixels_as_keras_does(
    project, stage_config, composed, run_pipeline, tmp_path, caplog
):
    """``Sequential([Sequential([Rescaling(1/255)], name="preprocessing"), Conv2D, …])``: feature maps and the
    predictions the dataset pass counts are Keras's on raw pixels, not on pixels divided by 255 twice."""
    from convlens.model.keras_models import keras, load_model
    from tests.support.keras_reference import activation_model

    preprocessing = keras.Sequential([keras.layers.Rescaling(1 / 255, name="rescaling")], name="preprocessing")
    rng = np.random.default_rng(3)
    model = small_cnn(preprocessing, [rng.normal(0, 0.5, (3, 3, 1, 8)), np.zeros(8)])
    dense = [rng.normal(0, 0.1, (14 * 14 * 8, 10)), rng.normal(0, 1, 10)]  # the bias wins only on tiny inputs
    model.get_layer("dense").set_weights(dense)
    model.save(tmp_path / "nested.keras")
    caplog.set_level("INFO")
    maps, _ = run_maps(project, stage_config, composed, run_pipeline, tmp_path / "nested.keras")
    overrides = (f"model.path={tmp_path / 'nested.keras'}", "dataset.split=train")
    run_dataset_pass(stage_config, composed, project, *overrides)
    note = "the model starts with Rescaling (scale 0.00392157, offset 0) in preprocessing: feeding raw 0–255 pixels"
    assert caplog.text.count(note) == 5  # feature_maps, the dataset pass of each model, twice (test, then train)
    model = load_model(tmp_path / "nested.keras")
    images = np.load(project / "outputs" / "samples" / "images.npy")[..., None].astype(np.float32)
    want = activation_model(model, ["conv2d"])(images, training=False)
    np.testing.assert_allclose(maps, np.asarray(want), rtol=1e-5, atol=1e-5)
    train = np.load(project / "outputs" / "data" / "train_images.npy")[..., None].astype(np.float32)
    predicted = np.asarray(model(train, training=False)).argmax(1)
    classes = list(composed().data.classes)
    rows = (paths.confusion_dir(project, "trained") / "trained.csv").read_text(encoding="utf-8").splitlines()
    assert [row.split(",")[1] for row in rows[1:]] == [classes[int(i)] for i in predicted]
    twice = np.asarray(model(train / 255, training=False)).argmax(1)
    assert (twice != predicted).any()  # what evaluate counted before: pixels / 255 / 255
    record = json.loads(input_range_path(project).read_text(encoding="utf-8"))
    assert (record["divisor"], record["warning"]) == (1, None)


def test_an_adapted_normalization_in_a_nested_functional_model_is_read_from_its_nested_weights(tmp_path):
    from convlens.model.forward import open_network
    from convlens.model.keras_models import keras, load_model
    from tests.support.keras_reference import activation_model

    pixels = np.random.default_rng(4).integers(0, 256, (16, 28, 28, 1)).astype(np.float32)
    norm = keras.layers.Normalization(name="normalization")
    norm.adapt(pixels)
    inputs = keras.Input((28, 28, 1))
    small_cnn(keras.Model(inputs, norm(inputs), name="preprocessing")).save(tmp_path / "norm.keras")
    archive = Archive.read(tmp_path / "norm.keras")
    scale = read_input_scale(archive, 255.0)
    mean, variance = (float(np.asarray(v).item()) for v in (norm.mean, norm.variance))
    assert scale.divisor == 1
    assert scale.preprocessing == f"Normalization (mean {mean:.6g}, variance {variance:.6g}) in preprocessing"
    got = open_network(archive, ["conv2d"], print).activations(model_inputs(pixels[:3], scale.divisor), ["conv2d"])
    want = activation_model(load_model(tmp_path / "norm.keras"), ["conv2d"])(pixels[:3], training=False)
    np.testing.assert_allclose(got[0], np.asarray(want), rtol=1e-5, atol=1e-5)


# --- the input range in evaluate's log and in the report (issue 28 §5) -----------------------------------------


def run_evaluate(project, stage_config, composed, run_pipeline, model_path, *extra):
    """The stages the dataset pass needs, then the pass on the tiny test split; its input-range record."""
    overrides = (f"model.path={model_path}", "feature_maps.layers=[conv2d]", *extra)
    run_pipeline(project, *overrides, stages=BEFORE_MAPS)
    run_dataset_pass(stage_config, composed, project, *overrides)
    run_stage(render_dataset, stage_config, composed, project, *overrides)  # the confusion matrices
    return json.loads(input_range_path(project).read_text(encoding="utf-8"))


def evaluate_section(project, language="en"):
    """The report's accuracy section, as HTML."""
    html = report_page(project, read_yaml(project / "params.yaml"), language)
    return Page(html).section_notes(html, "evaluate")


def test_evaluate_warns_about_a_model_built_for_raw_pixels_and_the_report_says_so(
    project, stage_config, composed, run_pipeline, tmp_path, caplog
):
    raw_pixel_model().save(tmp_path / "raw.keras")
    caplog.set_level("INFO")
    record = run_evaluate(project, stage_config, composed, run_pipeline, tmp_path / "raw.keras")
    warning = (
        "warning: 6 of 8 channels of conv2d never fire on the 6 test images; is the input scale right? "
        "the model may expect raw pixels: input.scale=1"
    )
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [warning]
    assert record == {
        "divisor": 255.0, "preprocessing": None, "layer": "conv2d", "silent_channels": 6, "channels": 8,
        "split": "test", "images": 6, "suggestion": "raw", "warning": warning,
    }  # fmt: skip
    section = evaluate_section(project)
    assert "Inputs fed to both models: pixels / 255 (0–1; input.scale=255)." in section
    assert (
        '<p class="note">Warning: 6 of 8 channels of conv2d never fire on the 6 test images: is the input scale '
        "right? This accuracy may come from inputs scaled otherwise than the model was trained on. The model may "
        "expect raw 0–255 pixels: run it with input.scale=1.</p>"
    ) in section
    assert section.index("Inputs fed") < section.index("<table")  # above the accuracy it qualifies
    korean = evaluate_section(project, "ko")
    assert "경고: conv2d의 채널 8개 중 6개가 테스트 세트의 이미지 6개에서 한 번도 활성화되지 않았습니다." in korean
    assert "input.scale=1로 실행해 보세요." in korean

    caplog.clear()
    record = run_evaluate(project, stage_config, composed, run_pipeline, tmp_path / "raw.keras", "input.scale=1")
    assert not [r for r in caplog.records if r.levelname == "WARNING"]  # the fix the warning names works
    assert (record["divisor"], record["silent_channels"], record["warning"]) == (1.0, 0, None)
    section = evaluate_section(project)
    assert "pixels / 1 (0–255; input.scale=1)." in section and "Warning" not in section


def test_the_report_blames_a_diverged_training_not_the_scale_for_a_model_trained_here(
    project, stage_config, composed, run_pipeline, tmp_path
):
    raw_pixel_model().save(tmp_path / "raw.keras")
    run_evaluate(project, stage_config, composed, run_pipeline, tmp_path / "raw.keras")
    params = read_yaml(project / "params.yaml")
    params["model"]["train_runs"] = ["trained"]  # -S model=train: trained by the pipeline at this input.scale
    page = report_page(project, params, "en")
    section = Page(page).section_notes(page, "evaluate")
    assert (
        '<p class="note">Warning: 6 of 8 channels of conv2d never fire on the 6 test images. The pipeline trained '
        "this model on inputs scaled as these are, so the input scale is not the cause: its training may have "
        "diverged (see its learning curves; try a lower train.learning_rate).</p>"
    ) in section
    assert "input.scale=1" not in section and "scaled otherwise" not in section
    korean_page = report_page(project, params, "ko")
    korean = Page(korean_page).section_notes(korean_page, "evaluate")
    assert "훈련이 발산했을 수 있습니다" in korean and "input.scale=1로" not in korean


def test_the_dataset_pass_of_a_model_trained_here_blames_its_training_in_the_log(
    project, stage_config, composed, run_pipeline, tmp_path, caplog
):
    raw_pixel_model().save(tmp_path / "raw.keras")
    run_evaluate(project, stage_config, composed, run_pipeline, tmp_path / "raw.keras")
    caplog.clear()
    caplog.set_level("INFO")
    run_stage(dataset, stage_config, composed, project, "model=train")  # model.train_runs: [trained]
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "warning: 6 of 8 channels of conv2d never fire on the 6 test images: the training of this run may have "
        "diverged (see its learning curves; a lower train.learning_rate)"
    ]
    record = json.loads(paths.dataset_summary(project, "trained").read_text(encoding="utf-8"))["input_range"]
    assert record["suggestion"] == "diverged" and "input.scale=1" not in record["warning"]


def test_a_healthy_model_is_not_warned_about_in_evaluate_and_the_report_names_its_own_scaling(
    project, stage_config, composed, run_pipeline, tiny_assets, tmp_path, caplog
):
    from convlens.model.keras_models import keras

    caplog.set_level("INFO")
    record = run_evaluate(project, stage_config, composed, run_pipeline, tiny_assets["model"])
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    assert record["warning"] is None and 2 * record["silent_channels"] <= record["channels"] == 4
    section = evaluate_section(project)
    assert "Inputs fed to both models: pixels / 255 (0–1; input.scale=255)." in section
    assert 'class="note"' not in section
    input_range_path(project).unlink()  # outputs of an evaluate from before the record: a note, not a crash
    assert "not run yet: outputs/metrics/input_range.json is missing" in evaluate_section(project)

    small_cnn(keras.layers.Rescaling(1 / 255, name="rescaling")).save(tmp_path / "rescaled.keras")
    run_evaluate(project, stage_config, composed, run_pipeline, tmp_path / "rescaled.keras")
    section = evaluate_section(project)
    assert (
        "Inputs fed to both models: raw 0–255 pixels; the model&#39;s own Rescaling (scale 0.00392157, offset 0) "
        "scales them (input.scale ignored)."
    ) in section
