"""The report around issue 25's table: how it was measured, what each run ran, where the time goes, why a target
is missed."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from .expected import RULE
from .measure import stats
from .pipeline import CHANGES, CHAPTER_STAGES, CHAPTER_TARGETS, REPORT_SAMPLES, SERIES, PipelineResults
from .report import Row, cpu_pressure, git_commit, load_average, machine, notebook_split, table, versions


def _median(pipe: PipelineResults, stage: str) -> float:
    return stats([r.wall_s for r in pipe.stages[stage]]).median


# Series whose change makes each stage compute more than at the committed config (100 samples: a hundred times the
# maps and figures), so the committed config's standalone times say nothing of their stages' work.
SCALED = ("samples",)


def unmeasured_work(pipe: PipelineResults, ran: list[str]) -> tuple[float, list[str]]:
    """The stages DVC ran that have no standalone time (an added layer's), each estimated as the median of its
    ``foreach`` group's measured instances: their summed estimate, and which were estimated."""
    total, estimated = 0.0, []
    for stage in ran:
        if stage in pipe.stages or "@" not in stage:
            continue
        group = stage.split("@", 1)[0]
        siblings = sorted(_median(pipe, s) for s in pipe.stages if s.split("@", 1)[0] == group)
        if siblings:
            total += siblings[len(siblings) // 2]
            estimated.append(stage)
    return total, estimated


def attribution(pipe: PipelineResults) -> dict[str, tuple[float, float, float]]:
    """Per series: median wall, the standalone medians of the stages DVC ran summed (an instance the committed
    ``dvc.lock`` lacks estimated from its group: :func:`unmeasured_work`), and the rest (DVC). NaN for the last two
    where the change scales the stages' work (``SCALED``)."""
    found = {}
    for series, runs in pipe.series.items():
        wall = stats([r.wall_s for r in runs]).median
        if series in SCALED:
            found[series] = (wall, math.nan, math.nan)
            continue
        work = sum(_median(pipe, s) for s in pipe.ran[series] if s in pipe.stages)
        work += unmeasured_work(pipe, pipe.ran[series])[0]
        found[series] = (wall, work, wall - work)
    return found


def _seconds(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.2f}"


def where_time_goes(pipe: PipelineResults) -> str:
    """Tables: each series split into stage work and DVC, each stage standalone, the start-up probes."""
    if not pipe.stages:
        return "Not measured in a quick run (`--quick` leaves out the stages standalone)."
    split = attribution(pipe)
    series_rows = [
        [SERIES.get(name, name), f"{wall:.2f}", ", ".join(pipe.ran[name]) or "—", _seconds(work), _seconds(rest)]
        for name, (wall, work, rest) in split.items()
    ]
    stage_rows = []
    for stage, runs in pipe.stages.items():
        wall, rss = stats([r.wall_s for r in runs]), stats([r.maxrss_mb for r in runs])
        stage_rows.append([f"`{stage}`", wall.show(), f"{rss.median:.0f}"])
    probe_rows = [[f"`{name}`", stats([r.wall_s for r in runs]).show()] for name, runs in pipe.probes.items()]
    parts = [
        "Each series' median wall time against the same stages' commands run standalone (no DVC, fresh clone, "
        "same order; medians; a stage the committed `dvc.lock` lacks, such as an added layer's, counts as the median "
        "of its group's instances; — where the change makes every stage compute more, as 100 samples do); the rest "
        "is DVC's own work (start-up, reading dvc.yaml and params, hashing, `dvc.lock`, caching and linking outputs, "
        "for `dvc exp run` the experiment's bookkeeping) and its process spawning.",
        table(["series", "median wall (s)", "stages DVC ran", "those stages standalone (s)", "rest: DVC (s)"],
              series_rows),
        "Every stage command of the committed `dvc.lock` standalone (wall min / median / max, peak RSS median):",
        table(["stage", "wall (s)", "peak RSS (MB)"], stage_rows),
        "Start-up costs every process pays (min / median / max):",
        table(["probe", "wall (s)"], probe_rows),
    ]  # fmt: skip
    split_nb = notebook_split([r.output for r in pipe.notebook])
    if split_nb:
        parts.append(
            f"The notebook's own report of its runs: imports (matplotlib, numpy, TensorFlow) {split_nb[0].show()} s, "
            f"the chapter's work {split_nb[1].show()} s; the rest of its wall time is interpreter start and exit."
        )
    return "\n\n".join(parts)


def memory(pipe: PipelineResults, rss: dict[int, list[float]]) -> str:
    """Peak RSS of the pipeline's runs and the notebook, and row 10's growth per image."""
    full = stats([r.maxrss_mb for r in pipe.series["full"]])
    small, large = min(rss), max(rss)
    growth = stats(rss[large]).median - stats(rss[small]).median
    largest = ""
    if pipe.stages:
        stage, peak = max(((s, stats([r.maxrss_mb for r in runs]).median) for s, runs in pipe.stages.items()),
                          key=lambda item: item[1])  # fmt: skip
        largest = f"; the largest stage standalone is {stage} at {peak:.0f} MB"
    return (
        f"Peak RSS (min / median / max; each the largest process of its tree): the notebook "
        f"{stats([r.maxrss_mb for r in pipe.notebook]).show()} MB; a cold `dvc repro` {full.show()} MB{largest}. "
        f"Row 10: from N={small:,} to N={large:,} the statistics' peak RSS grows by {growth:.0f} MB, "
        f"{growth * 2**20 / (large - small):.0f} bytes per extra image (the memory-mapped input is 784 bytes per "
        "image; one batch's activations are the rest and do not depend on N)."
    )


def caching_checks(pipe: PipelineResults) -> str:
    """Did each series run exactly the stages it should (``bench.expected``)?"""
    lines = []
    for series, got in pipe.ran.items():
        should = pipe.expected.get(series, [])
        ok = "as expected" if set(got) == set(should) else f"**expected {', '.join(should) or 'nothing'}**"
        lines.append(f"- {SERIES.get(series, series)}: ran {', '.join(got) or 'nothing'} ({ok})")
    closure = pipe.chapter_closure
    if closure:
        same = set(closure) == set(CHAPTER_STAGES)
        lines.append(
            f"- `dvc repro {' '.join(CHAPTER_TARGETS)}` ran the groups {', '.join(closure)}: "
            + ("the chapter's stages, as the README names them" if same else
               f"**not the chapter's stages** ({', '.join(CHAPTER_STAGES)})")
        )  # fmt: skip
    return "\n".join(lines)


def method(pipe: PipelineResults, dataset_stages: list[str]) -> str:
    nb = len(pipe.notebook)
    changes = "; ".join(f"{c.title}: {c.shown()}" for c in CHANGES)
    return "\n".join([
        "- Rows 1–7 and 9: each series starts from a fresh `git clone` of the commit above into a temp dir: empty "
        "DVC cache, `outputs/` holding only the git-tracked metrics, `$CONVLENS_CACHE` a new empty dir, "
        "`$CONVLENS_MIRROR` the local mirror, Python's default bytecode writing (a `PYTHONDONTWRITEBYTECODE` of the "
        "caller's shell removed: the clone's first stage compiles the library, the others reuse it, as on a user's "
        "machine). Each command (`python -m dvc ...`) is timed as a subprocess (wall clock). "
        "In that clone: a cold `dvc repro` (1; what `make run` runs after its install step), a no-op "
        f"`dvc repro` (7); what the cold run left in git-tracked files (`dvc.lock`, the uncached metrics) is "
        f"committed in the clone; then one change at a time ({changes}), each followed by an untimed restore to "
        "that commit: `git checkout HEAD -- .`, the files it added under `outputs/` removed, `dvc checkout "
        "--force`, and `dvc status` must then be empty. Row 2 is a second fresh clone, `dvc repro "
        f"{' '.join(CHAPTER_TARGETS)}`. Row 3 divides by the same clones' cold runs. Row 9 is the size of "
        f"`outputs/report/index.html` after the {REPORT_SAMPLES}-sample run (the page; the folder's `du` in its note).",
        f"- The notebook (`notebook_baseline.py MIRROR OUT`, same interpreter) runs three times per series: before "
        f"the first clone, between the clones and after the second: {nb} runs, the denominator of rows 1, 2 and "
        "4–7.",
        f"- Row 8: in the reproduced clone, {' then '.join(f'`{s}`' for s in dataset_stages)} (their commands from "
        "`dvc.lock`, each a process; the rule: every `dataset@<model>` instance, or `dataset_stats` + `evaluate` "
        "before those existed; walls summed) against `python -m bench.dataset_pass CLONE` (imports Keras, loads "
        "both models of the clone, `predict` on the 10,000 test images with `dataset.batch_size`); alternating "
        "which goes first.",
        "- Row 10: `python -m bench.dataset CLONE N` in a fresh process per N and run (the trained model's dataset "
        "statistics over the first N images: the test split up to 10,000, beyond that the train split). The "
        "notebook's peak RSS is the yardstick column. 'Flat': the largest N needs at most 1.25× the memory of the "
        "smallest.",
        "- Peak RSS everywhere: `bench.measure.run_measured` samples `VmHWM` (`/proc/PID/status`, the kernel's "
        "high-water mark of the program a process runs) of the command and all its descendants every 20 ms and "
        "keeps the largest: the largest process of the tree. Not `ru_maxrss`: a forked child's starts from its "
        "parent's, so every small child reported this harness's own peak.",
        f"- What DVC ran: the stages it printed as `Running stage`. What it should run: {RULE}.",
    ])  # fmt: skip


Explain = Callable[[Row, PipelineResults], str]


def compose(
    rows: list[Row],
    pipe: PipelineResults,
    dataset_stages: list[str],
    command: str,
    quick: bool,
    load_before: str,
    elapsed: float,
    explain: dict[str, Explain],
    rss: dict[int, list[float]],
    rev: str = "HEAD",
) -> str:
    """The whole of ``results.md``."""
    header = ["#", "measurement", "target", "ours: min / median / max", "yardstick: min / median / max",
              "ratio (median ÷ median)", "ratio (min ÷ min)", "met?"]  # fmt: skip
    missed = [row for row in rows if row.met is False]
    parts = [
        "# convlens benchmark: the loop fast again (issue 25), the pipeline against the chapter's notebook",
        ("**QUICK SMOKE RUN: one run, small N; not a measurement.**\n\n" if quick else "")
        + f"Generated {time.strftime('%Y-%m-%d %H:%M %Z')} by `{command}` (from the project root, venv Python) "
        f"in {elapsed / 60:.1f} min. Rerun with `make bench` or `python -m bench`.",
        "## Machine",
        "\n".join(f"- {line}" for line in machine())
        + "\n- a **shared 2-core machine**: other engineers may run tests on it during the run; "
        f"load average (1/5/15 min) {load_before} at the start, {load_average()} at the end; CPU pressure at the "
        f"end: {cpu_pressure()}. Every comparison "
        "ran both sides in the same invocation, interleaved, so read the ratios, not the absolute times."
        + f"\n- {versions()}\n- project commit: {git_commit(rev)}",
        "## Results",
        table(header, [row.cells() for row in rows]),
        f"{sum(row.met is True for row in rows)} of {sum(row.met is not None for row in rows)} targets met"
        + (f"; missed: {', '.join(row.key for row in missed)} (see the notes)." if missed else "."),
        "## How it was measured",
        method(pipe, dataset_stages),
        "What each run ran against what it should have (first run of each series):\n\n" + caching_checks(pipe),
        "## Where the time goes",
        where_time_goes(pipe),
        "## Memory",
        memory(pipe, rss),
    ]
    if missed:
        notes = [f"- **{row.key}** ({row.ratio:.3f} against {row.target}): " + (
            explain[row.key.split()[0]](row, pipe) if row.key.split()[0] in explain else "see above.")
            for row in missed]  # fmt: skip
        parts += ["## Notes on the missed targets", "\n".join(notes)]
    return "\n\n".join(parts) + "\n"
