"""CIFAR-10 and CIFAR-100's python archives, read without unpickling them and without extracting them.

The archive (a ``.tar.gz``) is streamed member by member: a member named with ``..`` or an absolute path, a link,
a device or a member over ``MEMBER_CAP`` is refused with one line; the batches are read through
:func:`convlens.data.unpickle.load_plain` and must hold a CIFAR batch's data and labels, and no key CIFAR's lack.
"""

from __future__ import annotations

import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from convlens.data.unpickle import load_plain
from convlens.errors import ConvlensError, size_text

# The largest member read: CIFAR-100's training batch is 155 MB (50,000 × 3,072 pixels and the labels).
MEMBER_CAP = 512 << 20
MAX_MEMBERS = 1000  # CIFAR-10's archive has 8, CIFAR-100's 5
SIDE = 32
PIXELS = 3 * SIDE * SIDE


@dataclass(frozen=True)
class Layout:
    """Which members make each split, which holds the class names, and what a batch's dict holds."""

    splits: dict[str, tuple[str, ...]]
    meta: str
    names_key: str
    labels_key: str
    batch_keys: frozenset[str]


LAYOUTS = {
    "cifar10": Layout(
        {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)},
        "batches.meta",
        "label_names",
        "labels",
        frozenset({"batch_label", "labels", "data", "filenames"}),
    ),
    "cifar100": Layout(
        {"train": ("train",), "test": ("test",)},
        "meta",
        "fine_label_names",
        "fine_labels",
        frozenset({"batch_label", "fine_labels", "coarse_labels", "data", "filenames"}),
    ),
}


class CifarError(ConvlensError):
    """The archive is not a CIFAR python archive, or holds something it must not."""


REBUILD = "make the archive again from the batch files themselves (tar czf FILE.tar.gz FOLDER)"


def fix(own: bool, yours: str, original: str = "use the original archive") -> str:
    """What mends the archive: ``yours`` for the user's own file (``data.path``), ``original`` for the download."""
    return yours if own else original


def check_member(member: tarfile.TarInfo, source: str, own: bool = False) -> None:
    """A member that may be read: a plain file or folder, inside the archive, at most ``MEMBER_CAP`` bytes
    (``own``: the archive is the user's ``data.path``, which messages tell them how to mend)."""
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts:
        raise CifarError(f"{source}: member {member.name!r} points outside the archive; refused, {fix(own, REBUILD)}")
    if not (member.isfile() or member.isdir()):
        kind = "a link" if member.issym() or member.islnk() else "not a regular file"
        raise CifarError(f"{source}: member {member.name!r} is {kind}; refused, {fix(own, REBUILD)}")
    if member.size > MEMBER_CAP:
        mend = fix(own, "put fewer images in it, or save your arrays as an NPZ (-S data=npz, 4 GiB an array)")
        raise CifarError(
            f"{source}: member {member.name!r} is {size_text(member.size)}, over the {size_text(MEMBER_CAP)} a CIFAR "
            f"member may be (a tar bomb?); refused, {mend}"
        )


def read_members(path: Path, wanted: set[str], own: bool = False) -> dict[str, bytes]:
    """The bytes of the members of the tar archive ``path`` whose file name is in ``wanted`` (every member
    checked with :func:`check_member`, none written to disk)."""
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(path, mode="r|*") as archive:
            for count, member in enumerate(archive, 1):
                if count > MAX_MEMBERS:
                    raise CifarError(f"{path}: more than {MAX_MEMBERS} members; not a CIFAR archive")
                check_member(member, str(path), own)
                name = PurePosixPath(member.name).name
                if member.isfile() and name in wanted:
                    if name in found:
                        raise CifarError(f"{path}: member {name} is there twice; {fix(own, 'keep one of them')}")
                    stream = archive.extractfile(member)
                    found[name] = stream.read() if stream is not None else b""
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        mend = fix(own, "point data.path at the whole .tar.gz (tar tzf FILE lists it)", "delete it and fetch it again")
        raise CifarError(f"{path}: not a readable tar archive ({e}); {mend}") from e
    return found


def _text(value: Any) -> str | None:
    """A pickled name (bytes in Python 2 pickles) as text; None if it is not one."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value if isinstance(value, str) else None


def _keys(batch: Any, source: str, own: bool = False) -> dict[str, Any]:
    """A pickled dict with its keys as text."""
    if not isinstance(batch, dict) or not all(_text(k) is not None for k in batch):
        mend = fix(own, "pickle each batch as a dict with str keys, as CIFAR's")
        raise CifarError(f"{source} holds {type(batch).__name__}, not a CIFAR dict; {mend}")
    return {_text(k): v for k, v in batch.items()}


def parse_batch(batch: Any, layout: Layout, source: str, own: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A batch dict as images N×32×32×3 uint8 and labels N: its keys CIFAR's batches' (``data`` and the labels at
    least, what ``keras.datasets``' loader reads: a batch of your own may leave out ``filenames`` and the rest)."""
    batch = _keys(batch, source, own)
    needed = {"data", layout.labels_key}  # what Keras's own loader reads; the rest may be left out, not replaced
    if not needed <= set(batch) <= layout.batch_keys:
        raise CifarError(
            f"{source} holds the keys {sorted(batch)}, not a CIFAR batch's {sorted(layout.batch_keys)} (data and "
            f"{layout.labels_key} at least); check data.format (cifar10 or cifar100) and "
            f"{fix(own, 'the keys of your batches')}"
        )
    data, labels = batch["data"], batch[layout.labels_key]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        shown = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        mend = fix(own, f"save data as uint8 rows of {PIXELS} pixels, channels first, as CIFAR's")
        raise CifarError(f"{source}: data is {shown}, not uint8 N×{PIXELS} pixels; {mend}")
    if not isinstance(labels, list) or not all(type(label) is int for label in labels) or len(labels) != len(data):
        raise CifarError(
            f"{source}: {layout.labels_key} is not a list of {len(data)} integers, one per image; "
            f"{fix(own, 'save the labels as a list of int')}"
        )
    images = data.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), np.asarray(labels, dtype=np.int64)


def parse_names(meta: Any, layout: Layout, source: str, own: bool = False) -> list[str]:
    """The class names of a meta dict (``label_names`` or ``fine_label_names``)."""
    names = _keys(meta, source, own).get(layout.names_key)
    if not isinstance(names, list) or not names or any(_text(n) is None for n in names):
        mend = fix(own, f"give it {layout.names_key}, a list of str")
        raise CifarError(f"{source} has no list of class names ({layout.names_key}); {mend}")
    return [_text(n) for n in names]  # type: ignore[misc]


def read_cifar(path: Path, fmt: str, own: bool = False) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str]]:
    """The train and test splits (images, labels) of a CIFAR python archive and its class names (``own``: the
    archive is the user's ``data.path``, not the download)."""
    layout = LAYOUTS[fmt]
    wanted = {layout.meta, *(name for names in layout.splits.values() for name in names)}
    members = read_members(path, wanted, own)
    absent = sorted(wanted - set(members))
    if absent:
        raise CifarError(f"{path} has no {', '.join(absent)}; it is not the {fmt} python archive (check data.format)")
    splits = {}
    for split, names in layout.splits.items():
        parts = [parse_batch(load_plain(members[n], f"{path}:{n}", own), layout, f"{path}:{n}", own) for n in names]
        splits[split] = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    meta = f"{path}:{layout.meta}"
    names = parse_names(load_plain(members[layout.meta], meta, own), layout, meta, own)
    return splits, names
