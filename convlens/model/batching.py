"""Batches that fit in memory: how many images' activations a batch may hold, and the batches themselves."""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from tqdm import tqdm

from convlens.errors import ConvlensError
from convlens.model.forward import Activations

# A batch holds every layer's output up to the deepest one asked for, plus the temporaries of a
# convolution (its input padded; its products only a few images at a time): about this many times their sum.
# The dataset pass keeps two batches in flight (``analysis.dataset.PASS_WORKERS``) within it: 2,000 images of
# the book's model add 821 MB to the process, against 1,171 MB estimated (one batch at a time, before: 1,081 MB).
WORKING_COPIES = 3


def bytes_per_image(network: Activations, sample: np.ndarray) -> int:
    """The bytes one image's activations take on their way through ``network``, measured on ``sample``."""
    outputs = network.activations(sample[:1], network.names)
    return WORKING_COPIES * (int(sample[:1].astype(np.float32).nbytes) + sum(int(o.nbytes) for o in outputs))


def available_memory(meminfo: Path = Path("/proc/meminfo")) -> int:
    """Bytes of memory free for new work (Linux's ``MemAvailable``), or 4 GiB where the system does not say."""
    try:
        with open(meminfo, encoding="utf-8") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return 4 << 30


def fit_batch_size(requested: int, per_image: int, available: int, key: str) -> tuple[int, str | None]:
    """``requested``, or the largest batch whose activations fit in half of ``available`` memory, with the
    log line that says so. Never below 1: a single image that does not fit is for the OS to refuse."""
    fits = max(1, available // 2 // max(per_image, 1))
    if requested <= fits:
        return requested, None
    gib = 1 << 30
    return fits, (
        f"{key}={requested} would need {requested * per_image / gib:.1f} GiB of activations, more than half of "
        f"the {available / gib:.1f} GiB available; using batches of {fits}"
    )


def batches(n: int, batch_size: int) -> Iterator[slice]:
    """Slices covering ``range(n)`` in batches of ``batch_size``."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConvlensError(f"batch_size must be a positive integer, got {batch_size!r}")
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def batches_with_progress(n: int, batch_size: int, label: str) -> Iterator[slice]:
    """:func:`batches`, with a progress bar named ``label`` on a terminal's stderr, cleared when done."""
    yield from tqdm(list(batches(n, batch_size)), desc=label, unit="batch", leave=False, disable=None)


def release_pages(array: np.ndarray) -> None:
    """Drop from this process's memory the pages a memory-mapped ``array`` (``np.load(..., mmap_mode="r")``, or a
    slice of one) has read so far: a pass over a split then holds one batch of the file, not every page it has
    touched (60,000 Fashion-MNIST images: 47 MB). The kernel's page cache keeps them, so nothing is read from disk
    again; an array that is not memory-mapped is left as it is."""
    mapping = getattr(array, "_mmap", None)  # numpy.memmap's mapping of the whole file
    if isinstance(mapping, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        mapping.madvise(mmap.MADV_DONTNEED)


def cpu_count() -> int:
    """The CPUs this process may run on (its affinity where the OS tells it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextmanager
def blas_threads(threads: int) -> Iterator[None]:
    """NumPy's BLAS (OpenBLAS, MKL…) limited to ``threads`` threads inside the block, as it was after it. For a pass
    whose own threads each run one batch: a BLAS that also starts a thread per CPU in each of them runs more threads
    than CPUs, and its threads' wait for one another stalls a product by a scheduler slice whenever one is preempted
    (a 32 × 64 product of 4,096 rows took 8 ms instead of 0.2 ms on 2 busy cores)."""
    from threadpoolctl import threadpool_limits  # 13 ms to import: only for the passes that use it

    with threadpool_limits(threads, user_api="blas"):
        yield
