"""One split written into ``fetch_data``'s staging dir: images streamed into a ``.npy`` memmap, never whole in
memory; labels and the class names beside them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convlens.data.pixels import label_dtype
from convlens.errors import ConvlensError, size_text
from convlens.pipeline import paths
from convlens.pipeline.files import write_json

# The most one split's images may take on disk: every stage that reads a split holds it whole in memory.
# 4 GiB is 85 times Fashion-MNIST's training images and 26 times CIFAR-10's; ImageNet-sized folders need data.resize.
SPLIT_CAP = 4 << 30


@dataclass(frozen=True)
class Summary:
    """What was written for one split, for the stage's log."""

    split: str
    count: int
    shape: tuple[int, ...]
    classes: int


def check_size(split: str, count: int, shape: Sequence[int], cap: int = SPLIT_CAP) -> None:
    """``count`` images of ``shape`` fit under ``cap`` bytes, else one line naming the fix."""
    size = count * int(np.prod(shape))
    if size > cap:
        raise ConvlensError(
            f"{split}: {count} images of {'×'.join(map(str, shape))} pixels take {size_text(size)}, over the "
            f"{size_text(cap)} a split may (every stage holds it in memory); shrink them with data.resize=[H,W]"
        )


def write_images(path: Path, count: int, shape: Sequence[int], chunks: Iterable[np.ndarray]) -> None:
    """``count`` uint8 images of ``shape`` from ``chunks`` into the ``.npy`` file ``path``, chunk by chunk.

    Written with plain file writes after the ``.npy`` header, not through a memory map, whose written pages would
    stay in this process's memory until the whole split is written: peak memory stays one chunk whatever ``count``.
    """
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False}
    done = 0
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {**header, "shape": (count, *shape)})
        for chunk in chunks:
            chunk = np.ascontiguousarray(chunk, dtype=np.uint8)
            if chunk.shape[1:] != tuple(shape) or done + len(chunk) > count:
                raise ConvlensError(
                    f"{path.name}: a chunk of {'×'.join(map(str, chunk.shape))} pixels after {done} images does not "
                    f"fit {count} images of {'×'.join(map(str, shape))}; read it again"
                )
            f.write(memoryview(chunk).cast("B"))
            done += len(chunk)
    if done != count:
        raise ConvlensError(f"{path.name}: {done} images were read where {count} were counted; read it again")


def write_split(
    out: Path, split: str, shape: Sequence[int], chunks: Iterable[np.ndarray], labels: np.ndarray, classes: int
) -> Summary:
    """A split's images (from ``chunks``) and labels (the smallest unsigned type for ``classes``) into ``out``."""
    check_size(split, len(labels), shape)
    write_images(out / paths.images_name(split), len(labels), shape, chunks)
    np.save(out / paths.labels_name(split), labels.astype(label_dtype(classes)))
    return Summary(split, len(labels), tuple(shape), classes)


def write_classes(out: Path, names: Sequence[str]) -> None:
    """The class names by label (``classes.json``)."""
    write_json(out / paths.CLASSES_NAME, list(names))
