"""Stage: where the model looks, as PNG, beyond the chapter: per sample one figure, each method's maps (Grad-CAM
and ``attribution.methods``) of the trained and the untrained model side by side over the image, a row per class
explained, titled with each model's prediction and the maps' Spearman correlation.

Its own stage, so that a change to a drawing param (``render.*``, ``gradcam.cmap``, ``gradcam.alpha``,
``attribution.scale``, ``report.language``) redraws these in a second without the gradients and the sanity checks
again. No TensorFlow: it reads what ``gradcam`` wrote (``outputs/gradcam``) and the samples. Where ``gradcam`` was
skipped (its folder empty), no figure.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from convlens.analysis.attribution import TARGETS, figure_rows
from convlens.pipeline import paths
from convlens.pipeline.artifacts import load_classes, load_samples
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import read_json, staged_dir
from convlens.render.analyses import attribution_figure, gradcam_title
from convlens.render.language import figure_language

log = logging.getLogger(__name__)


def run(cfg: DictConfig, root: Path, pair: str = paths.ATTRIBUTION) -> None:
    """``pair``: the foreach item of ``analyses.attribution``, which only names the stage (both models, one scale)."""
    paths.check_pair(pair)
    g, a, r, folder = cfg.gradcam, cfg.attribution, cfg.render, paths.gradcam_dir(root)
    with figure_language(cfg.report.language), staged_dir(paths.gradcam_figures_dir(root)) as out:
        if not (folder / paths.INDEX_NAME).is_file():  # gradcam skipped (its reason in gradcam.json): no figure
            log.info("no Grad-CAM maps in %s: no figure", paths.relative(root, folder))
            return
        record, classes, (images, _) = read_json(folder / paths.INDEX_NAME), load_classes(root), load_samples(root)
        methods, style = record["methods"], (r.sample_cmap, g.cmap, g.alpha, a.scale)
        maps = {m: {role: np.load(folder / paths.attribution_name(role, m)) for role in paths.ROLES} for m in methods}
        probs = {role: np.load(folder / paths.gradcam_probabilities_name(role)) for role in paths.ROLES}
        targets = {t: np.asarray(record["targets"][t], np.int64) for t in TARGETS}
        for i, sample in enumerate(record["samples"]):
            rho = {m: record["spearman"][m][i] for m in methods}
            label = int(record["labels"][i])
            title = gradcam_title(record["split"], sample, label, classes, record["layer"], rho["gradcam"])
            rows = figure_rows(maps, probs, i, targets, classes, rho)
            attribution_figure(images[i], rows, out / paths.gradcam_figure_name(sample), title, style, r.dpi)
    shown = paths.relative(root, paths.gradcam_figures_dir(root))
    count = len(record["samples"])
    log.info("%d attribution %s drawn to %s", count, "figure" if count == 1 else "figures", shown)


if __name__ == "__main__":
    run_stage("render_gradcam", run)
