"""The DVC repository's lock, held by a stage while it runs, and the check that its params did not move.

DVC releases its repository lock (``.dvc/tmp/lock``) while a stage's command runs, so without this a
``dvc exp run`` started meanwhile rewrote ``params.yaml`` under the running stage, and DVC then recorded the
stage's outputs under params it never ran with. A stage takes the same lock (DVC's backend, ``zc.lockfile``,
is an exclusive ``flock`` on that file): any DVC command started while it runs waits 3 s, as DVC does, and
fails with DVC's own "Unable to acquire lock" before it changes anything.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from convlens.errors import ConvlensError
from convlens.schema import flatten

DVC_LOCK = Path(".dvc") / "tmp" / "lock"  # dvc/repo/__init__.py: Repo.lock, under Repo.tmp_dir
WAIT_SECONDS = 3.0  # DVC's own wait for its lock (dvc/lock.py: DEFAULT_TIMEOUT)


@contextmanager
def repository_lock(root: Path, wait: float = WAIT_SECONDS) -> Iterator[Path | None]:
    """Hold DVC's lock of the repository at ``root`` (``None`` outside a DVC repository) while the block runs."""
    if not (root / ".dvc").is_dir():
        yield None
        return
    path = root / DVC_LOCK
    try:
        path.parent.mkdir(exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise ConvlensError(f"cannot open DVC's lock {path}: {e.strerror}; check the permissions of .dvc/tmp") from e
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() >= deadline:
                    raise ConvlensError(
                        f"another DVC command holds this repository's lock ({path}); wait for it to end, then run "
                        "again (`dvc repro`)"
                    ) from e
                time.sleep(0.25)
        yield path
    finally:
        os.close(fd)  # releases the lock


def params_drift(ran_with: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """What changed between the params a stage ran with and ``params.yaml`` now: ``["untrained.seed 43 → 42"]``."""
    before, after = flatten(ran_with), flatten(now)
    missing = "(absent)"
    return [
        f"{key} {before.get(key, missing)!r} → {after.get(key, missing)!r}"
        for key in sorted(before.keys() | after.keys())
        if before.get(key, missing) != after.get(key, missing)
    ]


def check_params_unchanged(ran_with: Mapping[str, Any], now: Mapping[str, Any]) -> None:
    """Refuse to let a stage end well (DVC would record its outputs) when ``params.yaml`` moved while it ran."""
    drift = params_drift(ran_with, now)
    if drift:
        raise ConvlensError(
            f"params.yaml changed while this stage ran ({'; '.join(drift)}), so its outputs do not match the params "
            "DVC would record; nothing is recorded: check params.yaml, then run `dvc repro` again"
        )
