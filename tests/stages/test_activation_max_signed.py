"""``activation_max@<model>`` reads from the model's config whether a layer's output can go below 0: a linear conv
layer whose means all happen to be ≥ 0 is signed (no dead or silent channels), a ReLU conv layer is not. Before,
only a negative mean made a layer signed, and the linear layer's constant channel was marked dead."""

from __future__ import annotations

import csv

import numpy as np

from convlens.pipeline import paths
from convlens.pipeline.files import read_json
from tests.unit.model.test_keras_compute_errors import _stage, _stage_project


def linear_then_relu(folder):
    """A 1×1 linear conv of two channels, x + 0.1 (≥ 0.1 on images ≥ 0) and a constant 0, then a ReLU conv."""
    from convlens.model.keras_models import keras

    linear = keras.layers.Conv2D(2, 1, name="linear")  # activation None: linear
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            linear,
            keras.layers.Conv2D(2, 3, activation="relu", name="relu"),
            keras.layers.GlobalMaxPooling2D(name="gmp"),
            keras.layers.Dense(10, activation="softmax", name="dense"),
        ]
    )
    linear.set_weights([np.array([1.0, 0.0], np.float32).reshape(1, 1, 1, 2), np.array([0.1, 0.0], np.float32)])
    path = folder / "linear.keras"
    model.save(path)
    return path


def test_a_linear_conv_layer_whose_means_are_all_at_least_0_is_signed_and_has_no_dead_channel(
    tmp_path, tiny_assets, monkeypatch
):
    root, _ = _stage_project(tmp_path, tiny_assets, monkeypatch, linear_then_relu(tmp_path))
    module, cfg = _stage(root, "dataset", ["dataset.batch_size=50"])  # the best images activation_max compares with
    module.run(cfg, root, "trained")
    module, cfg = _stage(root, "activation_max", ["activation_max.layers=[linear, relu]", "activation_max.steps=4"])
    module.run(cfg, root, "trained")

    folder = paths.activation_max_dir(root, "trained")
    with open(folder / paths.activation_max_channels_name("trained", "linear"), encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["activation"]) >= 0 and float(r["top_image_mean"]) >= 0 for r in rows] == [True, True]
    assert float(rows[1]["activation"]) == 0  # the constant channel: a ReLU layer's would be dead
    assert [r["mark"] for r in rows] == ["", ""]
    summary = read_json(paths.activation_max_summary(root, "trained"))
    assert summary["linear"]["signed"] is True
    assert summary["linear"]["dead"] is None and summary["linear"]["silent_on_data"] is None
    assert summary["linear"]["ratio_undefined"] == 1  # the constant channel's best image's mean is 0
    assert "signed" not in summary["relu"] and isinstance(summary["relu"]["dead"], int)
