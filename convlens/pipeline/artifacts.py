"""Reading the pipeline's own artifacts back: arrays that earlier stages wrote under ``outputs/``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from convlens.pipeline import paths
from convlens.pipeline.files import read_json


def load_kernels(root: Path, role: str) -> dict[str, np.ndarray]:
    """The kernels saved by the weight stages (``analysis.weights.write_weight_artifacts``), by layer name, in layer
    order."""
    folder = paths.weights_dir(root, role)
    return {
        name: np.load(folder / f"{paths.layer_stem(name)}.kernel.npy") for name in read_json(folder / "layers.json")
    }


def load_samples(root: Path) -> tuple[np.ndarray, dict]:
    """The chosen sample images and their index (split, sample ids, labels), saved by the samples stage."""
    index = read_json(paths.samples_dir(root) / "index.json")
    return np.load(paths.samples_dir(root) / "images.npy"), index
