"""Choosing the images to look at, and turning pixels into model inputs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import ConvlensError
from .schema import SCHEMA

SCALE_KEY = "input.scale"  # the config key of the pixel divisor, as messages name it


def check_samples(samples: Sequence[int], n: int, split: str) -> np.ndarray:
    """``samples.indices`` (the schema has checked the list) as an array, each within the split's ``n`` images."""
    check = SCHEMA["samples.indices"]
    check("samples.indices", list(samples))
    for s in samples:
        if not s < n:
            raise ConvlensError(f"sample index {s} is out of range: the {split} split has images 0..{n - 1}")
    return np.asarray(samples, dtype=np.int64)


def check_scale(scale: object) -> float:
    """The configured pixel divisor, checked as the schema checks ``input.scale``."""
    SCHEMA[SCALE_KEY](SCALE_KEY, scale)
    return float(scale)


def model_inputs(images: np.ndarray, scale: float) -> np.ndarray:
    """Pixels (N, H, W) → float32 inputs (N, H, W, 1) divided by ``scale`` (the book's ``/ 255.0``)."""
    x = np.asarray(images, dtype=np.float32) / np.float32(check_scale(scale))
    return x[..., np.newaxis] if x.ndim == 3 else x
