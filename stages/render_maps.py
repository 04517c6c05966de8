"""Stage: one layer's feature maps drawn for each sample, trained and untrained (the book's 4×8 and 8×8 grids).

A ``foreach`` stage like ``feature_maps``: one instance per entry of ``layers``. Maps with spatial
axes (Conv2D, pooling) become one mosaic per sample; vectors (Dense, Flatten) a bar chart.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from convlens.errors import ConvlensError
from convlens.pipeline import paths
from convlens.pipeline.artifacts import load_classes
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import read_json, staged_dir
from convlens.render.figures import MAP_TILE_INCHES, map_key, mosaic_figure, sample_title, vector_figure
from convlens.render.grids import feature_map_grid
from convlens.render.language import figure_language

log = logging.getLogger(__name__)


def run(cfg: DictConfig, root: Path, item: str) -> None:
    r, classes = cfg.render, load_classes(root)
    layer = read_json(paths.map_layer(root, item))
    name = layer["name"]
    with figure_language(cfg.report.language) as t, staged_dir(paths.map_figures_dir(root, item)) as out:
        for role in paths.ROLES:
            maps = np.load(paths.maps(root, item, role), mmap_mode="r")
            if maps.ndim not in (2, 4):
                raise ConvlensError(
                    f"layer {name!r} outputs shape {maps.shape[1:]}, which is neither H×W×C feature maps nor a "
                    "vector; choose a Conv2D, pooling or Dense layer in layers"
                )
            for i, (sample, label) in enumerate(zip(layer["samples"], layer["labels"], strict=True)):
                shown = sample_title(layer["split"], sample, label, classes)
                title = t(
                    "map_title", model=t.term("model", role), layer=name, shape=tuple(maps.shape[1:]), sample=shown
                )
                path = out / paths.map_figure_name(role, sample)
                if maps.ndim == 2:
                    vector_figure(np.asarray(maps[i]), path, title, r.dpi)
                    continue
                image, grid = feature_map_grid(np.asarray(maps[i]), r.map_columns)
                key = map_key(maps[i])  # tile indices and the colourbar
                mosaic_figure(image, path, r.map_cmap, title, MAP_TILE_INCHES, grid, r.dpi, key)
    log.info("%d figures of %s written", 2 * len(layer["samples"]), name)


if __name__ == "__main__":
    run_stage("render_maps", run)
