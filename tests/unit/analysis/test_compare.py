"""Comparing two runs' statistics: one row per model × layer × statistic, what changed and by how much."""

import math

from convlens.analysis.compare import (
    MODEL_LEVEL,
    TRAINING,
    TRAINING_FILE,
    changed,
    compare_statistics,
    one_sided,
    shared,
    statistic_rows,
)


def test_rows_of_nested_metrics_keep_numbers_only():
    files = {
        "weights.json": {"trained": {"conv2d": {"mean": 0.5, "shape": "3x3", "ok": True}}},
        "maps.json": {"trained": {"conv2d": {"map_mean": 2}}, "note": "text"},
    }
    assert statistic_rows(files) == {("trained", "conv2d", "mean"): 0.5, ("trained", "conv2d", "map_mean"): 2.0}


def test_change_and_relative_change_with_layers_added_or_dropped():
    a = {("m", "conv2d", "mean"): 2.0, ("m", "conv2d", "std"): 0.0, ("m", "old", "mean"): 1.0}
    b = {("m", "conv2d", "mean"): 3.0, ("m", "conv2d", "std"): 0.5, ("m", "new", "mean"): 4.0}
    table = compare_statistics(a, b).set_index(["layer", "statistic"])
    assert table.loc[("conv2d", "mean"), "change"] == 1.0 and table.loc[("conv2d", "mean"), "relative_change"] == 0.5
    assert math.isnan(table.loc[("conv2d", "std"), "relative_change"])  # from 0: no relative change
    assert math.isnan(table.loc[("old", "mean"), "b"]) and math.isnan(table.loc[("new", "mean"), "a"])
    table = table.reset_index()
    assert changed(table)["layer"].tolist() == ["conv2d", "conv2d"]  # a layer in one run only is not a change
    assert one_sided(table)["layer"].tolist() == ["new", "old"] and len(shared(table)) == 2


def test_statistics_of_one_run_only_are_never_counted_as_changed():
    """Two runs of the same model, one with an analysis the other left out: nothing they share differs."""
    a = {("m", "conv2d", "mean"): 0.5, ("m", "activation_max", "ratio"): 3.0, ("m", "dw", "mean"): 0.0}
    b = {("m", "conv2d", "mean"): 0.5, ("m", "bn", "mean"): 0.25}
    table = compare_statistics(a, b)
    assert changed(table).empty and len(shared(table)) == 1 and len(one_sided(table)) == 3


def test_identical_runs_change_nothing():
    a = {("m", "conv2d", "mean"): 0.1, ("m", "conv2d", "std"): 0.2}
    table = compare_statistics(a, dict(a))
    assert (table["change"] == 0).all() and (table["relative_change"] == 0).all() and changed(table).empty


def test_relative_change_is_measured_against_the_baselines_magnitude():
    """Kernel means are negative (the book's conv2d: -0.0144): -0.02 → -0.01 is a rise of half its size."""
    a = {("m", "conv2d", "mean"): -0.02, ("m", "conv2d", "min"): -0.5, ("m", "conv2d", "std"): 0.2}
    b = {("m", "conv2d", "mean"): -0.01, ("m", "conv2d", "min"): -0.75, ("m", "conv2d", "std"): 0.1}
    table = compare_statistics(a, b).set_index("statistic")
    for statistic in ("mean", "min", "std"):
        va, vb = a[("m", "conv2d", statistic)], b[("m", "conv2d", statistic)]
        assert table.loc[statistic, "change"] == vb - va
        assert table.loc[statistic, "relative_change"] == (vb - va) / abs(va)
    assert math.isclose(table.loc["mean", "relative_change"], 0.5)  # up, as the value went up
    assert math.isclose(table.loc["min", "relative_change"], -0.5)  # down by half the baseline's size
    assert math.isclose(table.loc["std", "relative_change"], -0.5)


