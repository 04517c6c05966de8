"""Measuring one command (wall time, peak RSS) and summarising repeated measurements."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Run:
    """One finished command: wall seconds, peak RSS in MB (the process and its waited-for children), output."""

    wall_s: float
    maxrss_mb: float
    output: str


class CommandFailed(RuntimeError):
    """A measured command exited non-zero."""


def run_measured(cmd: Sequence[str], cwd: Path, env: Mapping[str, str]) -> Run:
    """Run ``cmd`` and measure it; ``os.wait4`` gives the peak RSS of the process tree (Linux: max over children)."""
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        output = log.read()
    if proc.returncode != 0:
        raise CommandFailed(f"{' '.join(map(str, cmd))} (in {cwd}) exited {proc.returncode}:\n{output[-3000:]}")
    return Run(wall, usage.ru_maxrss / 1024, output)


def run_quiet(cmd: Sequence[str], cwd: Path, env: Mapping[str, str]) -> str:
    """Run an unmeasured helper command (git, dvc checkout), failing loudly."""
    done = subprocess.run(cmd, cwd=cwd, env=dict(env), capture_output=True, text=True)
    if done.returncode != 0:
        raise CommandFailed(f"{' '.join(map(str, cmd))} (in {cwd}) exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done.stdout


@dataclass(frozen=True)
class Stats:
    """Min, median and max of repeated measurements."""

    values: tuple[float, ...]

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def max(self) -> float:
        return max(self.values)

    def show(self, digits: int = 3) -> str:
        """``min / median / max``."""
        return " / ".join(f"{v:.{digits}g}" if v < 10 ** (digits - 1) else f"{v:.0f}" for v in self.triple())

    def triple(self) -> tuple[float, float, float]:
        return self.min, self.median, self.max


def stats(values: Sequence[float]) -> Stats:
    """The summary of ``values`` (at least one)."""
    if not values:
        raise ValueError("no measurements")
    return Stats(tuple(values))
