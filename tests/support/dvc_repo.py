"""A real git + DVC repository of the project on tiny data, and helpers to drive `dvc` in it.

The tiny data sits in ``../shared/mirror`` beside the repository and the tiny model is a DVC-tracked
file inside it (``dvc add models/tiny.keras``), as the README tells a user to keep theirs: queued
experiments must find both on their own.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from bench.pipeline import ran_stages
from tests.support.datasets import use_tiny_presets
from tests.support.helpers import PROJECT, configure, copy_project

DVC = (sys.executable, "-m", "dvc")
# the stage instances of the tiny project's default config, in the order `dvc repro` runs them
STAGES = [
    "check_config",
    "fetch_data",
    "fetch_model",
    "samples",
    "extract_weights",
    "build_untrained",
    "feature_maps@conv2d",
    "feature_maps@conv2d_1",
    "map_metrics",
    "dataset@trained",
    "dataset@untrained",
    "render_figures",
    "render_dataset@trained",
    "render_dataset@untrained",
    "render_maps@conv2d",
    "render_maps@conv2d_1",
    "metrics",
    "report",
]
# what -S analyses=full adds (activation maximization, attribution), in the order `dvc repro` runs them
ANALYSES = [
    "activation_max@trained",
    "activation_max@untrained",
    "render_activation_max@trained",
    "render_activation_max@untrained",
    "gradcam@trained_vs_untrained",
    "render_gradcam@trained_vs_untrained",
]


def sh(cwd: Path, *args: str, env: dict, check: bool = True) -> str:
    """Run a command; whatever it prints, failing or not, never holds a Python traceback."""
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, encoding="utf-8")
    if check:
        assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stdout + done.stderr, f"{' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def dvc(root: Path, env: dict, *args: str, check: bool = True) -> str:
    return sh(root, *DVC, *args, env=env, check=check)


ran = ran_stages  # the stages a `dvc repro` / `dvc exp run` output says it ran, in order (as the benchmark reads it)


def repo_env() -> dict:
    """The environment `git` and `dvc` run with in a test repository: this venv first on PATH, no mirror."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "DVC_NO_ANALYTICS": "1",
    }
    env.pop("CONVLENS_MIRROR", None)
    return env


def make_repo(base: Path, tiny_assets: dict, conf_extra: dict | None = None) -> tuple[Path, dict]:
    """``base/project`` as a git + DVC repo whose conf/ points at the tiny model and data."""
    root = copy_project(base / "project")
    shutil.copytree(tiny_assets["mirror"], base / "shared" / "mirror")
    (root / "models").mkdir()
    shutil.copy2(tiny_assets["model"], root / "models" / "tiny.keras")
    shutil.copy2(PROJECT / ".gitignore", root / ".gitignore")
    (root / ".dvc").mkdir()
    shutil.copy2(PROJECT / ".dvc" / "config", root / ".dvc" / "config")
    (root / ".dvc" / ".gitignore").write_text("/config.local\n/tmp\n/cache\n", encoding="utf-8")
    shutil.copy2(PROJECT / ".dvcignore", root / ".dvcignore")
    configure(root, "models/tiny.keras", tiny_assets["sums"], conf_extra, analyses="light")  # the default, as cloned
    use_tiny_presets(root, base / "shared" / "mirror")  # -S data=mnist, cifar10, cifar100 offline
    env = repo_env()
    sh(root, "git", "init", "-q", "-b", "main", env=env)
    dvc(root, env, "add", "-q", "models/tiny.keras")  # the user's model, DVC-tracked: queued runs get it too
    return root, env


def copy_repo(template: Path, base: Path) -> tuple[Path, dict]:
    """``base/project`` (and ``base/shared/mirror`` beside it): a copy of the repository ``make_repo`` made in
    ``template`` (``template/project``), git history, DVC cache and run cache included.

    Nothing in it is absolute (relative model path, DVC's default copy links, git's relative paths); DVC keeps its
    file-hash state and index outside the repo, keyed by the repo's path, so the copy starts with none and hashes
    its files afresh. ``.dvc/tmp`` (DVC's locks, the staging scratch dir) is left behind, as after a fresh clone.
    """
    shutil.copytree(template / "shared", base / "shared", symlinks=True)
    root = base / "project"
    shutil.copytree(
        template / "project",
        root,
        symlinks=True,
        ignore=lambda folder, names: ["tmp"] if Path(folder).name == ".dvc" else [],
    )
    return root, repo_env()


def commit(root: Path, env: dict, message: str) -> None:
    sh(root, "git", "add", "-A", env=env)
    sh(root, "git", "commit", "-qm", message, env=env)


def locked_outputs(root: Path) -> dict[str, list[Path]]:
    """Each stage instance's outputs (metrics included) as `dvc.lock` records them."""
    stages = yaml.safe_load((root / "dvc.lock").read_text(encoding="utf-8"))["stages"]
    return {name: [root / out["path"] for out in stage.get("outs", [])] for name, stage in stages.items()}


def wait_for_queue(root: Path, env: dict, timeout: float = 300) -> str:
    """Poll `dvc queue status` until nothing is queued or running; returns the last status."""
    deadline = time.monotonic() + timeout
    while True:
        status = dvc(root, env, "queue", "status")
        if not re.search(r"\b(Queued|Running)\b", status):
            return status
        assert time.monotonic() < deadline, f"queue still busy after {timeout} s:\n{status}"
        time.sleep(2)
