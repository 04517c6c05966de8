"""Choosing the images to look at: the samples, and how many of a split the dataset pass streams."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from convlens.errors import ConvlensError
from convlens.schema import SCHEMA


def check_samples(samples: Sequence[int], n: int, split: str) -> np.ndarray:
    """``samples.indices`` (the schema has checked the list) as an array, each within the split's ``n`` images."""
    check = SCHEMA["samples.indices"]
    check("samples.indices", list(samples))
    for s in samples:
        if not s < n:
            raise ConvlensError(f"samples.indices: image {s} is out of range: the {split} split has images 0..{n - 1}")
    return np.asarray(samples, dtype=np.int64)


def streamed_count(limit: int | None, k: int, split: str, available: int) -> int:
    """How many of the ``available`` images of ``split`` the statistics stream: the first ``limit``
    (``dataset.limit``; ``None``: all), checked, and enough of them for ``k`` top examples per channel."""
    if limit is not None and limit > available:
        raise ConvlensError(
            f"dataset.limit={limit} is beyond the {split} split's {available} images; "
            f"use null for every image or a number up to {available}"
        )
    count = available if limit is None else limit
    if k > count:
        raise ConvlensError(
            f"dataset.examples.k={k} is more than the {count} {split} images streamed; "
            f"use dataset.examples.k={count} or less"
        )
    return count
