"""Stage: Grad-CAM, beyond the chapter, with its sanity check: for every sample, the Grad-CAM map of the
class the trained model predicts and of the true class at ``gradcam.layer``, for the trained and the untrained
model, drawn side by side over the image.

TensorFlow (gradients). The untrained model makes the model-parameter randomization test of Adebayo et al.
(2018) free: the Spearman rank correlation of each sample's trained and untrained maps is the metric; a method
whose maps depend on what the model learned gives a low correlation.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from convlens.analysis.attribution import (
    TARGETS,
    gradcam_layer,
    gradcam_record,
    gradcam_targets,
    randomization_line,
    randomization_test,
    sample_panels,
)
from convlens.analysis.evaluate import head_problem
from convlens.model.layers import output_layer
from convlens.model.network import prepare
from convlens.pipeline import paths
from convlens.pipeline.artifacts import load_classes, load_samples, write_skipped
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import staged_dir, write_json
from convlens.render.analyses import gradcam_title, overlay_figure

log = logging.getLogger(__name__)


def run(cfg: DictConfig, root: Path) -> None:
    g, r, classes = cfg.gradcam, cfg.render, load_classes(root)
    images, index = load_samples(root)
    models = prepare(root, images, cfg.input.scale, log)
    resolved = None if g.layer is None else models.trained.resolve([g.layer], "gradcam.layer")[0]
    name = gradcam_layer(models.trained.layers, resolved)
    x, labels = models.inputs(images), np.asarray(index["labels"], np.int64)
    from convlens.analysis.gradients import class_probabilities, gradcam_maps
    from convlens.model.keras_models import load_model

    maps, probs, targets = {}, {}, {}
    for role in paths.ROLES:
        scorer, probs[role] = class_probabilities(load_model(paths.model_path(root, role)), name, x)
        problem = head_problem(probs[role].shape[1:], len(classes), output_layer(models.trained.layers))
        if problem:  # the same architecture for both models: decided by the trained one
            folders = (paths.gradcam_dir(root), paths.gradcam_figures_dir(root))
            return write_skipped("gradcam", problem, folders, paths.gradcam_metrics(root))
        targets = targets or gradcam_targets(probs["trained"], labels)
        maps[role] = gradcam_maps(scorer, x, [targets[t] for t in TARGETS], images.shape[1:3])
    metrics = randomization_test(maps["trained"], maps["untrained"], index["samples"])
    with staged_dir(paths.gradcam_dir(root)) as out:
        for role, array in maps.items():
            np.save(out / paths.gradcam_name(role), array)
        write_json(out / paths.INDEX_NAME, gradcam_record(name, index, targets, probs))
    with staged_dir(paths.gradcam_figures_dir(root)) as out:
        for i, sample in enumerate(index["samples"]):
            rho = metrics["spearman"][f"sample_{sample}"]
            title = gradcam_title(index["split"], sample, int(labels[i]), classes, name, rho)
            rows, row_labels = sample_panels({role: m[i] for role, m in maps.items()}, probs, i, targets, classes)
            path = out / paths.gradcam_figure_name(sample)
            overlay_figure(images[i], rows, path, (title, row_labels), (r.sample_cmap, g.cmap), g.alpha, r.dpi)
    write_json(paths.gradcam_metrics(root), metrics)
    log.info("%s", randomization_line(len(index["samples"]), name, metrics))


if __name__ == "__main__":
    run_stage("gradcam", run, skip_teardown=True)
