"""Choosing the images to look at, and turning pixels into model inputs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import ConvlensError

SCALE_KEY = "feature_maps.scale"  # the config key of the pixel divisor, as messages name it


def check_samples(samples: Sequence[int], n: int, split: str) -> np.ndarray:
    """The sample indices as an array, after checking each is an integer in 0..n-1."""
    if len(samples) == 0:
        raise ConvlensError("samples is empty; list at least one image index, e.g. samples='[0]'")
    for s in samples:
        if isinstance(s, bool) or not isinstance(s, int):
            raise ConvlensError(f"sample {s!r} is not an integer index; use e.g. samples='[0,1]'")
        if not 0 <= s < n:
            raise ConvlensError(f"sample index {s} is out of range: the {split} split has images 0..{n - 1}")
    if len(set(samples)) != len(samples):
        raise ConvlensError(f"samples {list(samples)} lists an image twice; list each index once")
    return np.asarray(samples, dtype=np.int64)


def check_scale(scale: object) -> float:
    """The configured pixel divisor, a positive number."""
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not scale > 0:
        raise ConvlensError(f"{SCALE_KEY} must be positive, got {scale}")
    return float(scale)


def model_inputs(images: np.ndarray, scale: float) -> np.ndarray:
    """Pixels (N, H, W) → float32 inputs (N, H, W, 1) divided by ``scale`` (the book's ``/ 255.0``)."""
    x = np.asarray(images, dtype=np.float32) / np.float32(check_scale(scale))
    return x[..., np.newaxis] if x.ndim == 3 else x
