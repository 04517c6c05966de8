"""Compare two runs' per-layer statistics: ``python -m convlens compare A [B]``.

A and B are git revisions, experiment names (``dvc exp show``) or ``workspace`` (B's default).
Writes ``outputs/compare/<A>_vs_<B>.csv`` (every statistic of every model and layer: both values,
change, relative change) and ``.png`` (the statistics that changed, by how much). Not a DVC stage:
it reads the metrics DVC recorded for each run.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

from convlens.compare import changed, compare_statistics, statistic_rows
from convlens.config import project_root
from convlens.errors import ConvlensError
from convlens.files import atomic_path

log = logging.getLogger("compare")


def run_metrics(root: Path, rev: str) -> dict:
    """The metrics files of one run, as DVC recorded them (``workspace``: the files on disk)."""
    from dvc.repo import Repo
    from dvc.scm import RevError

    try:
        shown = Repo(str(root)).metrics.show(revs=[rev])
    except RevError as e:
        raise ConvlensError(f"{e}; name a git revision, an experiment (dvc exp show) or workspace") from e
    files = shown.get(rev, {}).get("data", {})
    broken = [path for path, entry in files.items() if "error" in entry]
    if broken or not files:
        raise ConvlensError(f"{rev} has no readable metrics ({', '.join(broken) or 'none'}); run dvc repro first")
    return {path: entry["data"] for path, entry in files.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m convlens compare", description=__doc__.splitlines()[0])
    parser.add_argument("a", help="the first run: git revision, experiment name or workspace")
    parser.add_argument("b", nargs="?", default="workspace", help="the second run (default: workspace)")
    parser.add_argument("--out", type=Path, default=Path("outputs/compare"), help="folder for the CSV and PNG")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="compare: %(message)s", stream=sys.stdout, force=True)
    try:
        root = project_root()
        table = compare_statistics(statistic_rows(run_metrics(root, args.a)), statistic_rows(run_metrics(root, args.b)))
        from convlens.figures import comparison_figure

        stem = re.sub(r"[^\w.-]+", "_", f"{args.a}_vs_{args.b}")
        out = args.out if args.out.is_absolute() else root / args.out
        with atomic_path(out / f"{stem}.csv") as tmp:
            table.to_csv(tmp, index=False)
        diff = changed(table)
        title = f"{args.a} → {args.b}: {len(diff)} of {len(table)} statistics changed"
        comparison_figure(diff if len(diff) else table.head(0), out / f"{stem}.png", (args.a, args.b), title)
        log.info("%s; wrote %s.csv and .png in %s", title, stem, out)
    except ConvlensError as e:
        print(f"compare: error: {e}", file=sys.stderr)
        sys.exit(1)
