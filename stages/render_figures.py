"""Stage: the chapter's weight figures and sample images as PNG (feature maps: ``render_maps``; the dataset's
figures: ``render_dataset``).

Weight histograms (trained, untrained, overlaid), filter grids drawn as one mosaic image each, and the sample
images. No TensorFlow: it reads the arrays the other stages saved.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from convlens.model.layers import DEPTHWISE_KINDS
from convlens.pipeline import paths
from convlens.pipeline.artifacts import load_classes, load_kernels, load_kinds, load_samples
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import staged_dir
from convlens.render.figures import (
    FILTER_TILE_INCHES,
    filter_key,
    histogram,
    mosaic_figure,
    sample_figure,
    sample_title,
)
from convlens.render.grids import depthwise_grid, filter_grid, resolve_input_channels
from convlens.render.language import figure_language, words
from convlens.render.pool import Job, run_jobs

log = logging.getLogger(__name__)


def draw_kernel(out: Path, role: str, name: str, kernel: np.ndarray, r: DictConfig, depthwise: bool = False) -> None:
    """One model's kernel of one layer: its weight histogram, and its filters as a grid (4-D kernels only; a
    3-input-channel kernel in colour under ``rgb``, or ``auto``; a ``depthwise`` kernel as its C·m filters)."""
    t = words()
    model, mean, std = t.term("model", role), f"{np.nanmean(kernel):.4f}", f"{np.nanstd(kernel):.4f}"
    title = t("kernel_histogram_title", model=model, layer=name, mean=mean, std=std)
    histogram({role: kernel}, out / paths.histogram_name(role, name), r.hist_bins, title, r.dpi)
    if kernel.ndim != 4:
        return  # no filter grid (weight_jobs says so)
    if depthwise:  # one filter per input channel and multiplier, not input channel 0's alone
        image, grid = depthwise_grid(kernel, r.filter_columns, r.filter_vmin, r.filter_vmax)
        mode, tiles = t("depthwise_mode"), (*kernel.shape[:2], 1, kernel.shape[2] * kernel.shape[3])
    else:
        mode = resolve_input_channels(r.input_channels, kernel)  # auto: rgb for 3 input channels, else first
        image, grid = filter_grid(kernel, mode, r.filter_columns, r.filter_vmin, r.filter_vmax)
        tiles = kernel.shape
    scale = t("filter_scale_each") if mode == "rgb" else f"{r.filter_vmin}..{r.filter_vmax}"
    drawn = mode if depthwise else t.term("drawn", mode)  # first, mean, all, rgb in the figure's language
    title = t("filters_title", model=model, layer=name, shape=kernel.shape, mode=drawn, scale=scale)
    path = out / paths.filters_figure_name(role, name)
    key = filter_key(tiles, "first" if depthwise else mode, r.filter_vmin, r.filter_vmax)  # indices, colourbar
    mosaic_figure(image, path, r.filter_cmap, title, FILTER_TILE_INCHES, grid, r.dpi, key)


def draw_overlay(out: Path, name: str, overlay: dict[str, np.ndarray], r: DictConfig) -> None:
    """One layer's histograms of both models overlaid."""
    path = out / paths.histogram_overlay_name(name)
    histogram(overlay, path, r.hist_bins, words()("overlay_title", layer=name), r.dpi)


def weight_jobs(
    out: Path, kernels: dict[str, dict[str, np.ndarray]], kinds: dict[str, str | None], r: DictConfig
) -> list[Job]:
    """Every layer's kernels, trained and untrained (a job each), then both histograms overlaid (a job)."""
    jobs: list[Job] = []
    for name in kernels["trained"]:
        depthwise = kinds.get(name) in DEPTHWISE_KINDS
        for role in paths.ROLES:
            if kernels[role][name].ndim != 4:
                log.info("%s: no filter grid, its kernel is %d-D (histogram only)", name, kernels[role][name].ndim)
            jobs.append(partial(draw_kernel, out, role, name, kernels[role][name], r, depthwise))
        jobs.append(partial(draw_overlay, out, name, {role: kernels[role][name] for role in paths.ROLES}, r))
    return jobs


def sample_jobs(out: Path, images: np.ndarray, index: dict, classes: list[str], r: DictConfig) -> list[Job]:
    """The sample images (a job each), each under its split, index and class."""
    jobs: list[Job] = []
    for image, sample, label in zip(images, index["samples"], index["labels"], strict=True):
        title = sample_title(index["split"], sample, label, classes)
        jobs.append(partial(sample_figure, image, out / paths.sample_figure_name(sample), r.sample_cmap, title, r.dpi))
    return jobs


def run(cfg: DictConfig, root: Path) -> None:
    """Every figure (a kernel's histogram and filter grid together) one job, the jobs run on every usable CPU
    (:func:`convlens.render.pool.run_jobs`); both folders are replaced only once all are drawn."""
    r = cfg.render
    kernels = {role: load_kernels(root, role) for role in paths.ROLES}
    images, index = load_samples(root)
    with (
        figure_language(cfg.report.language),
        staged_dir(paths.weight_figures_dir(root)) as weights,
        staged_dir(paths.sample_figures_dir(root)) as samples,
    ):
        kinds = load_kinds(root, "trained")  # the untrained model has the same layers
        jobs = weight_jobs(weights, kernels, kinds, r)
        run_jobs([*jobs, *sample_jobs(samples, images, index, load_classes(root), r)])
    log.info("weight and sample figures written to %s", paths.figures_dir(root).relative_to(root))


if __name__ == "__main__":
    run_stage("render_figures", run)
