"""`python -m bench.own_data`: issue 22 §6's benchmark rows (bench/own_data.py) start, and their workers run on a
tiny N. No timing is checked: the numbers are the benchmark's (bench/own_data.md)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from bench import own_data
from bench.measure import PROJECT


def test_help_names_the_options():
    done = subprocess.run(
        [sys.executable, "-m", "bench.own_data", "--help"], cwd=PROJECT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout and "--out" in done.stdout


def test_the_folder_worker_reads_a_tiny_image_folder_in_a_fresh_process(tmp_path):
    top, out = own_data.image_folder(tmp_path / "folder", 20, size=32), tmp_path / "out"
    out.mkdir()
    measured = own_data.measure("folder", 20, ["folder", str(top), str(out)])
    assert measured.report["n"] == 20 and measured.report["splits"] == {"train": 16, "test": 4}
    assert measured.report["shape"] == [32, 32, 3] and measured.peak_mb > 0
    images = np.load(out / "train_images.npy", mmap_mode="r")
    assert images.shape == (16, 32, 32, 3) and images.dtype == np.uint8


def test_the_dataset_pass_runs_the_resnet_through_keras_on_a_tiny_n(tmp_path):
    root = own_data.pass_root(tmp_path / "project", 20)
    report = own_data.pass_worker(root, 20)
    assert report["n"] == 20 and report["computed_by"] == "KerasNetwork"
    assert report["layers"][0] == "stem" and report["VmHWM"] > 0
