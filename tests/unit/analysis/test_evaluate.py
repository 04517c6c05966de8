"""evaluate: the confusion matrix and accuracies against brute-force counts; the dataset pass's predictions on tiny
data and, where ../shared/mirror exists, on the book's model (the accuracy Keras's model.evaluate gives)."""

from __future__ import annotations

import csv
import sys
import warnings

import numpy as np
import pytest

from convlens.analysis.dataset import stream_pass
from convlens.analysis.evaluate import (
    accuracy,
    check_labels,
    class_accuracy,
    confusion_from_rows,
    confusion_matrix,
    evaluation_summary,
    head_problem,
    predicted_classes,
    prediction_rows,
)
from convlens.analysis.stats import as_number
from convlens.errors import ConvlensError
from convlens.pipeline import paths
from convlens.pipeline.artifacts import merged_metrics, write_merged
from convlens.pipeline.files import read_json
from stages import dataset, render_dataset
from tests.support.helpers import MIRROR, PIPELINE, Terminal, copy_project


@pytest.mark.parametrize("seed", range(5))
def test_confusion_matrix_and_accuracies_equal_a_brute_force_count(seed):
    rng = np.random.default_rng(seed)
    classes = int(rng.integers(1, 8))
    n = int(rng.integers(0, 60))
    labels, predictions = rng.integers(0, classes, n), rng.integers(0, classes, n)
    confusion = confusion_matrix(labels, predictions, classes)
    want = np.zeros((classes, classes), np.int64)
    for actual, predicted in zip(labels, predictions, strict=True):
        want[actual, predicted] += 1
    np.testing.assert_array_equal(confusion, want)
    right = sum(int(a == p) for a, p in zip(labels, predictions, strict=True))
    assert accuracy(confusion) == right / n if n else np.isnan(accuracy(confusion))
    for c, value in enumerate(class_accuracy(confusion)):
        of_class = [p for a, p in zip(labels, predictions, strict=True) if a == c]
        assert value == sum(p == c for p in of_class) / len(of_class) if of_class else np.isnan(value)


def test_labels_or_predictions_outside_the_classes_are_refused():
    with pytest.raises(ConvlensError, match="labels must lie in 0..2"):
        confusion_matrix(np.array([3]), np.array([0]), 3)
    with pytest.raises(ConvlensError, match="predictions must lie in 0..2"):
        confusion_matrix(np.array([0]), np.array([-1]), 3)
    with pytest.raises(ConvlensError, match="2 labels but 1 predictions"):
        confusion_matrix(np.array([0, 1]), np.array([0]), 3)


def test_labels_stored_as_uint8_count_without_overflow_however_many_classes():
    labels, predictions = np.array([255, 3, 255], np.uint8), np.array([299, 3, 299], np.uint16)
    confusion = confusion_matrix(labels, predictions, 300)
    assert confusion[255, 299] == 2 and confusion[3, 3] == 1 and confusion.sum() == 3


def test_no_image_is_nan_without_a_warning_and_null_in_the_summary():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning (0 / 0) in the stage's log
        assert np.isnan(accuracy(np.zeros((3, 3), np.int64)))
        confusion = confusion_matrix(np.array([0, 0, 2]), np.array([0, 1, 2]), 3)  # class 1: no image
        np.testing.assert_array_equal(class_accuracy(confusion), [0.5, np.nan, 1.0])
        summary = evaluation_summary(confusion, ["shirt", "bag", "boot"])
    assert summary == {"accuracy": as_number(2 / 3), "class_accuracy": {"shirt": 0.5, "bag": None, "boot": 1.0}}
    with pytest.raises(ValueError, match="is longer than"):  # a name for each class, never silently fewer
        evaluation_summary(confusion, ["shirt", "bag"])


def test_the_prediction_is_the_highest_output_and_the_output_must_have_one_unit_per_class():
    outputs = np.array([[0.1, 0.7, 0.2], [0.5, 0.5, 0.0]], np.float32)
    assert predicted_classes(outputs, 3, "dense").tolist() == [1, 0]  # a tie: the lower class, as argmax
    with pytest.raises(ConvlensError, match=r"last layer 'dense' outputs shape \(3,\), not one score per class"):
        predicted_classes(outputs, 10, "dense")


class Outputs:
    """A network whose one layer outputs the first 3 pixels of each image: the class is the brightest of them."""

    names = ("out",)

    def activations(self, x, names):
        return [x.reshape(len(x), -1)[:, :3]]


