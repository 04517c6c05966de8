"""NPZ files in ``keras.datasets``' layout (``x_train``, ``y_train``, ``x_test``, ``y_test``, optionally
``class_names``), read with ``allow_pickle=False``: every member's header is checked before its data is read."""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from convlens.errors import ConvlensError, size_text

ARRAYS = ("x_train", "y_train", "x_test", "y_test")
NAMES = "class_names"
MEMBER_CAP = 4 << 30  # the most one array may hold: a split's images, writer.SPLIT_CAP
LAYOUT = "an NPZ holds x_train, y_train, x_test, y_test (and class_names), as np.savez(FILE, x_train=..., ...)"


class NpzError(ConvlensError):
    """The file is not an NPZ of plain arrays in ``keras.datasets``' layout."""


def check_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, source: str, cap: int = MEMBER_CAP) -> None:
    """A member whose ``.npy`` header declares a plain (never object) array no larger than it is, and under ``cap``."""
    name = info.filename.removesuffix(".npy")
    with archive.open(info) as stream:
        try:
            version = np.lib.format.read_magic(stream)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_header(stream)
        except (ValueError, OSError, EOFError, zlib.error) as e:
            raise NpzError(f"{source}: {name} is not a NumPy array ({str(e).splitlines()[0]}); {LAYOUT}") from e
    if dtype.hasobject:
        raise NpzError(
            f"{source}: {name} holds Python objects ({dtype}), which only unpickling could read; refused: save plain "
            "arrays (uint8 images, integer labels, str class names)"
        )
    size = math.prod(shape) * dtype.itemsize
    declared = f"{source}: {name} declares {shape} {dtype} ({size_text(size)})"
    if size > info.file_size:
        raise NpzError(f"{declared}, but the member has {info.file_size} bytes; the file is corrupt")
    if size > cap:
        raise NpzError(
            f"{declared}, over the {size_text(cap)} one array may hold; too large: save fewer or smaller images"
        )


def read_npz(path: Path) -> tuple[dict[str, np.ndarray], list[str] | None]:
    """The four arrays of an NPZ file by name, and its class names (None when it has none)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
            unknown = sorted(set(members) - {*ARRAYS, NAMES})
            absent = [name for name in ARRAYS if name not in members]
            if unknown or absent:
                said = f"has no {', '.join(absent)}" if absent else f"holds {', '.join(unknown)}"
                raise NpzError(f"{path} {said}; {LAYOUT}")
            for info in members.values():
                check_member(archive, info, str(path))
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in ARRAYS}
            names = npz[NAMES] if NAMES in members else None
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, ValueError) as e:
        raise NpzError(f"{path} is not a readable NPZ file ({str(e).splitlines()[0]}); {LAYOUT}") from e
    return arrays, None if names is None else class_names(names, str(path))


def class_names(names: np.ndarray, source: str) -> list[str]:
    """An NPZ's ``class_names`` (a vector of str or bytes) as a list of non-empty, distinct names."""
    if names.ndim != 1 or names.dtype.kind not in "US" or not len(names):
        raise NpzError(f"{source}: class_names is {names.dtype} {names.shape}; it must be a vector of names (str)")
    texts = [n.decode("utf-8", errors="replace") if isinstance(n, bytes) else str(n) for n in names.tolist()]
    if any(not t.strip() for t in texts) or len(set(texts)) != len(texts):
        raise NpzError(f"{source}: class_names has an empty or repeated name ({texts}); give each class its own name")
    return texts
