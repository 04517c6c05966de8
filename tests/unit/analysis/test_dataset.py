"""Dataset-wide statistics: streamed batch by batch, equal to computing them on all activations at once."""

import csv
import json
import math

import numpy as np
import pytest

from convlens.analysis.dataset import (
    channel_rows,
    dataset_metrics,
    dataset_summary,
    mean_selectivity,
    selectivity,
    stream_pass,
)
from convlens.analysis.stats import ChannelAccumulator
from convlens.data.samples import streamed_count
from convlens.errors import ConvlensError
from convlens.model.archive import Archive
from convlens.model.forward import load_network
from stages import dataset
from tests.support.helpers import PIPELINE


def all_at_once(maps: np.ndarray, labels: np.ndarray, classes: int) -> dict[str, np.ndarray]:
    flat = maps.reshape(len(maps), -1, maps.shape[-1]).astype(np.float64)
    class_means = np.full((classes, maps.shape[-1]), np.nan)
    for k in range(classes):
        if (labels == k).any():
            class_means[k] = flat[labels == k].mean(axis=(0, 1))
    return {
        "mean": flat.mean(axis=(0, 1)),
        "fraction_active": (flat > 0).mean(axis=(0, 1)),
        "max": flat.max(axis=(0, 1)),
        "top_image_mean": flat.mean(axis=1).max(axis=0),
        "class_means": class_means,
    }


@pytest.mark.parametrize("batch", [1, 3, 7, 50])
def test_streamed_statistics_equal_the_all_at_once_ones(batch):
    rng = np.random.default_rng(batch)
    maps = np.maximum(rng.normal(size=(23, 5, 4, 6)), 0).astype(np.float32)
    maps[..., 2] = 0  # a dead channel
    labels = rng.integers(0, 4, 23)
    labels[labels == 3] = 0  # class 3 never appears
    acc = ChannelAccumulator(6, 4)
    for start in range(0, 23, batch):
        acc.update(maps[start : start + batch], labels[start : start + batch])
    got, want = acc.table(), all_at_once(maps, labels, 4)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-6, err_msg=key)
    assert np.isnan(got["class_means"][3]).all()
    summary = dataset_summary(got)
    assert summary == {
        "data_mean": pytest.approx(float(maps.mean())),
        "data_fraction_active": pytest.approx(float((maps > 0).mean())),
        "data_dead_channels": 1,
        "data_selectivity": pytest.approx(float(selectivity(got["class_means"]).mean())),
    }
    assert 0 <= summary["data_selectivity"] <= 1


def test_selectivity_is_zero_for_silent_or_even_channels_and_high_for_one_class():
    class_means = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.9], [0.0, 1.0, 0.0]])  # classes × channels
    sel = selectivity(class_means)
    assert sel[0] == 0 and sel[1] == 0 and sel[2] == pytest.approx((0.9 - 0.3) / 0.9)


def test_selectivity_is_not_defined_for_a_channel_with_a_negative_class_mean():
    """A layer without ReLU (a linear conv, DepthwiseConv2D, after LayerNormalization): the outside tester's channel
    of class means −0.130, 0.008, −0.007, −0.047 gave 6.47, far outside 0 … 1 − 1/classes; every class mean
    negative gave 0, as if every class drove it alike."""
    class_means = np.array([[-0.130, -0.2, 0.5], [0.008, -0.1, 0.5], [-0.007, -0.3, 1.0], [-0.047, -0.4, 0.0]])
    sel = selectivity(class_means)
    assert np.isnan(sel[0]) and np.isnan(sel[1]) and sel[2] == pytest.approx((1.0 - 0.5) / 1.0)
    assert mean_selectivity(class_means) == sel[2]  # the layer's: over the channels where it is defined
    assert mean_selectivity(class_means[:, :2]) is None  # defined nowhere: null in the metrics, not NaN
    table = {k: np.zeros(3) for k in ("mean", "fraction_active", "max", "top_image_mean")}
    rows = channel_rows({**table, "class_means": class_means}, list("abcd"))
    assert math.isnan(rows[0]["selectivity"]) and rows[2]["selectivity"] == 0.5  # an empty cell in the CSV


def test_accumulator_refuses_what_does_not_fit():
    acc = ChannelAccumulator(3, 2)
    with pytest.raises(ConvlensError, match="labels must lie in 0..1"):
        acc.update(np.zeros((2, 3), np.float32), np.array([0, 2]))
    with pytest.raises(ConvlensError, match="no images were streamed"):
        acc.table()


def test_streaming_the_tiny_model_equals_the_activations_of_all_images(tiny_assets):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (17, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 17)
    net = load_network(Archive.read(tiny_assets["model"]))
    names = ["conv2d", "max_pooling2d_1"]
    tables, predictions = stream_pass(net, images, labels, names, 10, 255.0, 4, "test")
    assert predictions is None  # no head asked for
    for name, maps in zip(names, net.activations(images.astype(np.float32) / 255.0, names), strict=True):
        want = all_at_once(maps, labels, 10)
        for key in want:
            np.testing.assert_allclose(tables[name][key], want[key], rtol=1e-5, atol=1e-7, err_msg=f"{name} {key}")


