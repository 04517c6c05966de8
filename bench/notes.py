"""The report around the table: how it was measured, where the time goes, and why a target is missed."""

from __future__ import annotations

import time
from collections.abc import Callable

from .dataset import Inputs
from .measure import stats
from .pipeline import ADDED_LAYER, PipelineResults
from .report import Row, cpu_pressure, git_commit, load_average, machine, notebook_split, table, versions

SERIES = {
    "full": "1: full, fresh clone",
    "everything": "1b: full, metrics deleted too",
    "noop": "2: nothing changed",
    "map_cmap": "3a: render.map_cmap",
    "filter_cmap": "3b: render.filter_cmap",
    "add_layer": f"4: + {ADDED_LAYER}",
}
EXPECTED = {  # what each series should run (the pipeline's caching contract)
    "noop": [],
    "map_cmap": ["render_maps@conv2d", "render_maps@conv2d_1"],
    "filter_cmap": ["render_figures"],
    "add_layer": [f"feature_maps@{ADDED_LAYER}", "map_metrics", f"render_maps@{ADDED_LAYER}"],
}


def _median(pipe: PipelineResults, stage: str) -> float:
    return stats([r.wall_s for r in pipe.stages[stage]]).median


def attribution(pipe: PipelineResults) -> dict[str, tuple[float, float, float]]:
    """Per series: median wall, the standalone medians of the stages DVC ran summed, and the rest (DVC)."""
    found = {}
    for series, runs in pipe.series.items():
        wall = stats([r.wall_s for r in runs]).median
        work = sum(_median(pipe, s) for s in pipe.ran[series] if s in pipe.stages)
        found[series] = (wall, work, wall - work)
    return found


