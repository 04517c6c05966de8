"""`dvc exp run -S model=train` end to end on the tiny data (issue 23): the trained-here model becomes every other
stage's `trained`, DVCLive's numbers reach `dvc exp show` and `dvc plots show`, and a queued sweep over `train.seed`
shows its accuracies side by side in `python -m convlens experiments`."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from convlens.model.archive import Archive
from convlens.pipeline import paths
from tests.support.dvc_repo import dvc, wait_for_queue

pytestmark = pytest.mark.slow  # minutes of TensorFlow in stage processes; make test-fast leaves it out

TINY_TRAIN = ["-S", "model=train", "-S", "train.epochs=2", "-S", "train.batch_size=4"]


def test_exp_run_model_train_trains_here_and_everything_downstream_sees_it(good_repo):
    root, env = good_repo
    assert "train@" not in dvc(root, env, "stage", "list")  # the default config has no training stage
    output = dvc(root, env, "exp", "run", *TINY_TRAIN)
    assert "Running stage 'train@trained'" in output
    assert output.index("Running stage 'train@trained'") < output.index("Running stage 'fetch_model'")
    assert "train@trained" in dvc(root, env, "stage", "list")
    history = json.loads(paths.train_history(root).read_text(encoding="utf-8"))
    assert history["epochs_run"] == 2
    # fetch_model copied the model trained here; build_untrained's model is the training's epoch 0
    assert paths.model_path(root, "trained").read_bytes() == paths.train_model(root).read_bytes()
    untrained = Archive.read(paths.model_path(root, "untrained")).weights(["conv2d", "conv2d_1"])
    for layer in ("conv2d", "conv2d_1"):
        kernels = np.load(paths.train_snapshots_dir(root) / paths.snapshot_kernels_name(layer))
        assert len(kernels) == history["epochs_run"] + 1
        assert np.array_equal(kernels[0], np.asarray(untrained[layer][0]))
    shown = json.loads(dvc(root, env, "exp", "show", "--json"))
    metrics = [
        rev["data"]["metrics"]
        for entry in shown
        for exp in entry.get("experiments") or []
        for rev in exp["revs"]
        if rev.get("data")
    ]
    live = paths.relative(root, paths.train_live_dir(root) / "metrics.json")
    assert metrics and metrics[0][live]["data"]["step"] == history["best_epoch"]  # DVCLive's summary: the kept one
    plots = json.loads(dvc(root, env, "plots", "show", "--json"))["data"]
    assert f"{paths.relative(root, paths.train_live_dir(root))}/plots/metrics/val_loss.tsv" in plots
    assert not (paths.train_live_dir(root) / "dvc.yaml").exists()  # DVCLive made no pipeline or experiment of its own


def test_a_queued_seed_sweep_shows_the_accuracies_side_by_side(good_repo):
    root, env = good_repo  # committed: the book's run is the baseline
    dvc(root, env, "exp", "run", "--queue", *TINY_TRAIN, "-S", "train.seed=1,2")
    dvc(root, env, "queue", "start", "-j", "2")
    status = wait_for_queue(root, env, timeout=900)
    assert status.count("Success") == 2, status
    done = subprocess.run(
        [sys.executable, "-m", "convlens", "experiments", "--metrics", "trained.accuracy,val_accuracy"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("experiment"))
    columns = lines[at].split()  # the last line of the header: each column's last name part
    assert {"seed", "accuracy", "val_accuracy"} <= set(columns), done.stdout
    rows = {line.split()[0]: line.split() for line in lines[at + 1 :] if line.strip()}
    assert rows.pop("main")[columns.index("val_accuracy")] == "-"  # the baseline: the model given, not trained here
    assert sorted(row[columns.index("seed")] for row in rows.values()) == ["1", "2"], done.stdout
    for row in rows.values():
        assert 0 <= float(row[columns.index("accuracy")]) <= 1 and 0 <= float(row[columns.index("val_accuracy")]) <= 1
