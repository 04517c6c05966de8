"""The experiments as one readable table: ``python -m convlens experiments [--metrics A,B] [--hide P,Q] [--show R]``.

One row per run (the baseline commit and each experiment of ``dvc exp show``): its name, the params whose
values differ between runs (a training recipe's also where it differs from ``conf/``'s), the model file's hash where
one model path held different files, then a few metrics (by default the kernels' std and the maps' mean of each
run's first layer, trained and untrained), in at most 120 columns. Built on ``dvc exp show --json``.
Not a DVC stage: it reads what DVC recorded.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from convlens.cli.exp_table import DEFAULT_HIDDEN, WIDTH, experiments_text, flatten
from convlens.errors import ConvlensError
from convlens.pipeline.config import project_root, read_yaml
from convlens.schema import RECIPE


def exp_show_records() -> list[dict]:
    """``dvc exp show --json``, parsed (run with this Python's DVC, from the project root)."""
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "exp", "show", "--json"],
        cwd=project_root(),
        capture_output=True,
        text=True,
        encoding="utf-8",
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ConvlensError(f"dvc exp show failed: {last}")
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError as e:
        raise ConvlensError(f"dvc exp show --json printed no JSON ({e})") from e


def recipe_defaults() -> dict[str, object]:
    """The training recipe of ``conf/`` (``conf/train/default.yaml``), flat: ``{"train.epochs": 20, …}``; a trained
    run's param that differs from it shows in the table even where no other run was trained."""
    path = project_root() / "conf" / RECIPE / "default.yaml"
    return flatten({RECIPE: read_yaml(path)}) if path.is_file() else {}


def names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m convlens experiments", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--metrics",
        type=names,
        default=None,
        help="comma-separated; <file>:<metric> picks a file (default: std and map_mean of each run's first layer, "
        "trained and untrained: the book's trained.conv2d.std,untrained.conv2d.std,trained.conv2d.map_mean,"
        "untrained.conv2d.map_mean)",
    )
    parser.add_argument(
        "--hide",
        type=names,
        default=[],
        help=f"params never shown (default: {','.join(DEFAULT_HIDDEN)}; those named here are hidden too)",
    )
    parser.add_argument("--show", type=names, default=[], help="params hidden by default that the table shows")
    parser.add_argument("--width", type=int, default=WIDTH, help=f"the most columns the table takes (default: {WIDTH})")
    args = parser.parse_args(argv)
    try:
        records = exp_show_records()
        print(experiments_text(records, args.metrics, args.hide, args.show, args.width, recipe_defaults()))
    except ConvlensError as e:
        print(f"experiments: error: {e}", file=sys.stderr)
        sys.exit(1)
