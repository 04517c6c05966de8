"""Training here (issue 23 §1, §2, §4) on tiny data: epoch 0 is the untrained baseline, one snapshot per epoch,
DVCLive's record, early stopping, the same seed the same run."""

import json

import numpy as np
import pytest

from convlens.errors import ConvlensError
from convlens.model.keras_models import load_model, load_with_untrained_model
from convlens.model.training import METRICS, Architecture, Recipe, initial_model, kept_summary, train
from convlens.pipeline import paths

ARCH = Architecture(filters=(4, 8), kernel_size=3, dense_units=16, dropout=0.4)
SHAPE = (12, 12, 1)
UNTRAINED_SEED = 42


def tiny_data(n: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, *SHAPE), dtype=np.float32)
    y = np.arange(n) % 3
    split = n * 4 // 5
    return (x[:split], y[:split]), (x[split:], y[split:]), x[:2]


def run(out, recipe: Recipe):
    """Train a fresh initial model by ``recipe`` into ``out``; the history and the model it leaves."""
    train_xy, val_xy, samples = tiny_data()
    model = initial_model(SHAPE, 3, ARCH, UNTRAINED_SEED)
    history = train(model, train_xy, val_xy, recipe, samples, ARCH.conv_layers(), out)
    return history, model


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    history, _ = run(out, Recipe(epochs=3, patience=10, batch_size=8, learning_rate=0.001, seed=7))
    return out, history


def test_one_snapshot_per_epoch_run_plus_the_initialisation(trained):
    out, history = trained
    epochs = history["epochs_run"]
    assert epochs == 3 and not history["stopped_early"]
    for name, channels in zip(ARCH.conv_layers(), ARCH.filters, strict=True):
        kernels = np.load(out / paths.TRAIN_SNAPSHOTS_NAME / paths.snapshot_kernels_name(name))
        maps = np.load(out / paths.TRAIN_SNAPSHOTS_NAME / paths.snapshot_maps_name(name))
        assert kernels.dtype == maps.dtype == np.float32
        assert kernels.shape[0] == maps.shape[0] == epochs + 1
        assert kernels.shape[1:] == (3, 3, 1 if name == "conv2d" else 4, channels)
        assert maps.shape[1:] == ((2, 12, 12, 4) if name == "conv2d" else (2, 6, 6, 8))
        assert not np.array_equal(kernels[0], kernels[-1])  # the filters moved
        assert history["kernel_std"][name] == pytest.approx([float(k.astype(np.float64).std()) for k in kernels])
    for key in METRICS:
        assert len(history[key]) == epochs
    assert len(history["seconds_per_epoch"]) == epochs
    assert json.loads((out / paths.TRAIN_HISTORY_NAME).read_text(encoding="utf-8")) == history


def test_snapshot_zero_is_the_untrained_baseline_build_untrained_makes_of_the_trained_model(trained):
    out, _ = trained
    # what build_untrained does with outputs/models/trained.keras (fetch_model's copy of model.keras)
    _, untrained = load_with_untrained_model(out / paths.TRAIN_MODEL_NAME, UNTRAINED_SEED)
    for name in ARCH.conv_layers():
        kernels = np.load(out / paths.TRAIN_SNAPSHOTS_NAME / paths.snapshot_kernels_name(name))
        assert np.array_equal(kernels[0], untrained.get_layer(name).get_weights()[0])  # bit for bit