def test_predictions_stream_in_batches_under_a_progress_bar_named_by_the_label(monkeypatch):
    images = np.array([[[9, 1], [2, 0]], [[0, 7], [1, 0]], [[3, 4], [8, 0]], [[5, 5], [0, 0]], [[0, 0], [6, 0]]])
    monkeypatch.setattr(sys, "stderr", Terminal())
    labels = np.zeros(len(images), np.int64)
    tables, got = stream_pass(Outputs(), images.astype(np.uint8), labels, [], 3, 255.0, 2, "test split", head="out")
    assert tables == {}  # no layer's statistics asked for
    assert got.dtype == np.uint16 and got.tolist() == [0, 1, 2, 0, 2]
    assert sys.stderr.getvalue().startswith("\rtest split:   0%|")
    with pytest.raises(ConvlensError, match="the model's last layer 'out' outputs shape \\(3,\\), not one score"):
        stream_pass(Outputs(), images, labels, [], 10, 255.0, 2, "test split", head="out")


class TwoLayers:
    """A network whose first layer is the image (one channel) and whose last is ``Outputs``'."""

    names = ("conv", "out")

    def activations(self, x, names):
        layers = {"conv": x[..., None], "out": x.reshape(len(x), -1)[:, :3]}
        return [layers[name] for name in names]


def test_a_watched_layers_channel_peaks_come_from_the_same_pass_over_every_batch():
    """The first conv layer's peaks (the input-range check) and the predictions from one pass (``stream_pass``)."""
    images = np.array([[[9, 1], [2, 0]], [[0, 7], [1, 0]], [[3, 4], [8, 0]], [[5, 5], [0, 0]], [[0, 0], [6, 0]]])
    labels = np.zeros(len(images), np.int64)
    tables, got = stream_pass(TwoLayers(), images, labels, ["conv"], 3, 1.0, 2, "test split", head="out")
    assert got.tolist() == [0, 1, 2, 0, 2]
    assert tables["conv"]["max"].tolist() == [9.0]  # the brightest pixel of all
    tables, _ = stream_pass(TwoLayers(), images[::-1], labels, ["conv"], 3, 3.0, 2, "test split", head="out")
    assert tables["conv"]["max"].tolist() == [3.0]  # 9 in the last batch, divided by the scale
    tables, got = stream_pass(TwoLayers(), images[:0], labels[:0], ["conv"], 3, 1.0, 2, "test split", head="out")
    assert tables == {} and got.tolist() == []  # no image: no peak, no prediction


def read_rows(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_the_stage_gives_kerass_predictions_both_models_and_dvc_plots_rows(project, run_pipeline):
    from convlens.model.keras_models import load_model

    run_pipeline(project, stages=[*PIPELINE[:5], dataset, render_dataset])
    classes = {role: read_json(paths.dataset_summary(project, role))["evaluate"] for role in paths.ROLES}
    images = np.load(project / "outputs" / "data" / "test_images.npy")
    labels = np.load(project / "outputs" / "data" / "test_labels.npy")
    names = yaml_classes(project)
    for role in ("trained", "untrained"):
        model = load_model(project / "outputs" / "models" / f"{role}.keras")
        want = np.asarray(model(images[..., None].astype(np.float32) / np.float32(255), training=False)).argmax(1)
        rows = read_rows(paths.confusion_dir(project, role) / paths.confusion_name(role))
        assert [r["actual"] for r in rows] == [names[i] for i in labels]
        assert [r["predicted"] for r in rows] == [names[i] for i in want]
        assert classes[role]["accuracy"] == as_number((want == labels).mean())
        per_class = classes[role]["class_accuracy"]
        assert list(per_class) == names
        for c, name in enumerate(names):
            shown = labels == c
            right = as_number((want[shown] == c).mean()) if shown.any() else None
            assert per_class[name] == right  # null for a class with no image
        table = paths.confusion_dir(project, role) / paths.confusion_name(role)  # what render_dataset counts
        np.testing.assert_array_equal(confusion_from_rows(table, names), confusion_matrix(labels, want, len(names)))
        assert paths.confusion_figure(project, role).stat().st_size > 5000


def yaml_classes(root) -> list[str]:
    import yaml

    return yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))["data"]["classes"]


