"""Atomic writes: an artifact is either complete and in place, or absent.

Each artifact is built in a staging area and renamed into place only when complete. The area is
``<repo>/.dvc/tmp/convlens/.convlens-tmp.<pid>.XXXXXXXX/`` in the nearest DVC repository holding the output
(git-ignored, never seen by DVC; a queued experiment's workspace has its own ``.dvc``), or, outside a DVC
repository, on another file system or behind a mount point that a rename cannot cross (a bind mount of the same
file system: ``EXDEV``, found by the first rename that fails), a hidden ``.convlens-tmp.<pid>.XXXXXXXX/`` beside
the output. A process holds a ``flock`` on its area while it stages anything, so the next write removes only the
areas of processes that were killed, never another live process's.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convlens.errors import ConvlensError

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

SCRATCH = Path(".dvc", "tmp", "convlens")
AREA_PREFIX = ".convlens-tmp."
OWNER = "owner"
_areas: dict[Path, tuple[Path, int, list[int]]] = {}  # scratch dir -> (this process's area, its lock fd, [users])
_beside: set[Path] = set()  # folders a rename from the scratch dir could not reach (EXDEV): staged beside the output


def _write_error(path: Path, e: OSError) -> ConvlensError:
    if isinstance(e, FileExistsError | NotADirectoryError) and e.filename:
        return ConvlensError(f"cannot write {path}: {e.filename} is a file where a directory must be; remove it")
    return ConvlensError(f"cannot write {path}: {e.strerror or e}; check free space and permissions")


def scratch_dir(parent: Path) -> Path:
    """Where outputs in ``parent`` are staged: the nearest DVC repo's ``.dvc/tmp/convlens`` if it is on the same
    file system as ``parent`` (a rename must not cross file systems), else ``parent`` itself."""
    for folder in (parent, *parent.parents):
        if (folder / ".dvc").is_dir():
            scratch = folder / SCRATCH
            scratch.mkdir(parents=True, exist_ok=True)
            return scratch if scratch.stat().st_dev == parent.stat().st_dev else parent
    return parent


def _remove_dead_areas(scratch: Path) -> list[Path]:
    """Delete the staging areas in ``scratch`` whose process is gone (its ``flock`` released); return them."""
    removed = []
    for area in scratch.glob(f"{glob.escape(AREA_PREFIX)}*"):
        try:
            fd = os.open(area / OWNER, os.O_RDONLY)
        except FileNotFoundError:
            fd = None  # killed between creating the area and locking it (both happen under the scratch lock)
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a live process is staging there
        finally:
            if fd is not None:
                os.close(fd)
        log.info("removing %s, left by an interrupted run", area)
        shutil.rmtree(area, ignore_errors=True)
        removed.append(area)
    return removed


def _claim_area(scratch: Path) -> tuple[Path, int]:
    """A fresh staging area in ``scratch``, locked by this process; dead processes' areas are removed first."""
    lock = os.open(scratch, os.O_RDONLY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one process at a time cleans and claims
        _remove_dead_areas(scratch)
        area = Path(tempfile.mkdtemp(dir=scratch, prefix=f"{AREA_PREFIX}{os.getpid()}."))
        fd = os.open(area / OWNER, os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(lock)  # closing the fd releases the flock
    return area, fd


@contextmanager
def _staging_area(parent: Path) -> Iterator[Path]:
    """This process's staging area for outputs in ``parent``; removed when its last user is done."""
    parent = parent.resolve()
    behind_a_mount = any(parent.is_relative_to(folder) for folder in _beside)
    scratch = parent if behind_a_mount else scratch_dir(parent)
    if scratch not in _areas:
        _areas[scratch] = (*_claim_area(scratch), [0])
    area, fd, users = _areas[scratch]
    users[0] += 1
    try:
        yield area
    finally:
        users[0] -= 1
        if not users[0]:
            del _areas[scratch]
            shutil.rmtree(area, ignore_errors=True)
            os.close(fd)


def _inside_an_area(path: Path) -> bool:
    """Whether ``path`` is already inside one of this process's staging areas (a file of a staged dir)."""
    return any(path.resolve().is_relative_to(area) for area, _, _ in _areas.values())


def remove_leftovers(parent: Path, prefix: str, suffix: str = "") -> list[Path]:
    """Delete temp files or dirs that a killed run of an older convlens left beside an artifact (``prefix`` +
    8 random chars + ``suffix``, the names ``tempfile`` gave them); return what was removed."""
    pattern = re.compile(rf"{re.escape(prefix)}[a-z0-9_]{{8}}{re.escape(suffix)}")
    removed = [p for p in parent.glob(f"{glob.escape(prefix)}*") if pattern.fullmatch(p.name)]
    for leftover in removed:
        log.info("removing %s, left by an interrupted run", leftover)
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover)
        else:
            leftover.unlink(missing_ok=True)
    return removed


def _area_for(path: Path, stack: ExitStack, legacy_suffix: str = "") -> Path:
    """Where to stage ``path``: beside it if it is a file of a dir this process is staging, else this process's
    staging area (entered on ``stack``). An older convlens's leftovers beside ``path`` are removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if _inside_an_area(path.parent):
        return path.parent
    remove_leftovers(path.parent, f".{path.stem if legacy_suffix else path.name}.", legacy_suffix)
    return stack.enter_context(_staging_area(path.parent))


def _crosses_a_mount(e: OSError) -> bool:
    """Whether a rename failed only because it crossed a mount point (``EXDEV``): a bind mount of the same file
    system has the same ``st_dev``, so :func:`scratch_dir` cannot tell it from the outside."""
    return e.errno == errno.EXDEV


def _restage(tmp: Path, path: Path, stack: ExitStack) -> Path:
    """``tmp`` moved (copied, the rename having failed) into this process's staging area beside ``path``, whose
    folder a rename from the scratch dir cannot reach; later outputs in that folder are staged beside at once."""
    _beside.add(path.parent.resolve())
    area = stack.enter_context(_staging_area(path.parent))
    return Path(shutil.move(tmp, area / tmp.name))


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp file (``path``'s suffix) in the staging area; rename it onto ``path`` only if the block succeeds."""
    with ExitStack() as stack:
        try:
            area = _area_for(path, stack, path.suffix)
            fd, name = tempfile.mkstemp(dir=area, prefix=f"{path.stem}.", suffix=path.suffix)
        except OSError as e:
            raise _write_error(path, e) from e
        os.close(fd)
        tmp = Path(name)
        try:
            yield tmp
            os.chmod(tmp, 0o644)
            try:
                os.replace(tmp, path)
            except OSError as e:
                if not _crosses_a_mount(e):
                    raise
                tmp = _restage(tmp, path, stack)
                os.replace(tmp, path)
        except OSError as e:
            raise _write_error(path, e) from e
        finally:
            tmp.unlink(missing_ok=True)


@contextmanager
def staged_dir(path: Path) -> Iterator[Path]:
    """Yield an empty dir in the staging area; it replaces ``path`` only if the block succeeds.

    The old ``path`` is first renamed into the staging area, so a kill at any moment leaves ``path``
    complete (old or new) or absent, never half-deleted; the next write removes what the kill left there.
    """
    with ExitStack() as stack:
        try:
            area = _area_for(path, stack)
            tmp = Path(tempfile.mkdtemp(dir=area, prefix=f"{path.name}."))
        except OSError as e:
            raise _write_error(path, e) from e
        trashes: list[Path] = []
        try:
            yield tmp
            os.chmod(tmp, 0o755)
            path.parent.mkdir(parents=True, exist_ok=True)  # a nested layer's folder: feature_maps/outer/inner
            trashes.append(Path(tempfile.mkdtemp(dir=area, prefix=f"{path.name}.old.")))
            try:
                _swap_in(tmp, path, trashes[-1])
            except OSError as e:
                if not _crosses_a_mount(e):
                    raise
                tmp = _restage(tmp, path, stack)
                trashes.append(Path(tempfile.mkdtemp(dir=tmp.parent, prefix=f"{path.name}.old.")))
                _swap_in(tmp, path, trashes[-1])
        except OSError as e:
            raise _write_error(path, e) from e
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            for trash in trashes:
                shutil.rmtree(trash, ignore_errors=True)


def _swap_in(tmp: Path, path: Path, trash: Path) -> None:
    """Rename the dir ``tmp`` onto ``path``, an old ``path`` first moved into the empty dir ``trash`` (and put back
    if the rename fails)."""
    old = path.exists()
    if old:
        os.replace(path, trash / path.name)
    try:
        os.replace(tmp, path)
    except OSError:
        if old:
            os.replace(trash / path.name, path)
        raise


def write_json(path: Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write row dicts as a CSV table (columns in order of appearance; NaN, None and absent keys as empty cells)."""
    import csv

    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for row in rows for k in row)), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: "" if v is None or (isinstance(v, float) and math.isnan(v)) else v for k, v in row.items()}
            )


REMAKE = "it is a pipeline output: remake it with `dvc repro --force` of the stage that writes it (dvc.yaml)"


def read_csv_columns(path: Path, columns: Sequence[str]) -> np.ndarray:
    """The named columns of a CSV table as a float array (rows × columns); empty cells are NaN. A missing file,
    column or a cell that is not a number is one :class:`ConvlensError` naming the file."""
    import csv

    import numpy as np  # here, not at the top: the stages that never read a table start without numpy

    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        table = [[float(row[c]) if row[c] else np.nan for c in columns] for row in rows]
    except FileNotFoundError as e:
        raise ConvlensError(f"{path} is missing; run the stage that makes it first (dvc repro)") from e
    except KeyError as e:
        raise ConvlensError(f"{path} has no column {e.args[0]!r}; {REMAKE}") from e
    except (ValueError, TypeError, UnicodeDecodeError, csv.Error) as e:  # TypeError: a row shorter than the header
        raise ConvlensError(f"{path} holds a cell that is not a number ({e}); {REMAKE}") from e
    return np.array(table, dtype=np.float64).reshape(len(rows), -1)


def parse_yaml(text: str) -> Any:
    """YAML text, parsed by libyaml where PyYAML has it (~8× faster than PyYAML's own parser; stages read several
    files at start-up)."""
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConvlensError(f"{path} is missing; run the stage that makes it first (dvc repro)") from e
    except (ValueError, UnicodeDecodeError) as e:  # json.JSONDecodeError is a ValueError
        raise ConvlensError(f"{path} is not valid JSON ({e}); {REMAKE}") from e