def test_model_level_numbers_such_as_accuracy_are_compared_too():
    """evaluate.json: accuracy directly under the model, the per-class accuracies one level down."""
    files = {
        "dataset.json": {"trained": {"conv2d": {"mean": 1.0}}},
        "evaluate.json": {
            "trained": {"accuracy": 0.9125, "class_accuracy": {"Bag": 0.98, "Shirt": 0.7}, "ok": True},
            "untrained": {"accuracy": 0.1, "class_accuracy": {"Bag": 0.0, "Shirt": 1.0}},
        },
    }
    rows = statistic_rows(files)
    assert rows == {
        ("trained", "conv2d", "mean"): 1.0,
        ("trained", MODEL_LEVEL, "accuracy"): 0.9125,
        ("trained", "class_accuracy", "Bag"): 0.98,
        ("trained", "class_accuracy", "Shirt"): 0.7,
        ("untrained", MODEL_LEVEL, "accuracy"): 0.1,
        ("untrained", "class_accuracy", "Bag"): 0.0,
        ("untrained", "class_accuracy", "Shirt"): 1.0,
    }
    better = {**rows, ("trained", MODEL_LEVEL, "accuracy"): 0.92}
    diff = changed(compare_statistics(rows, better))
    assert diff[["model", "layer", "statistic"]].values.tolist() == [["trained", MODEL_LEVEL, "accuracy"]]
    assert math.isclose(diff["change"].iloc[0], 0.92 - 0.9125)


def test_an_unchanged_zero_has_no_relative_change_and_the_tolerance_is_exclusive():
    table = compare_statistics({("m", "conv2d", "dead_channels"): 0.0}, {("m", "conv2d", "dead_channels"): 0.0})
    assert table["relative_change"].tolist() == [0.0]  # unchanged, not NaN from 0 / 0
    table = compare_statistics({("m", "conv2d", "mean"): 1.0}, {("m", "conv2d", "mean"): 1.5})
    assert changed(table, tolerance=0.5).empty and len(changed(table, tolerance=0.25)) == 1


def dvclive_metrics(val_accuracy: float, kernel_std: float) -> dict:
    """outputs/train/live/metrics.json as training leaves it: the kept epoch's numbers (step: that epoch) at the
    top, each conv layer's kernel statistics under its name."""
    return {
        "loss": 0.31,
        "accuracy": 0.89,
        "val_loss": 0.35,
        "val_accuracy": val_accuracy,
        "step": 5,
        "conv2d": {"kernel_mean": -0.02, "kernel_std": kernel_std},
        "conv2d_1": {"kernel_mean": -0.01, "kernel_std": 0.05},
    }


def test_dvclive_training_metrics_are_the_trained_models_never_a_model_per_layer():
    """DVCLive's file is not keyed by model: its layers are the trained model's during training, its top-level
    numbers that training's loss and accuracy (val_accuracy, the headline of two training runs) and the epoch
    kept (step)."""
    files = {
        TRAINING_FILE: dvclive_metrics(0.91, 0.2),
        "outputs/metrics/evaluate.json": {"trained": {"accuracy": 0.9}},
    }
    rows = statistic_rows(files)
    assert TRAINING_FILE == "outputs/train/live/metrics.json"  # the path dvc.yaml declares for train@trained
    assert rows == {
        ("trained", MODEL_LEVEL, "accuracy"): 0.9,
        ("trained", TRAINING, "loss"): 0.31,
        ("trained", TRAINING, "accuracy"): 0.89,
        ("trained", TRAINING, "val_loss"): 0.35,
        ("trained", TRAINING, "val_accuracy"): 0.91,
        ("trained", TRAINING, "step"): 5.0,
        ("trained", f"conv2d {TRAINING}", "kernel_mean"): -0.02,
        ("trained", f"conv2d {TRAINING}", "kernel_std"): 0.2,
        ("trained", f"conv2d_1 {TRAINING}", "kernel_mean"): -0.01,
        ("trained", f"conv2d_1 {TRAINING}", "kernel_std"): 0.05,
    }
    assert {model for model, _, _ in rows} == {"trained"}  # no model called conv2d
    diff = changed(compare_statistics(rows, statistic_rows({TRAINING_FILE: dvclive_metrics(0.93, 0.25)})))
    assert diff[["layer", "statistic"]].values.tolist() == [
        [TRAINING, "val_accuracy"],
        [f"conv2d {TRAINING}", "kernel_std"],
    ]


def test_a_file_of_the_same_shape_elsewhere_is_read_by_model():
    """Only DVCLive's file of training is read as training: any other metrics file is keyed by model."""
    rows = statistic_rows({"outputs/metrics/other.json": {"trained": {"conv2d": {"std": 0.2}}, "val_loss": 0.3}})
    assert rows == {("trained", "conv2d", "std"): 0.2}
