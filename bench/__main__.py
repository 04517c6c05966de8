"""``python -m bench [--runs N] [--quick] [--out PATH]``: issue 25's acceptance table (the pipeline against the
chapter's notebook, same-run ratios), written as Markdown."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from .dataset import bench_rss
from .dataset_pass import bench_dataset_pass
from .explain import EXPLAIN
from .measure import PROJECT, Run, stats
from .notes import compose
from .pipeline import CHANGES, PipelineResults, base_env, one_series, stage_breakdown
from .report import Row, load_average

SIZES = [1_000, 10_000, 60_000]
QUICK_SIZES = [1_000, 3_000]  # at least two batches of dataset.batch_size: one more is in flight from the second
TARGETS = {  # issue 25's acceptance table: series → (target as written, limit); the yardstick is the notebook
    "full": ("≤ 3.0", 3.0),
    "chapter": ("≤ 1.2", 1.2),
    "map_cmap": ("≤ 0.35", 0.35),
    "filter_cmap": ("≤ 0.8", 0.8),
    "add_layer": ("≤ 0.8", 0.8),
    "noop": ("≤ 0.15", 0.15),
}
SEED_LIMIT = 0.4  # row 3: the seed change ÷ the cold full run
DATASET_LIMIT = 1.2  # row 8: the dataset pass ÷ Keras predict
REPORT_LIMIT_MB = 10.0  # row 9
RSS_LIMIT_MB = 2048.0  # row 10, each N
FLAT = 1.25  # row 10: peak RSS at the largest N ÷ at the smallest


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="repetitions of every measurement (default 3)")
    parser.add_argument(
        "--quick", action="store_true",
        help="smoke run: 1 repetition, small N in row 10, no per-stage breakdown; not for reporting",
    )  # fmt: skip
    parser.add_argument("--rev", default="HEAD", help="the project commit the clones check out (default HEAD)")
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


def _walls(runs: list[Run]):
    return stats([r.wall_s for r in runs])


def build_rows(
    pipe: PipelineResults, dataset: tuple[list[Run], list[Run], list[str]], rss: dict[int, list[float]]
) -> list[Row]:
    """Issue 25's table, in its order, then row 10 (peak RSS flat in N)."""
    from .pipeline import CHAPTER_TARGETS, SERIES

    walls = {name: _walls(runs) for name, runs in pipe.series.items()}
    notebook = _walls(pipe.notebook)
    by = {c.series: c for c in CHANGES}

    def vs_notebook(key: str, series: str, what: str) -> Row:
        target, limit = TARGETS[series]
        return Row(key, f"{what} ÷ notebook", target, walls[series], notebook, limit)

    ours, keras, stages = dataset
    report_default = stats(pipe.report_mb["full"])
    rows = [
        vs_notebook("1", "full", "cold `make run` (`dvc repro`) from a fresh clone, default config"),
        vs_notebook("2", "chapter", f"the chapter's own stages alone: `dvc repro {' '.join(CHAPTER_TARGETS)}` from a "
                    "fresh clone"),
        Row("3", f"{SERIES['seed']}, {by['seed'].shown()} ÷ that clone's cold full run", f"≤ {SEED_LIMIT}",
            walls["seed"], walls["full"], SEED_LIMIT),
        vs_notebook("4", "map_cmap", f"{SERIES['map_cmap']}, {by['map_cmap'].shown()}"),
        vs_notebook("5", "filter_cmap", f"{SERIES['filter_cmap']}, {by['filter_cmap'].shown()}"),
        vs_notebook("6", "add_layer", f"one layer added, {by['add_layer'].shown()}"),
        vs_notebook("7", "noop", "nothing changed, `dvc repro`"),
        Row("8", f"dataset pass, 10,000 images, both models: {' + '.join(f'`{s}`' for s in stages)} as processes ÷ "
            "Keras `predict` of both models (a process each side, imports included)", f"≤ {DATASET_LIMIT}",
            _walls(ours), _walls(keras), DATASET_LIMIT),
        Row("9", f"report size at {len(by['samples'].overrides[0].split(','))} samples: the page, "
            "`outputs/report/index.html`, after "
            f"{by['samples'].shown()} (vs the default config's report)", f"≤ {REPORT_LIMIT_MB:g} MB",
            stats(pipe.report_mb["samples"]), report_default, REPORT_LIMIT_MB, "MB", absolute=True),
    ]  # fmt: skip
    notebook_rss = stats([r.maxrss_mb for r in pipe.notebook])
    for n, peaks in rss.items():
        rows.append(
            Row(f"10 N={n:,}", "peak RSS of the dataset statistics, trained model, fresh process (vs the notebook's "
                "peak RSS)", f"≤ {RSS_LIMIT_MB:g} MB", stats(peaks), notebook_rss, RSS_LIMIT_MB, "MB", absolute=True)
        )  # fmt: skip
    small, large = min(rss), max(rss)
    rows.append(
        Row("10 flat", f"peak RSS at N={large:,} ÷ at N={small:,}", f"≤ {FLAT} (flat in N)",
            stats(rss[large]), stats(rss[small]), FLAT, "MB")
    )  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runs = 1 if args.quick else args.runs
    command = "python -m bench" + "".join(f" {a}" for a in (sys.argv[1:] if argv is None else argv))
    load_before, started = load_average(), time.time()
    say(f"{command}: {runs} run(s); clones of {PROJECT} in a temp dir")
    with tempfile.TemporaryDirectory(prefix="convlens-bench-") as tmp:
        scratch = Path(tmp)
        pipe = PipelineResults()
        for i in range(runs):
            say(f"pipeline rows, series {i + 1}/{runs}")
            root = one_series(i, scratch, args.mirror, args.notebook, pipe, say, args.rev)
        env = {**base_env(args.mirror), "CONVLENS_CACHE": str(root.parent / "download-cache")}
        dataset = bench_dataset_pass(root, env, runs, say)
        rss = bench_rss(root, QUICK_SIZES if args.quick else SIZES, runs, say)
        if not args.quick:
            for i in range(runs):
                say(f"stages standalone, {i + 1}/{runs}")
                stage_breakdown(root, scratch / f"stages{i}", args.mirror, pipe, say, args.rev)
    rows = build_rows(pipe, dataset, rss)
    text = compose(
        rows, pipe, dataset[2], command, args.quick, load_before, time.time() - started, EXPLAIN, rss, args.rev
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    say(f"wrote {args.out}")
    for row in rows:
        print(f"  {row.key:>12}  ratio {row.ratio:7.3f}  met: {row.met}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
