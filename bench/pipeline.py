"""Issue 25's pipeline rows: the DVC pipeline in fresh clones against the chapter's notebook, what each run ran
against what it should have (``bench.expected``), plus a per-stage breakdown."""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .expected import base, expected, in_yaml_order, missing_outputs, read_lock, read_params, yaml_stages
from .measure import PROJECT, VENV_BIN, Run, du_mb, run_measured, run_quiet

DVC = (sys.executable, "-m", "dvc")
REPRO = (*DVC, "repro")
EXP_RUN = (*DVC, "exp", "run")
# The chapter's own stages, as the README names them: `dvc repro render_figures render_maps` runs exactly these
# (their upstream closure; row 2 checks it against what DVC ran).
CHAPTER_TARGETS = ("render_figures", "render_maps")
CHAPTER_STAGES = (
    "check_config", "fetch_data", "fetch_model", "samples", "extract_weights", "build_untrained", "feature_maps",
    "render_figures", "render_maps",
)  # fmt: skip
ADDED_LAYER = "max_pooling2d"  # the layer row 6 adds
REPORT_SAMPLES = 100  # row 9: the report's size with this many samples
# the probes that explain where a full run's time goes (each a fresh interpreter)
PROBES: dict[str, tuple[str, ...]] = {
    "python -c 'import tensorflow'": (sys.executable, "-c", "import tensorflow"),
    "python -c 'import matplotlib.pyplot'": (sys.executable, "-c", "import matplotlib.pyplot"),
    "python -c 'import dvc.repo, dvc.cli'": (sys.executable, "-c", "import dvc.repo, dvc.cli"),
}


@dataclass(frozen=True)
class Change:
    """One row's change to the reproduced clone: ``params.yaml`` edited then ``dvc repro``, or ``dvc exp run -S``."""

    series: str
    title: str
    overrides: tuple[str, ...]  # ``key=value`` as ``-S`` takes them (Hydra syntax)
    exp: bool  # ``dvc exp run -S ...``; else the values written into params.yaml, then ``dvc repro``

    def command(self) -> tuple[str, ...]:
        if not self.exp:
            return REPRO
        return (*EXP_RUN, *(arg for o in self.overrides for arg in ("-S", o)))

    def shown(self) -> str:
        """The command as the report shows it (a long list of indices shortened)."""
        short = [re.sub(r"\[0,1,2,[\d,]*,(\d+)\]", r"[0,1,…,\1]", o) for o in self.overrides]
        if not self.exp:
            return f"`{', '.join(short)}` in params.yaml, `dvc repro`"
        return "`dvc exp run " + " ".join(f"-S '{o}'" for o in short) + "`"


CHANGES = (
    Change("seed", "`untrained.seed` changed", ("untrained.seed=7",), exp=True),
    Change("map_cmap", "`render.map_cmap` changed", ("render.map_cmap=magma",), exp=False),
    Change("filter_cmap", "`render.filter_cmap` changed", ("render.filter_cmap=magma",), exp=True),
    Change("add_layer", f"`{ADDED_LAYER}` added to `feature_maps.layers`",
           (f"feature_maps.layers=[conv2d,conv2d_1,{ADDED_LAYER}]",), exp=True),
    Change("samples", f"{REPORT_SAMPLES} samples", (f"samples.indices=[{','.join(map(str, range(REPORT_SAMPLES)))}]",),
           exp=True),
)  # fmt: skip
SERIES = {  # series → how the report names it
    "full": "cold `dvc repro`, fresh clone",
    "chapter": f"`dvc repro {' '.join(CHAPTER_TARGETS)}`, fresh clone",
    "noop": "nothing changed, `dvc repro`",
    **{c.series: c.title for c in CHANGES},
}


@dataclass
class PipelineResults:
    """Every pipeline-side measurement, by series name, plus the notebook runs made in between."""

    notebook: list[Run] = field(default_factory=list)
    series: dict[str, list[Run]] = field(default_factory=dict)
    ran: dict[str, list[str]] = field(default_factory=dict)  # series → the stages its first run ran
    expected: dict[str, list[str]] = field(default_factory=dict)  # series → what it should have run (first run)
    report_mb: dict[str, list[float]] = field(default_factory=dict)  # series → the page (index.html) after it, MB
    folder_mb: dict[str, list[float]] = field(default_factory=dict)  # series → du of outputs/report after it
    stages: dict[str, list[Run]] = field(default_factory=dict)  # stage → standalone runs
    probes: dict[str, list[Run]] = field(default_factory=dict)
    chapter_closure: list[str] = field(default_factory=list)  # the groups `dvc repro CHAPTER_TARGETS` ran

    def add(self, name: str, run: Run, should: list[str]) -> None:
        self.series.setdefault(name, []).append(run)
        self.ran.setdefault(name, ran_stages(run.output))
        self.expected.setdefault(name, should)


