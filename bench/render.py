"""Row 5: one 64-map grid, the project's mosaic renderer against the notebook's 8×8 subplot loop."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from convlens.data.idx import read_idx
from convlens.model.archive import Archive
from convlens.model.forward import load_network
from convlens.model.inputs import model_inputs
from convlens.render.figures import map_key, mosaic_figure
from convlens.render.grids import feature_map_grid

DPI = 100  # the notebook's savefig default (rcParams figure.dpi), passed to both sides


def conv2d_1_maps(mirror: Path) -> np.ndarray:
    """The book's second feature-map figure's data: conv2d_1 of training image 0, (14, 14, 64)."""
    images = read_idx(mirror / "fashion-mnist" / "train-images-idx3-ubyte.gz")
    network = load_network(Archive.read(mirror / "best-cnn-model.keras"), upto="conv2d_1")
    return network.activations(model_inputs(images[:1], 255.0), ["conv2d_1"])[0][0]


def project_grid(maps: np.ndarray, path: Path) -> None:
    """What render_maps draws: one mosaic, its tile indices and its colourbar on one matplotlib layer over it."""
    image, grid = feature_map_grid(maps, None)
    mosaic_figure(image, path, "viridis", "trained conv2d_1 (14, 14, 64)", 1.5, grid, DPI, map_key(maps))


def notebook_grid(maps: np.ndarray, path: Path) -> None:
    """The notebook's loop (notebook_baseline.py, conv2_maps.png): 64 axes, one ``imshow`` each."""
    _, axs = plt.subplots(8, 8, figsize=(12, 12))
    for i in range(8):
        for j in range(8):
            axs[i, j].imshow(maps[:, :, i * 8 + j])
            axs[i, j].axis("off")
    plt.savefig(path, dpi=DPI)
    plt.close("all")


def _timed(draw: Callable[[np.ndarray, Path], None], maps: np.ndarray, path: Path) -> float:
    start = time.perf_counter()
    draw(maps, path)
    if not path.is_file():
        raise RuntimeError(f"{path} was not written")
    return time.perf_counter() - start


def bench_render(mirror: Path, scratch: Path, runs: int, say: Callable[[str], None]) -> tuple[list[float], list[float]]:
    """``runs`` timings of each renderer, interleaved, after one untimed warm-up of each (fonts, colormaps)."""
    maps = conv2d_1_maps(mirror)
    scratch.mkdir(parents=True, exist_ok=True)
    ours: list[float] = []
    theirs: list[float] = []
    for draw, tag in ((project_grid, "project"), (notebook_grid, "notebook")):
        _timed(draw, maps, scratch / f"warmup-{tag}.png")
    for i in range(runs):
        pair = [(project_grid, ours, "project"), (notebook_grid, theirs, "notebook")]
        for draw, into, tag in pair if i % 2 == 0 else pair[::-1]:
            into.append(_timed(draw, maps, scratch / f"{tag}-{i}.png"))
        say(f"row 5 run {i + 1}/{runs}: project {ours[-1]:.3f} s, notebook loop {theirs[-1]:.3f} s")
    return ours, theirs
