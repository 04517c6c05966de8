"""Choosing the images to look at, and turning pixels into model inputs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import ConvlensError


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


def model_inputs(images: np.ndarray, scale: float) -> np.ndarray:
    """Pixels (N, H, W) → float32 inputs (N, H, W, 1) divided by ``scale`` (the book's ``/ 255.0``)."""
    if scale <= 0:
        raise ConvlensError(f"feature_maps.scale must be positive, got {scale}")
    x = np.asarray(images, dtype=np.float32) / np.float32(scale)
    return x[..., np.newaxis] if x.ndim == 3 else x
