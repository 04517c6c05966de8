"""train@trained as a stage on the tiny data (issue 23): its outputs where dvc.yaml declares them, one error line for
bad input, and an interrupted run (SIGKILL, SIGINT) leaves nothing half-written; the next run starts clean."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from convlens.pipeline import paths
from convlens.pipeline.config import compose, write_params
from stages import fetch_data, samples
from tests.support.helpers import PROJECT, cli, error_line, imported_files, kill_shim_env, staging_areas

TRAIN = ["model=train", "train.epochs=2", "train.batch_size=4", "train.architecture.filters=[4,8]"]


@pytest.fixture
def train_project(project, stage_config):
    """The tiny project with -S model=train (2 epochs), its data and samples in place."""
    write_params(project, compose(project, TRAIN))
    for module in (fetch_data, samples):
        module.run(stage_config(module.__name__.rsplit(".", 1)[1], *TRAIN), project)
    return project


def test_the_stage_depends_on_every_module_it_imports_and_not_on_the_figures_code():
    """Training takes minutes: its deps name the library's layers it imports, so an edit to a module it runs
    retrains (each imported file lies under a dep) and an edit to a figure's or the report's code does not."""
    deps = yaml.safe_load((PROJECT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]["train"]["do"]["deps"]
    imported = imported_files(PROJECT / "stages" / "train.py")
    assert "convlens/model/training.py" in imported
    uncovered = [f for f in imported if not any(f == d or f.startswith(d.rstrip("/") + "/") for d in deps)]
    assert uncovered == []
    assert "convlens" not in deps
    assert not any(d.startswith(("convlens/render", "convlens/report", "convlens/analysis")) for d in deps)


def train_outputs(root):
    return (
        sorted(str(p.relative_to(root)) for p in paths.train_dir(root).rglob("*"))
        if paths.train_dir(root).exists()
        else []
    )


def test_dvc_yaml_declares_dvclives_files_as_metrics_and_plots():
    stage = yaml.safe_load((PROJECT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]["train"]
    assert stage["foreach"] == "${model.train_runs}"
    live = paths.relative(PROJECT, paths.train_live_dir(PROJECT))
    assert [next(iter(m)) for m in stage["do"]["metrics"]] == [f"{live}/metrics.json"]
    assert [next(iter(p)) for p in stage["do"]["plots"]] == [f"{live}/plots/metrics"]
    outs = stage["do"]["outs"]
    for path in (paths.train_model(PROJECT), paths.train_snapshots_dir(PROJECT), paths.train_history(PROJECT)):
        assert paths.relative(PROJECT, path) in outs
    trained_here = yaml.safe_load((PROJECT / "conf" / "model" / "train.yaml").read_text(encoding="utf-8"))
    assert trained_here["path"] == paths.relative(PROJECT, paths.train_model(PROJECT))


def test_the_stage_writes_the_interface_files_and_one_line_per_epoch(train_project):
    done = cli(train_project, "train", "trained")
    assert done.returncode == 0, done.stderr
    epochs = [line for line in done.stdout.splitlines() if ": epoch " in line]
    assert [line.split(":")[1].strip() for line in epochs] == ["epoch 1/2", "epoch 2/2"]
    assert "━" not in done.stdout + done.stderr  # no Keras progress bar
    history = json.loads(paths.train_history(train_project).read_text(encoding="utf-8"))
    assert history["epochs_run"] == 2
    snapshots = paths.train_snapshots_dir(train_project)
    assert np.load(snapshots / paths.snapshot_kernels_name("conv2d")).shape == (3, 3, 3, 1, 4)
    assert np.load(snapshots / paths.snapshot_maps_name("conv2d_1")).shape == (3, 1, 14, 14, 8)
    assert (paths.train_live_dir(train_project) / "metrics.json").is_file()
    assert paths.train_model(train_project).is_file() and not staging_areas(train_project)


def test_an_unknown_run_is_one_error_line(train_project):
    assert "unknown training run 'other'" in error_line(cli(train_project, "train", "other"), "train@other")


@pytest.mark.slow  # six training processes (TensorFlow starts in each)
@pytest.mark.parametrize("at", ["save:1", "save:3", "replace:1"])
def test_a_killed_training_leaves_nothing_half_written_and_the_next_run_starts_clean(train_project, at):
    killed = cli(train_project, "train", "trained", env=kill_shim_env(at))
    assert killed.returncode == -signal.SIGKILL
    assert train_outputs(train_project) == []  # nothing under outputs/train: it was all staged
    assert staging_areas(train_project)  # what the kill left, outside outputs/
    done = cli(train_project, "train", "trained")
    assert done.returncode == 0, done.stderr
    assert "left by an interrupted run" in done.stdout
    assert not staging_areas(train_project)
    assert json.loads(paths.train_history(train_project).read_text(encoding="utf-8"))["epochs_run"] == 2


@pytest.mark.slow
def test_an_interrupted_training_sigint_leaves_no_output_and_no_staging_area(train_project, tmp_path):
    env = {**os.environ, **kill_shim_env("save:1"), "CONVLENS_PAUSE_DIR": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "stages.train", "trained"],
        cwd=train_project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 240
    while not (tmp_path / "paused").exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
    assert (tmp_path / "paused").exists(), process.communicate()
    process.send_signal(signal.SIGINT)  # Ctrl-C while the snapshots are being written
    process.communicate(timeout=120)
    assert process.returncode != 0
    assert train_outputs(train_project) == []
    assert not staging_areas(train_project)  # the staging folder was removed on the way out
