"""``python -m bench [--runs N] [--quick] [--out PATH]``: every row of issue 5's table, written as Markdown."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from .activation_max import bench_activation_max
from .dataset import bench_dataset, bench_examples, bench_rss
from .explain import EXPLAIN
from .measure import PROJECT, stats
from .notes import compose
from .pipeline import PipelineResults, one_series
from .render import bench_render
from .report import Row, load_average

SIZES = [1_000, 10_000, 60_000]
QUICK_SIZES = [500, 1_000, 2_000]
QUICK_LIMIT = 2_000  # row 6 in a quick run: the first test images only


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="repetitions of every measurement (default 3)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 run, small N, not for reporting")
    parser.add_argument("--out", type=Path, help="the report (default bench/results.md; --quick: a temp file)")
    parser.add_argument("--mirror", type=Path, default=PROJECT.parent / "shared" / "mirror", help="local model+data")
    parser.add_argument(
        "--notebook", type=Path, default=PROJECT.parent / "shared" / "reference" / "notebook_baseline.py"
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.out is None:
        args.out = Path(tempfile.gettempdir()) / "convlens-bench-quick.md" if args.quick else Path("bench/results.md")
    return args


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def build_rows(
    pipe: PipelineResults,
    render: tuple[list[float], list[float]],
    data: dict[str, tuple[list[float], list[float]]],
    rss: dict[int, list[float]],
    examples: dict[str, tuple[list[float], list[float]]],
    amax: dict[str, tuple[list[float], list[float]]],
) -> list[Row]:
    """The table, in the issue's order."""
    walls = {name: stats([r.wall_s for r in runs]) for name, runs in pipe.series.items()}
    notebook = stats([r.wall_s for r in pipe.notebook])
    notebook_rss = stats([r.maxrss_mb for r in pipe.notebook])
    small, large = min(rss), max(rss)
    rows = [
        Row("1", "full `dvc repro` from nothing (fresh clone) ÷ notebook", "≤ 1.5 (stretch ≤ 1.0)",
            walls["full"], notebook, 1.5),
        Row("1b", "same, git-tracked metrics deleted too: every stage, dataset_stats included ÷ notebook",
            "— (info: work the notebook does not do)", walls["everything"], notebook, None),
        Row("2", "`dvc repro`, nothing changed ÷ notebook", "≤ 0.15", walls["noop"], notebook, 0.15),
        Row("3a", "`render.map_cmap` changed, `dvc repro` ÷ notebook", "≤ 0.25", walls["map_cmap"], notebook, 0.25),
        Row("3b", "`render.filter_cmap` changed, `dvc repro` ÷ notebook", "≤ 0.25",
            walls["filter_cmap"], notebook, 0.25),
        Row("4", "one layer added to `layers`, `dvc repro` ÷ that clone's full run", "≤ 0.5",
            walls["add_layer"], walls["full"], 0.5),
        Row("5", "one 64-map grid to PNG: project mosaic ÷ notebook's 8×8 subplot loop", "≤ 0.125",
            stats(render[0]), stats(render[1]), 0.125),
    ]  # fmt: skip
    for role, (ours, theirs) in data.items():
        rows.append(
            Row(f"6 {role}", f"statistics, 4 conv/pool layers, {role} model ÷ bare batched forward pass", "≤ 1.5",
                stats(ours), stats(theirs), 1.5)
        )  # fmt: skip
    for n, peaks in rss.items():
        rows.append(
            Row(f"7 N={n:,}", "peak RSS of (6), trained model, fresh process (vs the notebook's peak RSS)",
                "≤ 2048 MB", stats(peaks), notebook_rss, 2048.0, "MB", absolute=True)
        )  # fmt: skip
    rows.append(
        Row("7 flat", f"peak RSS at N={large:,} ÷ at N={small:,}", "≤ 1.25 (flat in N)",
            stats(rss[large]), stats(rss[small]), 1.25, "MB")
    )  # fmt: skip
    for role, (with_, without) in examples.items():
        rows.append(
            Row(f"8 {role}", f"(6) with the dataset examples (top k per channel), {role} model ÷ (6) without",
                "≤ 1.2", stats(with_), stats(without), 1.2)
        )  # fmt: skip
    for roles, (walls, ascents) in amax.items():
        models = "trained model" if roles == "trained" else "trained and untrained models"
        rows.append(
            Row(f"9 {roles}", f"activation maximization, all 32 + 64 channels of conv2d and conv2d_1, {models}: "
                "fresh process, TensorFlow's import included (vs the gradient ascent alone)",
                "≤ 30 s", stats(walls), stats(ascents), 30.0, absolute=True)
        )  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runs = 1 if args.quick else args.runs
    render_runs = 2 if args.quick else max(5, runs)
    command = "python -m bench" + "".join(f" {a}" for a in (sys.argv[1:] if argv is None else argv))
    load_before, started = load_average(), time.time()
    say(f"{command}: {runs} run(s); clones of {PROJECT} in a temp dir")
    with tempfile.TemporaryDirectory(prefix="convlens-bench-") as tmp:
        scratch = Path(tmp)
        pipe = PipelineResults()
        for i in range(runs):
            say(f"rows 1–4, series {i + 1}/{runs}")
            root = one_series(i, scratch, args.mirror, args.notebook, pipe, say)
        render = bench_render(args.mirror, scratch / "render", render_runs, say)
        data, inp = bench_dataset(root, runs, QUICK_LIMIT if args.quick else None, say)
        examples = bench_examples(root, runs, QUICK_LIMIT if args.quick else None, say)
        rss = bench_rss(root, QUICK_SIZES if args.quick else SIZES, runs, say)
        amax = bench_activation_max(args.mirror, runs, say)
    rows = build_rows(pipe, render, data, rss, examples, amax)
    text = compose(rows, pipe, inp, command, args.quick, load_before, time.time() - started, render_runs, EXPLAIN, rss)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    say(f"wrote {args.out}")
    for row in rows:
        print(f"  {row.key:>12}  ratio {row.ratio:7.3f}  met: {row.met}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
