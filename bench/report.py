"""The results table and the machine description, as Markdown (``bench/results.md``)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .measure import PROJECT, Stats, stats

PACKAGES = ("tensorflow-cpu", "tensorflow", "keras", "dvc", "numpy", "matplotlib", "hydra-core", "omegaconf")


@dataclass(frozen=True)
class Row:
    """One line of the table: our side against the yardstick, the ratio of medians checked against ``limit``."""

    key: str
    what: str
    target: str
    ours: Stats
    theirs: Stats
    limit: float | None  # None: for information only
    unit: str = "s"
    absolute: bool = False  # ``limit`` bounds our max in ``unit``, not the ratio

    @property
    def ratio(self) -> float:
        return self.ours.median / self.theirs.median

    @property
    def ratio_min(self) -> float:
        return self.ours.min / self.theirs.min

    @property
    def met(self) -> bool | None:
        if self.limit is None:
            return None
        return (self.ours.max if self.absolute else self.ratio) <= self.limit

    def cells(self) -> list[str]:
        met = {True: "**yes**", False: "**no**", None: "—"}[self.met]
        return [
            self.key,
            self.what,
            self.target,
            f"{self.ours.show()} {self.unit}",
            f"{self.theirs.show()} {self.unit}",
            f"{self.ratio:.3f}",
            f"{self.ratio_min:.3f}",
            met,
        ]


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def _proc_field(path: str, key: str) -> str:
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith(key):
            return line.split(":", 1)[1].strip()
    return "?"


def load_average() -> str:
    """The 1/5/15-minute load averages (the machine is shared)."""
    return " ".join(Path("/proc/loadavg").read_text(encoding="utf-8").split()[:3])


def cpu_pressure() -> str:
    """Linux PSI: the share of time runnable tasks waited for a CPU (10 s / 60 s / 300 s averages)."""
    path = Path("/proc/pressure/cpu")
    if not path.is_file():
        return "not available"
    some = path.read_text(encoding="utf-8").splitlines()[0].split()[1:4]
    return "some " + " / ".join(f"{v.split('=')[1]} %" for v in some) + " (10 s / 60 s / 300 s)"


def machine() -> list[str]:
    """CPU, cores, memory, OS."""
    mem_gib = int(_proc_field("/proc/meminfo", "MemTotal").split()[0]) / 2**20
    return [
        f"CPU: {_proc_field('/proc/cpuinfo', 'model name')}",
        f"cores: {os.cpu_count()} (usable by this process: {len(os.sched_getaffinity(0))})",
        f"memory: {mem_gib:.1f} GiB",
        f"OS: {platform.platform()}",
    ]


def versions() -> str:
    """Python and the packages that matter, from their metadata (nothing imported)."""
    found = [f"Python {platform.python_version()} ({sys.executable})"]
    for name in PACKAGES:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def git_commit(rev: str = "HEAD") -> str:
    """The commit the clones were made from, and whether the working tree had other changes."""
    head = subprocess.run(["git", "rev-parse", rev], cwd=PROJECT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=PROJECT, capture_output=True, text=True).stdout
    note = "" if rev == "HEAD" else f" (`--rev {rev}`)"
    return head + note + (" (working tree had uncommitted changes; clones use the commit)" if dirty.strip() else "")


def notebook_split(outputs: list[str]) -> tuple[Stats, Stats] | None:
    """The notebook's own report of its import time and work time (``imports Xs, work Ys``)."""
    found = [re.search(r"imports ([\d.]+)s, work ([\d.]+)s", out) for out in outputs]
    pairs = [(float(m[1]), float(m[2])) for m in found if m]
    if not pairs:
        return None
    return stats([p[0] for p in pairs]), stats([p[1] for p in pairs])
