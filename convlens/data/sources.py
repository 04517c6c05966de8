"""``fetch_data``'s one call: the configured data (``data.format``: IDX, NPZ, CIFAR or an image folder; downloaded
and checksummed, or the user's ``data.path``) read, checked, and written as convlens's ``.npy`` splits and
``classes.json``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convlens.checks import data_location
from convlens.data import folder
from convlens.data.cifar import LAYOUTS, read_cifar
from convlens.data.fetch import RemoteFile, keras_datasets, offline_message, search_dirs, try_all
from convlens.data.idx import check_images_labels, read_idx
from convlens.data.npz import read_npz
from convlens.data.pixels import as_images, as_labels, check_labels, check_pairs, image_shape, shape_text, transformed
from convlens.data.writer import Summary, write_classes, write_split
from convlens.errors import ConvlensError

SPLITS = ("train", "test")


@dataclass(frozen=True)
class Split:
    """One split as read: its labels, the shape each image is written in, its images in chunks (lazily), and where
    its labels are, as messages say it."""

    labels: np.ndarray
    shape: tuple[int, ...]
    chunks: Callable[[], Iterable[np.ndarray]]
    labels_from: str


def local_files(data: Mapping[str, Any], root: Path, also: RemoteFile | None = None) -> dict[str, Path]:
    """The data's files by role (``path`` for the user's own), each downloaded or found with its checksum.

    Every file is tried before failing; ``also`` (the book's model) is looked for only when one is missing, so one
    line names everything an offline user must copy."""
    if data["path"] is not None:
        return {"path": data_location(root, data["path"], directory=data["format"] == "folder")}
    dirs = search_dirs(root, extra=keras_datasets())
    remotes = {
        role: RemoteFile(
            spec["name"], spec["sha256"], tuple(url + spec["name"] for url in data["urls"]), data["subdir"] or ""
        )
        for role, spec in data["files"].items()
    }
    found, missing = try_all([(remote, dirs) for remote in remotes.values()])
    if missing and also is not None:
        missing = try_all([(also, search_dirs(root))])[1] + missing
    if missing:
        raise ConvlensError(offline_message(missing))
    return {role: path for role, path in zip(remotes, found, strict=True) if path is not None}


def array_splits(
    arrays: Mapping[str, tuple[np.ndarray, np.ndarray]],
    where: Mapping[str, tuple[str, str]],
    resize: Any,
    color: str,
) -> dict[str, Split]:
    """Arrays read whole (IDX, NPZ, CIFAR) as splits: checked, and changed in chunks only when asked; ``where``
    names each split's images and labels as messages say them."""
    splits = {}
    for split, (raw_images, raw_labels) in arrays.items():
        images = as_images(raw_images, where[split][0])
        labels = as_labels(raw_labels, where[split][1])
        check_pairs(images, labels, split, where[split])
        splits[split] = Split(
            labels,
            image_shape(images.shape[1:], resize, color),
            lambda i=images: transformed(i, resize, color),
            where[split][1],
        )
    train, test = (splits[s].shape for s in SPLITS)
    if train != test:
        raise ConvlensError(
            f"train images are {shape_text(train)} but test images are {shape_text(test)}; "
            "set data.resize=[H,W] (and data.color) to make them one shape"
        )
    return splits


def read_arrays(
    fmt: str, files: Mapping[str, Path]
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, tuple[str, str]], list[str] | None]:
    """The train and test arrays of an IDX, NPZ or CIFAR source, where each split's images and labels came from,
    and the data's own class names (None when it has none)."""
    if fmt == "idx":
        arrays = {s: (read_idx(files[f"{s}_images"]), read_idx(files[f"{s}_labels"])) for s in SPLITS}
        for split, (images, labels) in arrays.items():
            check_images_labels(images, labels, split)
        return arrays, {s: (files[f"{s}_images"].name, files[f"{s}_labels"].name) for s in SPLITS}, None
    path = files.get("path") or files["archive"]
    if fmt == "npz":
        members, names = read_npz(path)
        return (
            {s: (members[f"x_{s}"], members[f"y_{s}"]) for s in SPLITS},
            {s: (f"{path}: x_{s}", f"{path}: y_{s}") for s in SPLITS},
            names,
        )
    arrays, names = read_cifar(path, fmt, own="path" in files)
    labels = {s: f"{path}: the labels of {', '.join(LAYOUTS[fmt].splits[s])}" for s in SPLITS}
    return arrays, {s: (f"{path}: {s} images", labels[s]) for s in SPLITS}, names


def folder_splits(data: Mapping[str, Any], top: Path) -> tuple[dict[str, Split], list[str]]:
    """An image folder's splits (every header read, nothing decoded yet) and its class names."""
    entries, names = folder.scan(top, data["test_fraction"], data["seed"])
    entries = {split: [folder.measured(e) for e in found] for split, found in entries.items()}
    shape = folder.common_shape(entries, data["resize"], data["color"])
    return {
        split: Split(
            np.array([e.label for e in found], dtype=np.int64),
            shape,
            lambda f=found, s=split: folder.decoded(f, shape, data["resize"], data["color"], f"{s}: decoding"),
            f"the class folders of {top}",
        )
        for split, found in entries.items()
    }, names


def class_names(
    configured: Sequence[str] | None, found: list[str] | None, splits: Mapping[str, Split]
) -> tuple[list[str], str]:
    """The class names by label, and what named them: ``data.classes``, else the data's own, else 0..K-1."""
    if configured is not None:
        return [str(name) for name in configured], "data.classes"
    if found is not None:
        return found, "the data's own class names"
    top = max(int(s.labels.max()) for s in splits.values())
    return [str(i) for i in range(top + 1)], "the labels"


def write_dataset(data: Mapping[str, Any], root: Path, out: Path, also: RemoteFile | None = None) -> list[Summary]:
    """The data ``data`` configures, read and checked, written into ``out`` (``fetch_data``'s staging dir)."""
    files = local_files(data, root, also)
    if data["format"] == "folder":
        splits, found = folder_splits(data, files["path"])
    else:
        arrays, where, found = read_arrays(data["format"], files)
        splits = array_splits(arrays, where, data["resize"], data["color"])
    names, named_by = class_names(data["classes"], found, splits)
    for split, part in splits.items():
        check_labels(part.labels, len(names), split, named_by, part.labels_from)
    summaries = [write_split(out, s, part.shape, part.chunks(), part.labels, len(names)) for s, part in splits.items()]
    write_classes(out, names)
    return summaries
