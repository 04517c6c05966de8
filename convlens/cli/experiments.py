"""The experiments as one readable table: ``python -m convlens experiments [--metrics A,B] [--hide P,Q]``.

One row per run (the baseline commit and each experiment of ``dvc exp show``): its name, the params whose
values differ between runs, then a few metrics, in at most 120 columns. Built on ``dvc exp show --json``.
Not a DVC stage: it reads what DVC recorded.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from convlens.cli.exp_table import DEFAULT_HIDDEN, DEFAULT_METRICS, WIDTH, exp_table_text
from convlens.errors import ConvlensError
from convlens.pipeline.config import project_root


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


def names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m convlens experiments", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--metrics",
        type=names,
        default=list(DEFAULT_METRICS),
        help=f"comma-separated (default: {','.join(DEFAULT_METRICS)}); <file>:<metric> picks a file",
    )
    parser.add_argument(
        "--hide",
        type=names,
        default=list(DEFAULT_HIDDEN),
        help=f"params never shown (default: {','.join(DEFAULT_HIDDEN)})",
    )
    parser.add_argument("--width", type=int, default=WIDTH, help=f"the most columns the table takes (default: {WIDTH})")
    args = parser.parse_args(argv)
    try:
        print(exp_table_text(exp_show_records(), args.metrics, args.hide, args.width))
    except ConvlensError as e:
        print(f"experiments: error: {e}", file=sys.stderr)
        sys.exit(1)
