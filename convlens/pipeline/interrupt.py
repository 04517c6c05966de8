"""Ctrl-C in a stage: one line, never a traceback, whenever it comes (while the stage imports its libraries too).

DVC passes Ctrl-C on to the stage it runs. ``config.run_stage`` catches it once the stage has started; a stage
interrupted before that, while Python imports numpy, Hydra or matplotlib (a large share of a short stage's life),
would print a traceback of import machinery. ``stages/__init__.py`` installs :func:`interrupt_hook` first.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

INTERRUPTED = 130  # a shell's exit status after SIGINT (128 + 2)


def stage_label(stage: str, args: Sequence[str]) -> str:
    """How a stage's lines start: its name, with a ``foreach`` stage's item (``feature_maps@conv2d``); the
    arguments holding ``=`` are config overrides, not items."""
    return "@".join([stage, *(a for a in args if "=" not in a)])


RESTORE = "git checkout HEAD -- params.yaml dvc.lock outputs, then dvc checkout"


def run_by(env: Mapping[str, str], cwd: Path) -> str:
    """Who runs the stage, from what DVC sets: ``"hand"`` (no ``DVC_STAGE``), ``"copy"`` (a queued experiment in its
    own copy of the project: ``DVC_ROOT`` names the repository it came from, not ``cwd``), ``"exp"`` (``dvc exp
    run`` in the workspace: ``DVC_EXP_NAME``), else ``"repro"``."""
    if not env.get("DVC_STAGE"):
        return "hand"
    origin = env.get("DVC_ROOT")
    if origin and Path(origin).resolve() != cwd.resolve():
        return "copy"
    return "exp" if env.get("DVC_EXP_NAME") else "repro"


def interrupted_line(label: str, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> str:
    """The one line of an interrupted stage (``env``, ``cwd``: this process's by default): what became of its
    outputs and the way back. On its own, the old outputs stay (``files.staged_dir``); under DVC, DVC deleted them
    before running the stage (not those ``dvc.yaml`` marks ``persist``), and a git-tracked (``cache: false``) one
    comes back only from git; a queued experiment's copy is not the workspace. Under ``dvc exp run``, ``dvc
    repro`` would run the experiment's params outside it."""
    by = run_by(os.environ if env is None else env, Path.cwd() if cwd is None else cwd)
    if by == "hand":
        return f"{label}: interrupted; no output was written, rerun dvc repro"
    if by == "copy":
        return (
            f"{label}: interrupted in a queued experiment's own copy of the project; the workspace is untouched: "
            "queue it again with dvc exp run --queue and the same -S options, then dvc queue start"
        )
    again = "dvc exp run with the same -S options" if by == "exp" else "dvc repro"
    return (
        f"{label}: interrupted; DVC had deleted this stage's outputs before running it (all but those dvc.yaml marks "
        f"persist): rerun {again}, or go back to the last commit: {RESTORE}"
    )


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
