"""Atomic writes: an artifact is either complete and in place, or absent."""

from __future__ import annotations

import glob
import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConvlensError

log = logging.getLogger(__name__)


def _write_error(path: Path, e: OSError) -> ConvlensError:
    if isinstance(e, FileExistsError | NotADirectoryError) and e.filename:
        return ConvlensError(f"cannot write {path}: {e.filename} is a file where a directory must be; remove it")
    return ConvlensError(f"cannot write {path}: {e.strerror or e}; check free space and permissions")


def remove_leftovers(parent: Path, prefix: str, suffix: str = "") -> list[Path]:
    """Delete temp files or dirs that a killed run left beside an artifact (``prefix`` + 8 random chars + ``suffix``,
    the names ``tempfile`` gives them); return what was removed."""
    pattern = re.compile(rf"{re.escape(prefix)}[a-z0-9_]{{8}}{re.escape(suffix)}")
    removed = [p for p in parent.glob(f"{glob.escape(prefix)}*") if pattern.fullmatch(p.name)]
    for leftover in removed:
        log.info("removing %s, left by an interrupted run", leftover)
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover)
        else:
            leftover.unlink(missing_ok=True)
    return removed


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp file beside ``path``; rename it onto ``path`` only if the block succeeds."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(path.parent, f".{path.stem}.", path.suffix)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    except OSError as e:
        raise _write_error(path, e) from e
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as e:
        raise _write_error(path, e) from e
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def staged_dir(path: Path) -> Iterator[Path]:
    """Yield an empty temp dir beside ``path``; it replaces ``path`` only if the block succeeds.

    The old ``path`` is first renamed into a hidden temp dir, so a kill at any moment leaves ``path``
    complete (old or new) or absent, never half-deleted; the next run removes the hidden leftovers.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(path.parent, f".{path.name}.")
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    except OSError as e:
        raise _write_error(path, e) from e
    trash = None
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        if path.exists():
            trash = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
            os.replace(path, trash / path.name)
        try:
            os.replace(tmp, path)
        except OSError:
            if trash is not None:
                os.replace(trash / path.name, path)
            raise
    except OSError as e:
        raise _write_error(path, e) from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)


def write_json(path: Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write row dicts as a CSV table (columns in order of appearance; NaN, None and absent keys as empty cells)."""
    import csv

    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for row in rows for k in row)), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: "" if v is None or (isinstance(v, float) and math.isnan(v)) else v for k, v in row.items()}
            )


def read_csv_columns(path: Path, columns: Sequence[str]) -> np.ndarray:
    """The named columns of a CSV table as a float array (rows × columns); empty cells are NaN."""
    import csv

    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return np.array([[float(row[c]) if row[c] else np.nan for c in columns] for row in rows]).reshape(len(rows), -1)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as e:
        raise ConvlensError(f"{path} is missing; run the stage that makes it first (dvc repro)") from e
