"""Stage: activation maximization, beyond the chapter: for every channel of the ``activation_max.layers``, the
input that maximizes the channel's mean activation, by gradient ascent from gray noise, for both models.

TensorFlow (gradients). The metric compares each channel's optimized input with the split's best image for
that channel (``top_image_mean`` of ``dataset_stats``' table): a ratio ≥ 1 means the optimizer beat the dataset.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from convlens.analysis.attribution import ascent_line, ascent_metrics
from convlens.model.archive import open_model
from convlens.model.inputs import fixed_input_shape, read_input_scale
from convlens.pipeline import paths
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import read_csv_columns, read_json, staged_dir, write_json
from convlens.render.analyses import activation_max_title, labelled_mosaic_figure
from convlens.render.grids import image_tiles

log = logging.getLogger(__name__)


def dataset_tops(root: Path, names: list[str]) -> dict[tuple[str, str], np.ndarray]:
    """Per (model, layer) each channel's best image's mean activation over the dataset split, for the layers
    ``dataset_stats`` computed; a layer it did not compute is named once in the log."""
    index = read_json(paths.dataset_index(root))
    tops = {}
    for name in names:
        if name not in index["layers"]:
            log.info("%s is not among dataset.layers (%s): no ratio to the dataset's best image", name, index["layers"])
            continue
        for role in paths.ROLES:
            tops[role, name] = read_csv_columns(paths.dataset_table(root, role, name), ["top_image_mean"])[:, 0]
    return tops


def run(cfg: DictConfig, root: Path) -> None:
    am, r = cfg.activation_max, cfg.render
    trained = open_model(root, "trained")
    names = trained.resolve(None if am.layers is None else list(am.layers), "activation_max.layers")
    shape, top = fixed_input_shape(trained), read_input_scale(trained, cfg.input.scale).top
    tops = dataset_tops(root, names)
    from convlens.analysis.gradients import Ascent, maximize_channels
    from convlens.model.keras_models import load_model

    ascent = Ascent(am.steps, am.learning_rate, am.jitter, am.blur_every, am.blur_sigma, am.decay, am.seed)
    inputs, metrics = {}, {role: {} for role in paths.ROLES}
    for role in paths.ROLES:
        model = load_model(paths.model_path(root, role))
        for name in names:
            start = time.perf_counter()
            inputs[role, name], before, after = maximize_channels(model, name, shape, top, ascent)
            metrics[role][name] = ascent_metrics(name, after, tops.get((role, name)))
            seconds = time.perf_counter() - start
            log.info("%s", ascent_line(role, name, seconds, before, after, metrics[role][name]))

    with staged_dir(paths.activation_max_dir(root)) as out:
        for (role, name), x in inputs.items():
            np.save(out / paths.activation_max_name(role, name), x)
    with staged_dir(paths.activation_max_figures_dir(root)) as out:
        for (role, name), x in inputs.items():
            tiles, title = image_tiles(x), activation_max_title(role, name, am.steps)
            labels = [str(c) for c in range(len(tiles))]
            path = out / paths.activation_max_figure_name(role, name)
            labelled_mosaic_figure(tiles, path, r.sample_cmap, title, labels, r.map_columns, (0.0, top), r.dpi)
    write_json(paths.activation_max_metrics(root), metrics)


if __name__ == "__main__":
    run_stage("activation_max", run, skip_teardown=True)
