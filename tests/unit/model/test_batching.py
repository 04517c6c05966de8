"""A streamed pass holds one batch of a memory-mapped split, not every page it has read (issue 25: RSS flat in N)."""

import sys
from pathlib import Path

import numpy as np
import pytest

from convlens.model.batching import release_pages

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads RssFile from /proc/self/status")


def file_backed_rss() -> int:
    """Bytes of this process's memory that are pages of mapped files (Linux's RssFile)."""
    status = Path("/proc/self/status").read_text(encoding="utf-8")
    return next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("RssFile:"))


def test_the_pages_a_memory_mapped_split_has_read_are_released_and_its_values_stay(tmp_path):
    image = (np.arange(784) % 251).astype(np.uint8).reshape(28, 28)
    images = np.broadcast_to(image, (85_000, 28, 28)).copy()  # 64 MiB of "images"
    images[:, 0, 0] = np.arange(85_000) % 256
    np.save(tmp_path / "train_images.npy", images)
    mapped = np.load(tmp_path / "train_images.npy", mmap_mode="r")
    before = file_backed_rss()
    assert int(mapped[: len(mapped) // 2].sum(dtype=np.int64)) > 0  # half the file read: its pages resident
    read = file_backed_rss()
    release_pages(mapped[:10])  # a slice of the map releases the whole mapping's pages
    released = file_backed_rss()
    assert read - before > 24 * 2**20 and read - released > 24 * 2**20
    np.testing.assert_array_equal(mapped[-3:], images[-3:])  # read again (from the page cache) as they were
    release_pages(images)  # an array in memory: nothing to release, nothing changes
    assert images[5, 3, 4] == 3 * 28 + 4 and mapped[300, 0, 0] == 300 % 256
