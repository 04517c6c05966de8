"""Tiny datasets in each format ``fetch_data`` reads, written by the tests: NPZ files, CIFAR python archives
(pickled batches in a ``.tar.gz``), image folders."""

from __future__ import annotations

import io
import pickle
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

CIFAR = {  # format: (folder in the archive, batch members by split, meta member, names key, labels key)
    "cifar10": (
        "cifar-10-batches-py",
        {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
        "batches.meta",
        b"label_names",
        b"labels",
    ),
    "cifar100": (
        "cifar-100-python",
        {"train": ["train"], "test": ["test"]},
        "meta",
        b"fine_label_names",
        b"fine_labels",
    ),
}


def rgb(n: int, side: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, side, side, 3), dtype=np.uint8)


def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """An NPZ holding ``arrays`` by name, as ``np.savez`` writes it."""
    np.savez(path, **arrays)
    return path


def keras_npz(path: Path, n_train: int = 6, n_test: int = 4, classes: int = 3, **extra: np.ndarray) -> dict:
    """A ``keras.datasets``-style NPZ of gray 8×8 images; returns the arrays it holds."""
    rng = np.random.default_rng(1)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 8, 8), dtype=np.uint8),
        "y_train": (np.arange(n_train) % classes).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 8, 8), dtype=np.uint8),
        "y_test": (np.arange(n_test)[::-1] % classes).astype(np.uint8),
        **extra,
    }
    write_npz(path, arrays)
    return arrays


def cifar_batch(images: np.ndarray, labels: Sequence[int], fmt: str) -> dict:
    """A batch dict as CIFAR's python archives pickle it (bytes keys, rows of 3,072 channel-first pixels)."""
    batch = {
        b"batch_label": b"training batch 1 of 1",
        b"data": np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(len(images), -1)),
        b"filenames": [f"img_{i}.png".encode() for i in range(len(images))],
        CIFAR[fmt][4]: [int(label) for label in labels],
    }
    if fmt == "cifar100":
        batch[b"coarse_labels"] = [0] * len(labels)
    return batch


