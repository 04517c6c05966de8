"""Ctrl-C in a stage: one line, never a traceback, whenever it comes (while the stage imports its libraries too).

DVC passes Ctrl-C on to the stage it runs. ``config.run_stage`` catches it once the stage has started; a stage
interrupted before that, while Python imports numpy, Hydra or matplotlib (a large share of a short stage's life),
would print a traceback of import machinery. ``stages/__init__.py`` installs :func:`interrupt_hook` first.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

INTERRUPTED = 130  # a shell's exit status after SIGINT (128 + 2)


def stage_label(stage: str, args: Sequence[str]) -> str:
    """How a stage's lines start: its name, with a ``foreach`` stage's item (``feature_maps@conv2d``); the
    arguments holding ``=`` are config overrides, not items."""
    return "@".join([stage, *(a for a in args if "=" not in a)])


def interrupted_line(label: str) -> str:
    """The one line of an interrupted stage: what to rerun (under ``dvc exp run``, which sets DVC_EXP_NAME, the
    experiment: ``dvc repro`` would run its params outside it)."""
    again = "dvc exp run with the same -S options" if os.environ.get("DVC_EXP_NAME") else "dvc repro"
    return f"{label}: interrupted; no output was written, rerun {again}"


def running_stage(argv: Sequence[str]) -> str | None:
    """The stage this process runs (``python -m stages.<name>`` sets ``argv[0]`` to its script), else None."""
    package = getattr(sys.modules.get("stages"), "__file__", None)
    script = Path(argv[0]) if argv and argv[0] not in ("", "-c", "-m") else None
    if package is None or script is None or script.suffix != ".py":
        return None
    return script.stem if script.resolve().parent == Path(package).resolve().parent else None


def interrupt_hook(
    kind: type[BaseException], value: BaseException, traceback: TracebackType | None, default=sys.__excepthook__
) -> None:
    """``sys.excepthook`` for the stages: a Ctrl-C no ``run_stage`` caught is one line; anything else, and any
    process that is not a stage, as Python prints it. Python then exits by SIGINT, as a shell expects."""
    stage = running_stage(sys.argv)
    if stage is not None and issubclass(kind, KeyboardInterrupt):
        print(interrupted_line(stage_label(stage, sys.argv[1:])), file=sys.stderr)
        return
    default(kind, value, traceback)
