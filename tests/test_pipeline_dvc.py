"""End to end: `dvc repro` of a copy of the project on tiny data, then the reruns DVC should (not) do."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import PROJECT, copy_project

pytestmark = pytest.mark.slow


def sh(cwd: Path, *args: str, env: dict) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def ran(output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", output)


@pytest.fixture
def dvc_project(tmp_path, tiny_assets):
    """A git + DVC repo whose conf/ defaults point at the tiny model and data."""
    root = copy_project(tmp_path / "project")
    (root / ".dvc").mkdir()
    shutil.copy2(PROJECT / ".dvc" / "config", root / ".dvc" / "config")
    shutil.copy2(PROJECT / ".dvcignore", root / ".dvcignore")
    config = (root / "conf" / "config.yaml").read_text().replace("- model: book", "- model: local")
    tiny = {
        "model": {"path": str(tiny_assets["model"])},
        "data": {"urls": [], "files": {k: {"sha256": v} for k, v in tiny_assets["sums"].items()}},
    }
    (root / "conf" / "config.yaml").write_text(config + "\n" + yaml.safe_dump(tiny))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "CONVLENS_MIRROR": str(tiny_assets["mirror"]),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "DVC_NO_ANALYTICS": "1",
    }
    sh(root, sys.executable, "-m", "stages.compose_params", env=env)
    sh(root, "git", "init", "-q", env=env)
    return root, env


def declared_outputs(root: Path) -> list[Path]:
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    paths = []
    for stage in stages.values():
        for entry in stage.get("outs", []) + stage.get("metrics", []):
            paths.append(root / (entry if isinstance(entry, str) else next(iter(entry))))
    return paths


def test_repro_then_noop_then_render_only_then_experiment(dvc_project):
    root, env = dvc_project
    dvc = [sys.executable, "-m", "dvc"]

    first = sh(root, *dvc, "repro", env=env)
    assert ran(first) == [
        "fetch_model",
        "fetch_data",
        "extract_weights",
        "build_baseline",
        "feature_maps",
        "render_figures",
    ]
    assert "Traceback" not in first and "oneDNN" not in first
    for path in declared_outputs(root):
        assert path.exists(), path
        assert path.is_file() or any(path.iterdir()), path
    assert len(list((root / "outputs" / "figures").rglob("*.png"))) == 15
    metrics = json.loads((root / "outputs" / "metrics" / "weights_trained.json").read_text())
    assert metrics["trained"]["conv2d"]["count"] == 36

    assert ran(sh(root, *dvc, "repro", env=env)) == []
    plots = sh(root, *dvc, "plots", "show", "--json", env=env)
    assert "failed to load" not in plots
    plot_ids = set(json.loads(plots)["data"])
    assert "outputs/figures/weights/conv2d_hist_overlay.png" in plot_ids
    assert {"Kernel std by layer", "outputs/metrics/filters/untrained/conv2d_1.csv"} <= plot_ids

    params = yaml.safe_load((root / "params.yaml").read_text())
    params["render"]["map_cmap"] = "magma"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert ran(sh(root, *dvc, "repro", env=env)) == ["render_figures"]

    sh(root, "git", "add", "-A", env=env)
    sh(root, "git", "commit", "-qm", "tiny run", env=env)
    exp = sh(root, *dvc, "exp", "run", "-S", "baseline.seed=7", env=env)
    assert ran(exp) == ["build_baseline", "feature_maps", "render_figures"]
    diff = json.loads(sh(root, *dvc, "metrics", "diff", "--json", env=env))
    untrained = diff["outputs/metrics/weights_untrained.json"]
    assert untrained["untrained.conv2d.mean"]["old"] != untrained["untrained.conv2d.mean"]["new"]
    assert "outputs/metrics/weights_trained.json" not in diff  # the trained model did not change