def test_dvclive_records_every_epoch_in_its_own_layout(trained):
    out, history = trained
    live = out / paths.TRAIN_LIVE_NAME
    summary = json.loads((live / "metrics.json").read_text(encoding="utf-8"))
    best = history["best_epoch"]  # the summary describes the model kept (here the lowest val_loss of 3 epochs)
    assert summary["step"] == best
    assert summary["val_accuracy"] == pytest.approx(history["val_accuracy"][best - 1])
    assert summary["conv2d"]["kernel_std"] == pytest.approx(history["kernel_std"]["conv2d"][best])
    rows = (live / "plots" / "metrics" / "val_loss.tsv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "step\tval_loss" and len(rows) == 1 + history["epochs_run"]
    std_rows = (live / "plots" / "metrics" / "conv2d_1" / "kernel_std.tsv").read_text(encoding="utf-8").splitlines()
    assert [row.split("\t")[0] for row in std_rows[1:]] == ["0", "1", "2", "3"]  # step 0: the initialisation
    assert not (live / "dvc.yaml").exists() and not (live / "report.html").exists()  # dvc.yaml declares them


def test_the_same_seed_gives_the_same_run_and_another_seed_another(tmp_path, trained):
    _, first = trained
    again, _ = run(tmp_path / "again", Recipe(epochs=3, patience=10, batch_size=8, learning_rate=0.001, seed=7))
    for key in (*METRICS, "kernel_mean", "kernel_std"):
        assert again[key] == first[key]  # exactly: TensorFlow's deterministic ops on one CPU
    other, _ = run(tmp_path / "other", Recipe(epochs=3, patience=10, batch_size=8, learning_rate=0.001, seed=8))
    assert other["loss"] != first["loss"]
    assert other["kernel_std"]["conv2d"][0] == first["kernel_std"]["conv2d"][0]  # the same start: untrained.seed


def test_early_stopping_ends_the_run_and_keeps_the_best_epochs_weights(tmp_path):
    # Adam with a learning rate of 5 overshoots: the validation loss rises within a few epochs
    history, model = run(tmp_path, Recipe(epochs=8, patience=0, batch_size=8, learning_rate=5.0, seed=7))
    assert history["stopped_early"] and history["epochs_run"] < 8
    best = history["best_epoch"]
    assert history["val_loss"][best - 1] == min(history["val_loss"])
    assert "early stopping" in history["reason"] and f"epoch {best}" in history["reason"]
    assert f"did not improve for 1 epoch after epoch {best} " in history["reason"]  # patience 0: one, singular
    saved = load_model(tmp_path / paths.TRAIN_MODEL_NAME)
    for name in ARCH.conv_layers():
        kernels = np.load(tmp_path / paths.TRAIN_SNAPSHOTS_NAME / paths.snapshot_kernels_name(name))
        assert len(kernels) == history["epochs_run"] + 1
        assert np.array_equal(saved.get_layer(name).get_weights()[0], kernels[best])
        assert np.array_equal(model.get_layer(name).get_weights()[0], kernels[best])
        summary = json.loads((tmp_path / paths.TRAIN_LIVE_NAME / "metrics.json").read_text(encoding="utf-8"))
        assert summary[name]["kernel_std"] == pytest.approx(float(kernels[best].astype(np.float64).std()))
    assert best < history["epochs_run"]  # an earlier epoch kept: DVCLive's summary is its, not the last's
    assert {key: summary[key] for key in (*METRICS, "step")} == {
        **{key: pytest.approx(history[key][best - 1]) for key in METRICS},
        "step": best,
    }
    rows = (tmp_path / paths.TRAIN_LIVE_NAME / "plots" / "metrics" / "val_loss.tsv").read_text(encoding="utf-8")
    assert len(rows.splitlines()) == 1 + history["epochs_run"]  # every epoch's row stays for the plots


def test_the_kept_summary_is_the_best_epochs_numbers_and_text_for_what_json_cannot_hold():
    history = {
        "best_epoch": 2,
        "loss": [0.9, 0.5, float("nan")],
        "accuracy": [0.5, 0.8, 0.1],
        "val_loss": [0.8, 0.6, float("inf")],
        "val_accuracy": [0.6, 0.75, 0.1],
        "kernel_mean": {"conv2d": [0.0, 0.01, 0.02, 0.03]},
        "kernel_std": {"conv2d": [0.08, 0.1, 0.12, float("nan")]},
    }
    assert kept_summary(history, ["conv2d"]) == {
        "loss": 0.5, "accuracy": 0.8, "val_loss": 0.6, "val_accuracy": 0.75,
        "conv2d": {"kernel_mean": 0.02, "kernel_std": 0.12}, "step": 2,
    }  # fmt: skip
    history["best_epoch"] = 3
    summary = kept_summary(history, ["conv2d"])
    assert (summary["loss"], summary["val_loss"], summary["conv2d"]["kernel_std"]) == ("nan", "inf", "nan")


def test_an_architecture_that_pools_the_image_away_is_refused():
    with pytest.raises(ConvlensError, match="at most 3 entries"):
        Architecture(filters=(4, 4, 4, 4)).check_fits((12, 12, 1))
    Architecture(filters=(4, 4, 4)).check_fits((12, 12, 1))
