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

from convlens.analysis.attribution import ascent_summary
from convlens.errors import ConvlensError
from convlens.model.archive import open_model
from convlens.model.inputs import PIXEL_MAX, read_input_scale
from convlens.pipeline import paths
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import read_csv_columns, read_json, staged_dir, write_json
from convlens.render.analyses import labelled_mosaic_figure

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
    shape = trained.input_shape
    if any(d is None for d in shape):
        raise ConvlensError(
            f"{trained.source} accepts inputs of any size {shape}; activation maximization needs a fixed one: "
            "build the model with keras.Input((28, 28, 1))"
        )
    top = PIXEL_MAX / read_input_scale(trained, cfg.input.scale).divisor
    tops = dataset_tops(root, names)
    from convlens.analysis.gradients import Ascent, maximize_channels
    from convlens.model.keras_models import load_model

    ascent = Ascent(am.steps, am.learning_rate, am.jitter, am.blur_every, am.blur_sigma, am.decay, am.seed)
    inputs, metrics = {}, {role: {} for role in paths.ROLES}
    for role in paths.ROLES:
        model = load_model(paths.model_path(root, role))
        for name in names:
            start = time.perf_counter()
            x, before, after = maximize_channels(model, name, tuple(shape), top, ascent)
            inputs[role, name] = x
            if (role, name) in tops and len(tops[role, name]) != len(after):
                raise ConvlensError(f"{name} has {len(after)} channels but the dataset table has another count; rerun")
            metrics[role][name] = ascent_summary(after, tops.get((role, name)))
            log.info(
                "%s %s: %d channels in %.1f s, median mean activation %.4g → %.4g%s",
                role, name, len(after), time.perf_counter() - start, np.median(before), np.median(after),
                f", {metrics[role][name]['ratio_median']} × the dataset's best image" if (role, name) in tops else "",
            )  # fmt: skip

    with staged_dir(paths.activation_max_dir(root)) as out:
        for (role, name), x in inputs.items():
            np.save(out / paths.activation_max_name(role, name), x)
    with staged_dir(paths.activation_max_figures_dir(root)) as out:
        for (role, name), x in inputs.items():
            tiles = x[..., 0] if x.shape[-1] == 1 else x.mean(axis=-1)  # several input channels: their mean
            title = f"{role} {name}: the input that maximizes each channel's mean activation ({am.steps} steps)"
            labels = [str(c) for c in range(len(tiles))]
            path = out / paths.activation_max_figure_name(role, name)
            labelled_mosaic_figure(tiles, path, r.sample_cmap, title, labels, r.map_columns, (0.0, top), r.dpi)
    write_json(paths.activation_max_metrics(root), metrics)


if __name__ == "__main__":
    run_stage("activation_max", run, skip_teardown=True)
