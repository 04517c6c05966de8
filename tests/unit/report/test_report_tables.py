"""The report's tables and captions say which model and which layer each number belongs to (issue 28 §4: hand-made
bugs there survived: the trained model's accuracy in the untrained column, a caption naming the configured index)."""

from __future__ import annotations

import json

import pytest
import yaml

from convlens.model.archive import Archive
from convlens.pipeline import paths
from convlens.report.build import Report
from convlens.report.pages import Figure, Strings, Table
from tests.support.helpers import PROJECT
from tests.support.report_pages import png, write_sample_stats


@pytest.fixture
def params() -> dict:
    return yaml.safe_load((PROJECT / "params.yaml").read_text(encoding="utf-8"))


def test_the_evaluate_table_has_each_models_own_accuracies(tmp_path, params):
    classes = ["T-shirt/top", "Trouser", "Pullover"]
    evaluate = {
        "trained": {"accuracy": 0.9, "class_accuracy": dict(zip(classes, (0.81, 0.97, 0.74), strict=True))},
        "untrained": {"accuracy": 0.1, "class_accuracy": dict(zip(classes, (0.0, 0.25, 0.05), strict=True))},
    }
    paths.metrics_dir(tmp_path).mkdir(parents=True)
    paths.evaluate_metrics(tmp_path).write_text(json.dumps(evaluate), encoding="utf-8")
    section = Report(tmp_path, params, Strings("en")).evaluate()
    [table] = [block for block in section.blocks if isinstance(block, Table)]
    assert table.columns[1:] == ["trained model", "untrained model"]
    assert table.rows == [
        ["accuracy", "90.0 %", "10.0 %"],
        ["T-shirt/top", "81.0 %", "0.0 %"],
        ["Trouser", "97.0 %", "25.0 %"],
        ["Pullover", "74.0 %", "5.0 %"],
    ]


def test_a_layer_configured_by_its_index_is_named_by_the_model_in_captions_and_labels(tmp_path, params, tiny_assets):
    layers = {"layers": [0], "each": [0]}  # the tiny model's conv2d
    params = {**params, "feature_maps": {**params["feature_maps"], **layers}}
    stats = {"channels": 4, "map_mean": 0.1, "map_fraction_active": 0.5, "dead_channels": 1}
    paths.metrics_dir(tmp_path).mkdir(parents=True)
    maps = {role: {"conv2d": stats} for role in paths.ROLES}
    paths.feature_map_metrics(tmp_path).write_text(json.dumps(maps), encoding="utf-8")
    write_sample_stats(tmp_path, "0", [stats])
    for role in paths.ROLES:
        png(paths.map_figure(tmp_path, "0", role, 7))  # feature_maps@0 writes under the configured item
    report = Report(tmp_path, params, Strings("en"))
    report.archive = Archive.read(tiny_assets["model"])
    [figure] = report.feature_maps({"split": "train", "samples": [7]}).blocks
    assert isinstance(figure, Figure)
    assert figure.caption.startswith("conv2d, training image 7: output ")
    assert [image.alt for image in figure.images] == [
        "conv2d, sample 7: trained model",
        "conv2d, sample 7: untrained model",
    ]