def test_stage_writes_tables_metrics_and_heatmaps(project, run_pipeline):
    run_pipeline(project, "dataset.limit=5")
    out = project / "outputs" / "metrics"
    index = json.loads((out / "dataset" / "trained" / "index.json").read_text(encoding="utf-8"))
    assert index["split"] == "test" and index["images"] == 5
    assert index["layers"] == ["conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1"]
    rows = list(csv.DictReader((out / "dataset" / "untrained" / "untrained_conv2d_1.csv").open(encoding="utf-8")))
    columns = ["channel", "mean", "fraction_active", "max", "top_image_mean", "selectivity"]
    assert len(rows) == 8 and list(rows[0])[:6] == columns
    assert list(rows[0])[6:] == index["classes"] and len(index["classes"]) == 10
    summary = json.loads((out / "dataset.json").read_text(encoding="utf-8"))
    assert set(summary) == {"trained", "untrained"} and set(summary["trained"]) == set(index["layers"])
    for role in ("trained", "untrained"):  # one figure per model (render_dataset@<model>)
        assert (project / "outputs" / "figures" / "dataset" / role / "max_pooling2d_classes.png").is_file()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("dataset.limit=0", "dataset.limit must be an integer in 1..2147483647, got 0"),
        ("dataset.split=valid", "dataset.split must be one of train, test, got 'valid'"),
        ("dataset.layers=[nope]", "unknown layer 'nope'"),
        (
            "dataset.limit=7",
            "dataset.limit=7 is beyond the test split's 6 images; use null for every image or a number up to 6",
        ),
        ("dataset.layers=[conv2d,0]", "dataset.layers names layer 'conv2d' twice"),
    ],
)
def test_bad_dataset_config_is_one_clear_error(project, run_pipeline, stage_config, override, message):
    run_pipeline(project, stages=PIPELINE[:5])
    with pytest.raises(ConvlensError, match=message):
        dataset.run(stage_config("dataset", override), project, "trained")
    assert not (project / "outputs" / "metrics" / "dataset").exists()


def test_the_images_streamed_are_the_first_limit_and_enough_for_the_examples():
    assert streamed_count(None, 3, "test", 6) == 6  # null: every image
    assert streamed_count(4, 4, "test", 6) == 4
    with pytest.raises(ConvlensError) as error:
        streamed_count(7, 1, "test", 6)
    assert str(error.value) == (
        "dataset.limit=7 is beyond the test split's 6 images; use null for every image or a number up to 6"
    )
    with pytest.raises(ConvlensError) as error:
        streamed_count(4, 5, "train", 6)  # k is checked against the images streamed, not the split's
    assert str(error.value) == (
        "dataset.examples.k=5 is more than the 4 train images streamed; use dataset.examples.k=4 or less"
    )


def test_a_channel_row_holds_its_statistics_its_selectivity_and_its_mean_for_each_class():
    table = {
        "mean": np.array([0.5, 0.0]),
        "fraction_active": np.array([0.25, 0.0]),
        "max": np.array([2.0, 0.0]),
        "top_image_mean": np.array([1.5, 0.0]),
        "class_means": np.array([[1.0, 0.0], [0.0, 0.0], [np.nan, 0.0]]),  # classes × channels; class 2 unseen
    }
    rows = channel_rows(table, ["Bag", "Coat", "Shirt"])
    assert rows[0] == {
        "channel": 0, "mean": 0.5, "fraction_active": 0.25, "max": 2.0, "top_image_mean": 1.5,
        "selectivity": 0.5, "Bag": 1.0, "Coat": 0.0, "Shirt": rows[0]["Shirt"],
    }  # fmt: skip
    assert np.isnan(rows[0]["Shirt"])  # no image of the class: written as nan
    assert rows[1]["selectivity"] == 0.0 and rows[1]["max"] == 0.0  # a silent channel


def test_the_metrics_are_each_models_layer_summaries():
    maps = np.random.default_rng(2).normal(size=(4, 3, 3, 2))
    table = all_at_once(maps, np.array([0, 1, 0, 1]), 2)
    tables = {"trained": {"conv2d": table}, "untrained": {"conv2d": table, "conv2d_1": table}}
    metrics = dataset_metrics(tables)
    assert metrics == {
        "trained": {"conv2d": dataset_summary(table)},
        "untrained": {"conv2d": dataset_summary(table), "conv2d_1": dataset_summary(table)},
    }
    assert list(metrics["trained"]["conv2d"]) == [
        "data_mean", "data_fraction_active", "data_dead_channels", "data_selectivity",
    ]  # fmt: skip
