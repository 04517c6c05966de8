"""Stage: the optimized inputs of one model as PNG, beyond the chapter (``render_activation_max@trained``,
``render_activation_max@untrained``): per layer of ``activation_max@<model>`` one mosaic, each tile a channel's
input captioned with its activation, the channels the ascent failed marked, a colour bar of the pixel range.

Its own stage, so that a change to a drawing param (``render.*``, ``report.language``) redraws these in a second
without climbing again, and a change to the ascent redraws only its own model's. No TensorFlow: it reads what
``activation_max@<model>`` wrote (the inputs, each layer's channel table, its index and summary).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from convlens.analysis.ascent import channel_marks
from convlens.pipeline import paths
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import read_csv_columns, read_json, staged_dir
from convlens.render.analyses import activation_max_legend, activation_max_title, labelled_mosaic_figure, tile_labels
from convlens.render.grids import image_tiles
from convlens.render.language import figure_language

log = logging.getLogger(__name__)


def run(cfg: DictConfig, root: Path, role: str) -> None:
    r, role = cfg.render, paths.check_role(role)
    folder = paths.activation_max_dir(root, role)
    index, summary = read_json(folder / paths.INDEX_NAME), read_json(paths.activation_max_summary(root, role))
    top = index["top"]
    with figure_language(cfg.report.language) as t, staged_dir(paths.activation_max_figures_dir(root, role)) as out:
        for name in index["layers"]:
            x = np.load(folder / paths.activation_max_name(role, name))
            table = read_csv_columns(
                folder / paths.activation_max_channels_name(role, name), ["activation", "top_image_mean"]
            )
            after, tops = table[:, 0], table[:, 1]
            signed = bool(summary[name].get("signed"))  # as activation_max@ judged it: no dead mark on such a layer
            marks = channel_marks(after, None if np.isnan(tops).all() else tops, signed)
            legend = activation_max_legend(marks, t("actmax_inputs", top=f"{top:g}"))
            title = f"{activation_max_title(role, name, summary[name]['steps'])}\n{legend}"
            labelled_mosaic_figure(
                image_tiles(x), out / paths.activation_max_figure_name(role, name), r.sample_cmap, title,
                tile_labels(after), r.map_columns, (0.0, top), r.dpi, marks, t("actmax_colorbar"),
            )  # fmt: skip
    log.info("%s optimized inputs drawn to %s", role, paths.activation_max_figures_dir(root, role).relative_to(root))


if __name__ == "__main__":
    run_stage("render_activation_max", run)
