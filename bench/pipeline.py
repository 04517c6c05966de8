"""Rows 1–4: the DVC pipeline in fresh clones against the notebook script, plus a per-stage breakdown."""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .measure import PROJECT, VENV_BIN, Run, run_measured, run_quiet

DVC = (sys.executable, "-m", "dvc")
REPRO = (*DVC, "repro")
ADDED_LAYER = "max_pooling2d"  # row 4: the layer added to the sweep
# the probes that explain where a full run's time goes (each a fresh interpreter)
PROBES: dict[str, tuple[str, ...]] = {
    "python -c 'import tensorflow'": (sys.executable, "-c", "import tensorflow"),
    "python -c 'import matplotlib.pyplot'": (sys.executable, "-c", "import matplotlib.pyplot"),
    "python -c 'import dvc.repo, dvc.cli'": (sys.executable, "-c", "import dvc.repo, dvc.cli"),
}


@dataclass
class PipelineResults:
    """Every pipeline-side measurement, by series name, plus the notebook runs made in between."""

    notebook: list[Run] = field(default_factory=list)
    series: dict[str, list[Run]] = field(default_factory=dict)
    ran: dict[str, list[str]] = field(default_factory=dict)  # series → the stages its first run ran
    stages: dict[str, list[Run]] = field(default_factory=dict)  # stage → standalone runs
    probes: dict[str, list[Run]] = field(default_factory=dict)

    def add(self, name: str, run: Run) -> None:
        self.series.setdefault(name, []).append(run)
        self.ran.setdefault(name, ran_stages(run.output))


def ran_stages(output: str) -> list[str]:
    """The stages a ``dvc repro`` output says it ran, in order."""
    return re.findall(r"Running stage '([^']+)'", output)


def base_env(mirror: Path) -> dict[str, str]:
    """The caller's environment with the venv first on PATH, the mirror set, no DVC/convlens leftovers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "CONVLENS_"))}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["CONVLENS_MIRROR"] = str(mirror)
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def fresh_clone(dest: Path, mirror: Path, everything: bool = False) -> tuple[Path, dict[str, str]]:
    """A clone of the project's HEAD with an empty DVC cache and an empty download cache.

    ``outputs/`` then holds only the git-tracked metrics; ``everything`` deletes those too, so that
    ``dvc repro`` also reruns map_metrics and dataset_stats.
    """
    root = dest / "repo"
    run_quiet(["git", "clone", "-q", str(PROJECT), str(root)], dest.parent, os.environ)
    cache = dest / "download-cache"
    cache.mkdir()
    env = {**base_env(mirror), "CONVLENS_CACHE": str(cache)}
    if everything:
        shutil.rmtree(root / "outputs" / "metrics")
    dvc_cache = root / ".dvc" / "cache"
    produced = [root / "outputs" / "models" / "trained.keras", root / "outputs" / "data"]
    if (dvc_cache.exists() and any(dvc_cache.iterdir())) or any(p.exists() for p in produced):
        raise RuntimeError(f"{root} is not a from-nothing clone (DVC cache or outputs present)")
    return root, env


def notebook_cmd(notebook: Path, mirror: Path, out: Path) -> tuple[str, ...]:
    """The chapter's notebook as one script, same Python, local mirror, figures into ``out``."""
    return (sys.executable, str(notebook), str(mirror), str(out))


def set_params(root: Path, changes: dict[str, object]) -> None:
    """Edit ``params.yaml`` (dotted keys) as a user would before ``dvc repro``."""
    path = root / "params.yaml"
    params = yaml.safe_load(path.read_text(encoding="utf-8"))
    for dotted, value in changes.items():
        node = params
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True), encoding="utf-8")


def restore(root: Path, env: dict[str, str]) -> None:
    """Back to the committed params and lock file, outputs checked out from the DVC cache (not timed)."""
    run_quiet(["git", "checkout", "-q", "--", "params.yaml", "dvc.lock"], root, env)
    run_quiet([*DVC, "checkout", "-q"], root, env)


def stage_commands(root: Path, extra_layers: tuple[str, ...] = ()) -> list[tuple[str, list[str]]]:
    """Every stage instance of ``dvc.yaml`` in file order (a valid run order here) with its command;
    ``foreach`` stages also get an instance for each of ``extra_layers``."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    layers = [*params["feature_maps"]["layers"], *extra_layers]
    commands = []
    for name, spec in stages.items():
        if "foreach" in spec:
            items = [(f"{name}@{item}", spec["do"]["cmd"].replace("${item}", str(item))) for item in layers]
        else:
            items = [(name, spec["cmd"])]
        for stage, cmd in items:
            argv = cmd.split()
            commands.append((stage, [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]))
    return commands


Progress = Callable[[str], None]


def one_series(i: int, scratch: Path, mirror: Path, notebook: Path, res: PipelineResults, say: Progress) -> Path:
    """One repetition of rows 1–4 (one fresh clone), 1b (another) and the stage breakdown (a third).

    Returns the reproduced clone (rows 5–7 read its outputs)."""
    work = scratch / f"run{i}"
    work.mkdir()

    def nb(tag: str) -> None:
        run = run_measured(notebook_cmd(notebook, mirror, work / f"notebook-{tag}"), work, base_env(mirror))
        res.notebook.append(run)
        say(f"notebook: {run.wall_s:.2f} s, peak RSS {run.maxrss_mb:.0f} MB")

    def repro(series: str, root: Path, env: dict[str, str]) -> Run:
        run = run_measured(REPRO, root, env)
        res.add(series, run)
        say(f"{series}: {run.wall_s:.2f} s (ran {', '.join(ran_stages(run.output)) or 'nothing'})")
        return run

    nb("a")
    root, env = fresh_clone(work / "main", mirror)
    repro("full", root, env)
    repro("noop", root, env)
    for series, changes in (
        ("map_cmap", {"render.map_cmap": "magma"}),
        ("filter_cmap", {"render.filter_cmap": "magma"}),
        (
            "add_layer",
            {
                "feature_maps.layers": [
                    *yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))["feature_maps"]["layers"],
                    ADDED_LAYER,
                ]
            },
        ),
    ):
        set_params(root, changes)
        repro(series, root, env)
        restore(root, env)
    nb("b")
    root_all, env_all = fresh_clone(work / "everything", mirror, everything=True)
    repro("everything", root_all, env_all)
    shutil.rmtree(work / "everything")
    stage_breakdown(work / "stages", mirror, res, say)
    return root


def stage_breakdown(dest: Path, mirror: Path, res: PipelineResults, say: Progress) -> None:
    """Each stage command standalone (no DVC) in a fresh clone, in order, and the start-up probes.

    A stage reads ``params.yaml`` standalone as under DVC: the time is the stage's own share of a ``dvc repro``."""
    root, env = fresh_clone(dest, mirror)
    for stage, cmd in stage_commands(root, (ADDED_LAYER,)):
        res.stages.setdefault(stage, []).append(run_measured(cmd, root, env))
    for name, cmd in PROBES.items():
        res.probes.setdefault(name, []).append(run_measured(cmd, root, env))
    total = sum(runs[-1].wall_s for runs in res.stages.values())
    say(f"stages standalone: {total:.2f} s in all")
    shutil.rmtree(dest)
