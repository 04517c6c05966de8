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
    gradcam,
    gradcam_layer,
    randomization_summary,
    sample_panels,
    spearman,
)
from convlens.errors import ConvlensError
from convlens.model.archive import open_model
from convlens.model.inputs import model_inputs, read_input_scale
from convlens.pipeline import paths
from convlens.pipeline.artifacts import load_samples
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import staged_dir, write_json
from convlens.render.analyses import overlay_figure
from convlens.render.figures import sample_title

log = logging.getLogger(__name__)


def run(cfg: DictConfig, root: Path) -> None:
    g, r, classes = cfg.gradcam, cfg.render, list(cfg.data.classes)
    trained = open_model(root, "trained")
    resolved = None if g.layer is None else trained.resolve([g.layer], "gradcam.layer")[0]
    name = gradcam_layer(trained.layers, resolved)
    images, index = load_samples(root)
    trained.check_input(images.shape[1:])
    scale = read_input_scale(trained, cfg.input.scale)
    if note := scale.note():
        log.info("%s", note)
    x, labels = model_inputs(images, scale.divisor), np.asarray(index["labels"], np.int64)
    from convlens.analysis.gradients import class_scores, feature_map_gradients, probabilities
    from convlens.model.keras_models import load_model

    maps, probs, targets = {}, {}, {}
    for role in paths.ROLES:
        scorer, logits = class_scores(load_model(paths.model_path(root, role)), name)
        probs[role] = probabilities(np.asarray(scorer(x, training=False)[1]), logits)
        if labels.max() >= probs[role].shape[1] or len(classes) != probs[role].shape[1]:
            raise ConvlensError(
                f"the model has {probs[role].shape[1]} outputs but data.classes names {len(classes)} classes and the "
                f"labels go up to {labels.max()}; use a model trained on this data"
            )
        targets = targets or {"predicted": probs["trained"].argmax(axis=1), "true": labels}
        by_target = []
        for target in TARGETS:
            conv, grads, _ = feature_map_gradients(scorer, x, targets[target])
            by_target.append([gradcam(c, d, images.shape[1:3]) for c, d in zip(conv, grads, strict=True)])
        maps[role] = np.stack(by_target, axis=1).astype(np.float32)  # samples × targets × H × W

    correlations = {
        str(s): {t: spearman(maps["trained"][i, k], maps["untrained"][i, k]) for k, t in enumerate(TARGETS)}
        for i, s in enumerate(index["samples"])
    }
    metrics = randomization_summary(correlations)
    predictions = {role: p.argmax(axis=1) for role, p in probs.items()}
    with staged_dir(paths.gradcam_dir(root)) as out:
        for role, array in maps.items():
            np.save(out / paths.gradcam_name(role), array)
        write_json(
            out / paths.INDEX_NAME,
            {
                "layer": name, "split": index["split"], "samples": index["samples"], "labels": labels.tolist(),
                "targets": {t: targets[t].tolist() for t in TARGETS},
                "predicted": {role: p.tolist() for role, p in predictions.items()},
                "probability": {role: probs[role].max(axis=1).round(6).tolist() for role in paths.ROLES},
            },
        )  # fmt: skip
    with staged_dir(paths.gradcam_figures_dir(root)) as out:
        for i, sample in enumerate(index["samples"]):
            rho = metrics["spearman"][f"sample_{sample}"]
            title = (
                f"{sample_title(index['split'], sample, int(labels[i]), classes)}, Grad-CAM at {name}\nSpearman "
                f"correlation of the trained and untrained maps: "
                + ", ".join(f"{t} {'–' if rho[t] is None else f'{rho[t]:.2f}'}" for t in rho)
            )
            rows, row_labels = sample_panels({role: m[i] for role, m in maps.items()}, probs, i, targets, classes)
            path = out / paths.gradcam_figure_name(sample)
            overlay_figure(images[i], rows, path, (title, row_labels), (r.sample_cmap, g.cmap), g.alpha, r.dpi)
    write_json(paths.gradcam_metrics(root), metrics)
    log.info(
        "%d samples at %s: Spearman trained vs untrained, median %s",
        len(index["samples"]), name,
        ", ".join(f"{t} {metrics['spearman']['median'][t]}" for t in TARGETS),
    )  # fmt: skip


if __name__ == "__main__":
    run_stage("gradcam", run, skip_teardown=True)