@pytest.mark.mirror
@pytest.mark.skipif(not MIRROR.is_dir(), reason="needs ../shared/mirror")
def test_the_book_models_accuracy_is_what_keras_model_evaluate_gives(tmp_path, monkeypatch):
    """The book's chapter 8-2 prints model.evaluate(test_scaled, test_target) → accuracy 0.9125 (Colab)."""
    from convlens.model.keras_models import load_model
    from convlens.pipeline.config import load_config
    from stages import build_untrained, fetch_data, fetch_model

    monkeypatch.setenv("CONVLENS_MIRROR", str(MIRROR))
    root = copy_project(tmp_path / "project")
    for module in (fetch_data, fetch_model, build_untrained):
        name = module.__name__.rsplit(".", 1)[1]
        module.run(load_config(name, [], root), root)
    for role in paths.ROLES:
        dataset.run(load_config("dataset", [], root), root, role)
    metrics = {role: read_json(paths.dataset_summary(root, role))["evaluate"] for role in paths.ROLES}
    images = np.load(root / "outputs" / "data" / "test_images.npy")
    labels = np.load(root / "outputs" / "data" / "test_labels.npy")
    model = load_model(MIRROR / "best-cnn-model.keras")
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    test_scaled = images.reshape(-1, 28, 28, 1) / 255.0  # the book's, float64, which Keras casts to float32
    _, keras_accuracy = model.evaluate(test_scaled, labels, verbose=0)
    assert metrics["trained"]["accuracy"] == as_number(keras_accuracy)
    assert metrics["trained"]["accuracy"] == 0.9125  # what the book prints (hg-mldl 8-2.ipynb: 0.9125000238418579)
    assert 0.02 < metrics["untrained"]["accuracy"] < 0.2  # near chance (0.1)
    print(f"trained {metrics['trained']['accuracy']}, Keras {keras_accuracy}, untrained {metrics['untrained']}")


def test_a_model_that_is_not_a_classifier_of_the_classes_is_skipped_with_one_line_and_the_report_says_why(
    project, run_pipeline, tmp_path, caplog
):
    """An analysis that does not apply stops nothing: the dataset pass logs why evaluation is skipped, writes the
    reason in its summary (``metrics`` makes it evaluate.json) and empty folders (so DVC records the stage and the
    experiment goes on), keeps the statistics, and the report shows the reason."""
    import logging

    from convlens.model.keras_models import keras
    from convlens.pipeline.config import compose, write_params
    from convlens.report.build import Report
    from convlens.report.pages import Strings

    layers = keras.layers
    model = keras.Sequential(
        [keras.Input((28, 28, 1)), layers.Conv2D(2, 3, name="conv2d"), layers.Flatten(), layers.Dense(11, name="head")]
    )
    model.save(tmp_path / "eleven.keras")
    overrides = ["model=local", f"model.path={tmp_path / 'eleven.keras'}"]
    write_params(project, compose(project, overrides))
    caplog.set_level(logging.INFO)
    run_pipeline(project, *overrides, stages=[*PIPELINE[:5], dataset])
    reason = (
        "the model's last layer 'head' outputs 11 values per image, not one score for each of the data's 10 "
        "classes; use a classifier trained on this data"
    )
    skips = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert skips == [f"evaluate skipped: {reason}"] * 2  # once per model
    parts = {role: read_json(paths.dataset_summary(project, role)) for role in paths.ROLES}
    assert all(part["evaluate"] == {"skipped": reason} and part["dataset"] for part in parts.values())
    for role in paths.ROLES:  # no empty folder for DVC to warn of (outside tester #15): a header and no row
        (table,) = paths.confusion_dir(project, role).iterdir()
        assert (table.name, table.read_text(encoding="utf-8")) == ("skipped.csv", "actual,predicted\n")
    merged = merged_metrics(parts)
    assert merged["evaluate"] == {"skipped": reason} and merged["input_range"]["images"] == 6
    write_merged(project, merged)
    page = Report(project, {}, Strings("en")).evaluate()
    assert any(getattr(b, "text", "") == f"skipped for this model (stage evaluate): {reason}" for b in page.blocks)


def test_head_problem_wants_one_score_per_class():
    assert head_problem((10,), 10, "dense") is None
    assert "outputs 11 values per image" in head_problem((11,), 10, "dense")
    assert "outputs 7×7×2 values per image" in head_problem((7, 7, 2), 10, "conv")


def test_labels_beyond_the_classes_named_are_refused_and_no_label_is_fine():
    check_labels(np.array([0, 2, 1], np.int64), 3, "test")
    check_labels(np.zeros(0, np.int64), 3, "test")  # an empty split: nothing to check
    with pytest.raises(ConvlensError, match="^the train labels go up to 3; data.classes names only 3$"):
        check_labels(np.array([3, 0], np.int64), 3, "train")


def test_prediction_rows_name_each_images_actual_and_predicted_class():
    rows = prediction_rows(np.array([0, 2, 1]), np.array([0, 1, 1], np.uint16), ["T-shirt/top", "Trouser", "Bag"])
    assert rows == [
        {"actual": "T-shirt/top", "predicted": "T-shirt/top"},
        {"actual": "Bag", "predicted": "Trouser"},
        {"actual": "Trouser", "predicted": "Trouser"},
    ]
    assert prediction_rows(np.zeros(0, np.int64), np.zeros(0, np.uint16), ["a"]) == []
    with pytest.raises(ValueError):
        prediction_rows(np.array([0, 1]), np.array([0]), ["a", "b"])  # one prediction per label