def ran_stages(output: str) -> list[str]:
    """The stages a ``dvc repro`` / ``dvc exp run`` output says it ran, in order."""
    return re.findall(r"Running stage '([^']+)'", output)


def base_env(mirror: Path) -> dict[str, str]:
    """The caller's environment with the venv first on PATH, the mirror set, no DVC/convlens leftovers, bytecode
    written as Python does by default."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "CONVLENS_"))}
    # Python's default: a stage process writes its modules' bytecode and the next one reuses it (a shell with
    # PYTHONDONTWRITEBYTECODE=1 recompiles the library in every stage, ~0.1 s each; .dvcignore keeps it out of hashes)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["CONVLENS_MIRROR"] = str(mirror)
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def fresh_clone(dest: Path, mirror: Path, rev: str = "HEAD") -> tuple[Path, dict[str, str]]:
    """A clone of the project's commit ``rev`` (on a branch) with an empty DVC cache and an empty download cache
    (``outputs/`` then holds only the git-tracked metrics)."""
    root = dest / "repo"
    dest.mkdir(parents=True, exist_ok=True)
    commit = run_quiet(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], PROJECT, os.environ).strip()
    run_quiet(["git", "clone", "-q", "--no-checkout", str(PROJECT), str(root)], dest, os.environ)
    run_quiet(["git", "checkout", "-q", "-B", "bench", commit], root, os.environ)
    cache = dest / "download-cache"
    cache.mkdir()
    env = {**base_env(mirror), "CONVLENS_CACHE": str(cache)}
    dvc_cache = root / ".dvc" / "cache"
    produced = [root / "outputs" / "models" / "trained.keras", root / "outputs" / "data"]
    if (dvc_cache.exists() and any(dvc_cache.iterdir())) or any(p.exists() for p in produced):
        raise RuntimeError(f"{root} is not a from-nothing clone (DVC cache or outputs present)")
    return root, env


def notebook_cmd(notebook: Path, mirror: Path, out: Path) -> tuple[str, ...]:
    """The chapter's notebook as one script, same Python, local mirror, figures into ``out``."""
    return (sys.executable, str(notebook), str(mirror), str(out))


def set_params(root: Path, overrides: tuple[str, ...]) -> None:
    """Write ``key=value`` overrides (YAML values) into ``params.yaml``, as a user edits it before ``dvc repro``."""
    params = read_params(root)
    for override in overrides:
        dotted, value = override.split("=", 1)
        node = params
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = yaml.safe_load(value)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _files(root: Path) -> set[Path]:
    return {p for p in (root / "outputs").rglob("*") if not p.is_dir()} if (root / "outputs").exists() else set()


def baseline(root: Path, env: dict[str, str]) -> None:
    """Commit, in the clone, what the cold run left in git-tracked files (``dvc.lock``, the uncached metrics: they
    differ from the project's commit when its lock is behind its code): the state every change row starts from and
    ``restore`` returns to, and the base of the rows' experiments."""
    run_quiet(["git", "add", "--", "."], root, env)
    run_quiet(["git", "-c", "commit.gpgsign=false", "commit", "-q", "--no-verify", "--allow-empty", "-m",
               "bench: after the cold run"], root, env)  # fmt: skip


