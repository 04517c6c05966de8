"""Choosing the images to look at."""

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
            raise ConvlensError(f"sample index {s} is out of range: the {split} split has images 0..{n - 1}")
    return np.asarray(samples, dtype=np.int64)
