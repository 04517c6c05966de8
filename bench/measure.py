"""Measuring one command (wall time, peak RSS) and summarising repeated measurements."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Run:
    """One finished command: wall seconds, peak RSS in MB (the largest process of its tree), output."""

    wall_s: float
    maxrss_mb: float
    output: str


class CommandFailed(RuntimeError):
    """A measured command exited non-zero."""


SAMPLE_S = 0.02  # how often the process tree's peak RSS is read


def _children(pid: int) -> list[int]:
    """The pids ``pid``'s threads forked (``/proc/PID/task/TID/children``; empty once it is gone)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as f:
                found += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return found


def _hwm_kb(pid: int) -> int:
    """``VmHWM`` of ``pid`` in kB: the peak RSS the kernel keeps for its current program (reset by ``exec``),
    0 when it is gone or has no memory (a zombie)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreePeak:
    """Samples, in a thread, the ``VmHWM`` of a process and of all its descendants every ``SAMPLE_S``; ``peak_kb`` is
    the largest one seen: the peak RSS of the largest process of the tree.

    Why not ``ru_maxrss`` (``wait4``, ``RUSAGE_CHILDREN``): ``exec`` keeps the high-water mark of the memory it
    replaces, and a forked child's memory starts as a copy of its parent's, so a small child of a large parent (this
    process, with TensorFlow loaded) reports the parent's peak. ``VmHWM`` belongs to the program the process runs.
    A process's growth in its last ``SAMPLE_S`` before it exits can be missed."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreePeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        todo, seen = [self.pid], set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            self.peak_kb = max(self.peak_kb, _hwm_kb(pid))
            todo += _children(pid)

    def _loop(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(SAMPLE_S):
                return


def run_measured(cmd: Sequence[str], cwd: Path, env: Mapping[str, str]) -> Run:
    """Run ``cmd`` and measure it: wall clock from the parent, peak RSS by ``TreePeak`` (every measured row)."""
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT, text=True)
        with TreePeak(proc.pid) as peak:
            proc.wait()
        wall = time.perf_counter() - start
        log.seek(0)
        output = log.read()
    if proc.returncode != 0:
        raise CommandFailed(f"{' '.join(map(str, cmd))} (in {cwd}) exited {proc.returncode}:\n{output[-3000:]}")
    return Run(wall, peak.peak_kb / 1024, output)


def du_mb(path: Path) -> float:
    """``du -sk PATH`` in MB (MiB): the disk space a folder takes."""
    done = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[0]) / 1024


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