def restore(root: Path, env: dict[str, str], before: set[Path]) -> None:
    """Back to the clone's baseline commit (not timed): git-tracked files from it (params.yaml, dvc.lock, the uncached
    metrics; ``dvc exp run`` stages them), files under ``outputs/`` the run added removed, the cached outputs checked
    out; then ``dvc status`` must find nothing to do, or the next row would measure leftovers."""
    run_quiet(["git", "checkout", "-q", "HEAD", "--", "."], root, env)
    run_quiet(["git", "read-tree", "HEAD"], root, env)  # the index too: `dvc exp run` stages files HEAD lacks
    for path in _files(root) - before:
        path.unlink()
    for folder in sorted((p for p in (root / "outputs").rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    run_quiet([*DVC, "checkout", "-q", "--force"], root, env)
    status = run_quiet([*DVC, "status", "--json"], root, env).strip()
    if status not in ("{}", ""):
        raise RuntimeError(f"{root}: not back to the committed state after a row: dvc status {status[:2000]}")


Progress = Callable[[str], None]


def measured(
    series: str, cmd: tuple[str, ...], root: Path, env: dict[str, str], res: PipelineResults, say: Progress,
    targets: list[str] | None = None,
) -> Run:  # fmt: skip
    """Time ``cmd`` in ``root`` and record what it ran against what it should have (``bench.expected``)."""
    before, missing = read_lock(root), missing_outputs(root, read_lock(root))
    run = run_measured(cmd, root, env)
    should = expected(before, read_lock(root), read_params(root), missing, targets)
    res.add(series, run, in_yaml_order(should, root))
    ran = ran_stages(run.output)
    flag = "" if set(ran) == should else f" (expected {', '.join(in_yaml_order(should, root)) or 'nothing'})"
    say(f"{series}: {run.wall_s:.2f} s, peak RSS {run.maxrss_mb:.0f} MB; ran {', '.join(ran) or 'nothing'}{flag}")
    return run


def one_series(
    i: int, scratch: Path, mirror: Path, notebook: Path, res: PipelineResults, say: Progress, rev: str = "HEAD"
) -> Path:
    """One repetition of the pipeline rows: the notebook, a fresh clone (cold run, nothing changed, each change of
    ``CHANGES``), the notebook, another fresh clone (the chapter's targets), the notebook.

    Returns the first clone, reproduced (the dataset and memory rows read its outputs)."""
    work = scratch / f"run{i}"
    work.mkdir()

    def nb(tag: str) -> None:
        run = run_measured(notebook_cmd(notebook, mirror, work / f"notebook-{tag}"), work, base_env(mirror))
        res.notebook.append(run)
        say(f"notebook: {run.wall_s:.2f} s, peak RSS {run.maxrss_mb:.0f} MB")

    nb("a")
    root, env = fresh_clone(work / "main", mirror, rev)
    measured("full", REPRO, root, env, res, say)
    report_sizes(res, "full", root)
    measured("noop", REPRO, root, env, res, say)
    baseline(root, env)
    for change in CHANGES:
        files = _files(root)
        if not change.exp:
            set_params(root, change.overrides)
        measured(change.series, change.command(), root, env, res, say)
        report_sizes(res, change.series, root)
        restore(root, env, files)
    nb("b")
    chapter, chapter_env = fresh_clone(work / "chapter", mirror, rev)
    measured("chapter", (*REPRO, *CHAPTER_TARGETS), chapter, chapter_env, res, say, list(CHAPTER_TARGETS))
    if not res.chapter_closure:
        ran = {base(s) for s in ran_stages(res.series["chapter"][-1].output)}
        res.chapter_closure = [s for s in yaml_stages(chapter) if s in ran]
    shutil.rmtree(work / "chapter")
    nb("c")
    return root


def stage_commands(root: Path) -> list[tuple[str, list[str]]]:
    """Every stage instance of the reproduced clone's ``dvc.lock`` in ``dvc.yaml``'s order (a valid run order
    here), with its command as DVC resolved it."""
    lock = read_lock(root)
    commands = []
    for stage in in_yaml_order(set(lock), root):
        argv = str(lock[stage]["cmd"]).split()
        commands.append((stage, [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]))
    return commands


def as_under_dvc(env: Mapping[str, str], stage: str) -> dict[str, str]:
    """``env`` as DVC gives a stage's command: ``DVC_STAGE`` names it, so the stage skips what it does only when run
    on its own by hand (asking ``dvc status`` which upstream stages it reads stale, ~1 s)."""
    return {**env, "DVC_STAGE": stage}


def stage_breakdown(
    reproduced: Path, dest: Path, mirror: Path, res: PipelineResults, say: Progress, rev: str = "HEAD"
) -> None:
    """Each stage command standalone (no DVC) in a fresh clone, in order, and the start-up probes.

    A stage reads ``params.yaml`` standalone as under DVC, with DVC's ``DVC_STAGE`` (:func:`as_under_dvc`): the time
    is the stage's own share of a ``dvc repro``."""
    root, env = fresh_clone(dest, mirror, rev)
    for stage, cmd in stage_commands(reproduced):
        res.stages.setdefault(stage, []).append(run_measured(cmd, root, as_under_dvc(env, stage)))
    for name, cmd in PROBES.items():
        res.probes.setdefault(name, []).append(run_measured(cmd, root, env))
    total = sum(runs[-1].wall_s for runs in res.stages.values())
    say(f"stages standalone: {total:.2f} s in all")
    shutil.rmtree(dest)


def report_sizes(res: PipelineResults, series: str, root: Path) -> None:
    """The report after ``series``: its page (``index.html``, what a browser opens and what must stay light) and
    the whole ``outputs/report`` folder (the page with the figures it links and their thumbnails), in MB."""
    page = root / "outputs" / "report" / "index.html"
    res.report_mb.setdefault(series, []).append(page.stat().st_size / 2**20 if page.is_file() else 0.0)
    res.folder_mb.setdefault(series, []).append(du_mb(root / "outputs" / "report"))