def where_time_goes(pipe: PipelineResults) -> str:
    """Tables: each series split into stage work and DVC, each stage standalone, the start-up probes."""
    split = attribution(pipe)
    series_rows = [
        [SERIES.get(name, name), f"{wall:.2f}", ", ".join(pipe.ran[name]) or "—", f"{work:.2f}", f"{rest:.2f}"]
        for name, (wall, work, rest) in split.items()
    ]
    stage_rows = []
    for stage, runs in pipe.stages.items():
        wall, rss = stats([r.wall_s for r in runs]), stats([r.maxrss_mb for r in runs])
        stage_rows.append([f"`{stage}`", wall.show(), f"{rss.median:.0f}"])
    probe_rows = [[f"`{name}`", stats([r.wall_s for r in runs]).show()] for name, runs in pipe.probes.items()]
    parts = [
        "Each series' median wall time against the same stages' commands run standalone (no DVC, fresh clone, "
        "same order; medians); the rest is DVC's own work (start-up, reading dvc.yaml and params, hashing, "
        "`dvc.lock`, caching and linking outputs) and its process spawning.",
        table(["series", "median wall (s)", "stages DVC ran", "those stages standalone (s)", "rest: DVC (s)"],
              series_rows),
        "Every stage command standalone (wall min / median / max, peak RSS median):",
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
    """Peak RSS of the pipeline's runs and the notebook, and row 7's growth per image."""
    full = stats([r.maxrss_mb for r in pipe.series["full"]])
    stage, peak = max(((s, stats([r.maxrss_mb for r in runs]).median) for s, runs in pipe.stages.items()),
                      key=lambda item: item[1])  # fmt: skip
    small, large = min(rss), max(rss)
    growth = stats(rss[large]).median - stats(rss[small]).median
    return (
        f"Peak RSS (min / median / max): the notebook {stats([r.maxrss_mb for r in pipe.notebook]).show()} MB; a "
        f"full `dvc repro` (largest process of the tree) {full.show()} MB; the largest stage standalone is "
        f"{stage} at {peak:.0f} MB. Row 7: from N={small:,} to N={large:,} the statistics' peak RSS grows by "
        f"{growth:.0f} MB, {growth * 2**20 / (large - small):.0f} bytes per extra image (the memory-mapped input "
        "is 784 bytes per image; one batch's activations are the rest and do not depend on N)."
    )


def caching_checks(pipe: PipelineResults) -> str:
    """Did each series run exactly the stages it should?"""
    lines = []
    for series, expected in EXPECTED.items():
        got = pipe.ran.get(series)
        if got is None:
            continue
        ok = "as expected" if got == expected else f"**expected {', '.join(expected) or 'nothing'}**"
        lines.append(f"- {SERIES[series]}: ran {', '.join(got) or 'nothing'} ({ok})")
    return "\n".join(lines)


def method(pipe: PipelineResults, inp: Inputs, render_runs: int) -> str:
    nb = len(pipe.notebook)
    return "\n".join([
        "- Rows 1–4: each series is a fresh `git clone` of the commit above into a temp dir: empty DVC cache, "
        "`outputs/` holding only the git-tracked metrics, `$CONVLENS_CACHE` a new empty dir, `$CONVLENS_MIRROR` "
        "the local mirror. `python -m dvc repro` is timed as a subprocess (wall clock; peak RSS from `wait4`, the "
        "largest process of the tree). In that clone: a no-op `dvc repro` (2); `render.map_cmap` then "
        "`render.filter_cmap` set to `magma` in params.yaml, each followed by a timed `dvc repro` and an untimed "
        f"`git checkout params.yaml dvc.lock && dvc checkout` (3a, 3b); `{ADDED_LAYER}` appended to `layers` (4, "
        "divided by the same clones' full runs). Row 1b uses a second fresh clone with `outputs/metrics` deleted "
        "too, so map_metrics and dataset_stats (10,000 images × 2 models) run as well.",
        f"- The notebook (`notebook_baseline.py MIRROR OUT`, same interpreter) runs twice per series, before and "
        f"after the clone's measurements: {nb} runs, the denominator of rows 1–3.",
        f"- Row 5: one process, one untimed warm-up of each renderer, then {render_runs} runs of each, alternating "
        "which goes first. Same data: conv2d_1's 64 maps of training image 0 (numpy forward pass of the mirror's "
        "model); both save a PNG at dpi 100 (the notebook's default).",
        f"- Row 6: one process, `stream_statistics` against `for s in batches(n, {inp.batch_size}): "
        f"network.activations(model_inputs(images[s], {inp.scale}), names)`, same network, names "
        f"({', '.join(inp.names)}), {len(inp.images):,} test images memory-mapped from the clone's "
        "`outputs/data`, as dataset_stats reads them; one untimed warm-up batch each, then alternating order. "
        "Both models, one row each.",
        "- Row 7: `python -m bench.dataset CLONE N` in a fresh process per N and run (trained model; the test "
        "split up to 10,000 images, beyond that the train split); peak RSS from `wait4`. The notebook's peak "
        "RSS (rows 1–3's runs) is the yardstick column. 'Flat' is this report's criterion: the largest N needs at "
        "most 1.25× the memory of the smallest.",
        "- Row 9: `python -m bench.activation_max MODEL trained|both` in a fresh process per run (TensorFlow's "
        "import, the book's model loaded and its untrained twin built with seed 42, then every channel of conv2d "
        "and conv2d_1 maximized with the default `activation_max` params of params.yaml); wall time from the "
        "parent, the ascent's own seconds printed by the worker (the yardstick column). The target bounds the "
        "slowest run.",
    ])  # fmt: skip


Explain = Callable[[Row, PipelineResults], str]


def compose(
    rows: list[Row],
    pipe: PipelineResults,
    inp: Inputs,
    command: str,
    quick: bool,
    load_before: str,
    elapsed: float,
    render_runs: int,
    explain: dict[str, Explain],
    rss: dict[int, list[float]],
) -> str:
    """The whole of ``results.md``."""
    header = ["#", "measurement", "target", "ours: min / median / max", "yardstick: min / median / max",
              "ratio (median ÷ median)", "ratio (min ÷ min)", "met?"]  # fmt: skip
    missed = [row for row in rows if row.met is False]
    parts = [
        "# convlens benchmark: the pipeline against the chapter's notebook (issue 5)",
        ("**QUICK SMOKE RUN: one run, small N; not a measurement.**\n\n" if quick else "")
        + f"Generated {time.strftime('%Y-%m-%d %H:%M %Z')} by `{command}` (from the project root, venv Python) "
        f"in {elapsed / 60:.1f} min. Rerun with `make bench` or `python -m bench`.",
        "## Machine",
        "\n".join(f"- {line}" for line in machine())
        + "\n- a **shared 2-core machine**: another engineer ran tests on it now and then during the run; "
        f"load average (1/5/15 min) {load_before} at the start, {load_average()} at the end; CPU pressure at the "
        f"end: {cpu_pressure()}. Every comparison "
        "ran both sides in the same invocation, interleaved, so read the ratios, not the absolute times."
        + f"\n- {versions()}\n- project commit: {git_commit()}",
        "## Results",
        table(header, [row.cells() for row in rows]),
        f"{sum(row.met is True for row in rows)} of {sum(row.met is not None for row in rows)} targets met"
        + (f"; missed: {', '.join(row.key for row in missed)} (see the notes)." if missed else "."),
        "## How it was measured",
        method(pipe, inp, render_runs),
        "What each `dvc repro` ran (first run of each series):\n\n" + caching_checks(pipe),
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