def add_member(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def cifar_archive(
    path: Path,
    fmt: str,
    splits: Mapping[str, tuple[np.ndarray, np.ndarray]],
    names: Sequence[str],
    replace: Mapping[str, bytes] | None = None,
    extra: Sequence[tarfile.TarInfo] = (),
) -> Path:
    """A CIFAR python archive holding ``splits`` (a split's batches: its images cut in as many parts) and ``names``;
    ``replace``: a member's bytes instead; ``extra``: more members (links, …) first."""
    top, members, meta, names_key, _ = CIFAR[fmt]
    payloads = {}
    for split, (images, labels) in splits.items():
        parts = np.array_split(np.arange(len(images)), len(members[split]))
        for member, part in zip(members[split], parts, strict=True):
            payloads[member] = pickle.dumps(cifar_batch(images[part], labels[part], fmt), protocol=3)
    payloads[meta] = pickle.dumps({names_key: [n.encode() for n in names], b"num_vis": 3072}, protocol=3)
    payloads.update(replace or {})
    with tarfile.open(path, "w:gz") as archive:
        for info in extra:
            archive.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
        for member, data in payloads.items():
            add_member(archive, f"{top}/{member}", data)
    return path


def tiny_cifar(path: Path, fmt: str = "cifar10", **kwargs) -> tuple[dict, list[str]]:
    """A tiny CIFAR archive of random 32×32 RGB images (6 train, 3 test, 3 classes); returns what it holds."""
    splits = {
        "train": (rgb(6, seed=2), np.array([0, 1, 2, 2, 1, 0])),
        "test": (rgb(3, seed=3), np.array([2, 0, 1])),
    }
    names = ["airplane", "bird", "cat"]
    cifar_archive(path, fmt, splits, names, **kwargs)
    return splits, names


def write_image(path: Path, pixels: np.ndarray) -> Path:
    """``pixels`` (H×W gray or H×W×3) saved by Pillow in the format its suffix names."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def image_folder(
    root: Path, classes: Mapping[str, Sequence[np.ndarray]], suffix: str = ".png"
) -> dict[Path, np.ndarray]:
    """``root/<class>/<i><suffix>`` for each class's images; returns the pixels by file."""
    return {
        write_image(root / name / f"{i}{suffix}", pixels): pixels
        for name, images in classes.items()
        for i, pixels in enumerate(images)
    }


def data_config(preset: str, **values) -> dict:
    """``conf/data/<preset>.yaml`` with ``values`` set (``source`` follows ``path``), checked as ``conf/`` is."""
    import yaml

    from convlens.schema import check_config
    from tests.support.helpers import PROJECT

    data = yaml.safe_load((PROJECT / "conf" / "data" / f"{preset}.yaml").read_text(encoding="utf-8"))
    if data["source"] == "${data.path}":
        data["source"] = str(values.get("path"))
    data.update(values)
    check_config({"data": data}, complete=False)
    return data


def written(out: Path) -> dict:
    """What ``write_dataset`` wrote into ``out``: each split's images and labels, and the class names."""
    import json

    arrays = {f.stem: np.load(f) for f in sorted(out.glob("*.npy"))}
    return {**arrays, "classes": json.loads((out / "classes.json").read_text(encoding="utf-8"))}


CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def tiny_presets(mirror: Path, n_train: int = 12, n_test: int = 6) -> dict[str, tuple[str, str]]:
    """Tiny stand-ins for the download presets' files (``mnist.npz``, the CIFAR archives) in ``mirror``, as a test
    repository's offline mirror holds them: ``{preset: (file name, sha256)}``. Labels cycle through every class."""
    from convlens.data.fetch import sha256sum

    rng = np.random.default_rng(7)
    labels = {split: np.arange(n) % 10 for split, n in (("train", n_train), ("test", n_test))}
    mirror.mkdir(parents=True, exist_ok=True)
    mnist = {f"x_{s}": rng.integers(0, 256, (len(y), 28, 28), dtype=np.uint8) for s, y in labels.items()}
    write_npz(mirror / "mnist.npz", {**mnist, **{f"y_{s}": y.astype(np.uint8) for s, y in labels.items()}})
    cifar = {s: (rgb(len(y), seed=i), y) for i, (s, y) in enumerate(labels.items())}
    cifar_archive(mirror / "cifar-10-python.tar.gz", "cifar10", cifar, CIFAR10_NAMES)
    cifar_archive(mirror / "cifar-100-python.tar.gz", "cifar100", cifar, [f"class_{i}" for i in range(100)])
    files = {"mnist": "mnist.npz", "cifar10": "cifar-10-python.tar.gz", "cifar100": "cifar-100-python.tar.gz"}
    return {preset: (name, sha256sum(mirror / name)) for preset, name in files.items()}


def use_tiny_presets(root: Path, mirror: Path) -> None:
    """Point a project copy's download presets at :func:`tiny_presets`' files (their sha256, no URLs), as
    ``helpers.configure`` does for Fashion-MNIST: ``-S data=cifar10`` then reads the tiny archive offline."""
    import yaml

    for preset, (name, sha256) in tiny_presets(mirror).items():
        path = root / "conf" / "data" / f"{preset}.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data["urls"], data["files"]["archive"] = [], {"name": name, "sha256": sha256}
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def write(tmp_path: Path, data: Mapping, name: str = "out") -> dict:
    """``write_dataset`` of the data config ``data`` into ``tmp_path/name``, read back (:func:`written`)."""
    from convlens.data.sources import write_dataset

    out = tmp_path / name
    out.mkdir()
    write_dataset(data, tmp_path, out)
    return written(out)


def refused(tmp_path: Path, data: Mapping) -> str:
    """The one line ``write_dataset`` refuses the data config ``data`` with (a test fails on none, or on more)."""
    import pytest

    from convlens.data.sources import write_dataset
    from convlens.errors import ConvlensError

    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    with pytest.raises(ConvlensError) as err:
        write_dataset(data, tmp_path, out)
    message = str(err.value)
    assert message and "\n" not in message
    return message
