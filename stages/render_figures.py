"""Stage 6: every figure of chapter 8-3 as PNG. No TensorFlow: it reads the arrays the other stages saved.

Weight histograms (trained, untrained, overlaid), filter grids, the sample images and the
feature-map grids, each grid drawn as one mosaic image.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from stages.lib import layout
from stages.lib.config import run_stage
from stages.lib.errors import ConvlensError
from stages.lib.figures import histogram, mosaic_figure, sample_figure
from stages.lib.grids import check_filter_range, check_input_channels, feature_map_grid, filter_grid
from stages.lib.io import read_json, staged_dir

log = logging.getLogger(__name__)


def check_render(r: DictConfig) -> None:
    """Refuse render options that make no sense before drawing anything."""
    check_filter_range(r.filter_vmin, r.filter_vmax)
    check_input_channels(r.input_channels)
    for key in ("filter_columns", "map_columns", "hist_bins", "dpi"):
        if r[key] is not None and (not isinstance(r[key], int) or r[key] < 1):
            raise ConvlensError(f"render.{key} must be a positive integer, got {r[key]!r}")


def run(cfg: DictConfig, root: Path) -> None:
    r, classes = cfg.render, list(cfg.data.classes)
    check_render(r)
    kernels = {role: layout.load_kernels(root, role) for role in layout.ROLES}
    fm_dir = layout.feature_maps_dir(root)
    index = read_json(fm_dir / "index.json")
    images = np.load(fm_dir / "samples.npy")

    with staged_dir(layout.figures_dir(root)) as out:
        for name in kernels["trained"]:
            for role in layout.ROLES:
                kernel = kernels[role][name]
                histogram(
                    {role: kernel},
                    out / "weights" / f"{role}_{name}_hist.png",
                    r.hist_bins,
                    f"{role} {name} weights (mean {np.nanmean(kernel):.4f}, std {np.nanstd(kernel):.4f})",
                    r.dpi,
                )
                if kernel.ndim != 4:
                    log.info("%s: no filter grid, its kernel is %d-D (histogram only)", name, kernel.ndim)
                    continue
                image, grid = filter_grid(kernel, r.input_channels, r.filter_columns, r.filter_vmin, r.filter_vmax)
                mosaic_figure(
                    image,
                    out / "weights" / f"{role}_{name}_filters.png",
                    r.filter_cmap,
                    f"{role} {name} filters {kernel.shape} (input channels: {r.input_channels}, "
                    f"{r.filter_vmin}..{r.filter_vmax})",
                    0.9,
                    grid,
                    r.dpi,
                )
            histogram(
                {role: kernels[role][name] for role in layout.ROLES},
                out / "weights" / f"{name}_hist_overlay.png",
                r.hist_bins,
                f"{name} weights: trained vs untrained",
                r.dpi,
            )

        for i, (sample, label) in enumerate(zip(index["samples"], index["labels"], strict=True)):
            title = f"{index['split']} image {sample}: {classes[label] if label < len(classes) else label}"
            sample_figure(images[i], out / "samples" / f"sample_{sample}.png", r.sample_cmap, title, r.dpi)
            for role in layout.ROLES:
                for name in index["layers"]:
                    maps = np.load(fm_dir / role / f"{name}.npy", mmap_mode="r")[i]
                    image, grid = feature_map_grid(np.asarray(maps), r.map_columns)
                    mosaic_figure(
                        image,
                        out / "feature_maps" / f"{role}_{name}_sample_{sample}.png",
                        r.map_cmap,
                        f"{role} {name} feature maps {maps.shape}, {title}",
                        1.5,
                        grid,
                        r.dpi,
                    )
    log.info("figures written to %s", layout.figures_dir(root).relative_to(root))


if __name__ == "__main__":
    run_stage("render_figures", run)
