"""Stage: where the model looks, beyond the chapter, with its sanity checks. For every sample, the Grad-CAM map at
``gradcam.layer`` and the pixel-level maps of ``attribution.methods`` (saliency, SmoothGrad, integrated gradients,
occlusion) of the class the trained model predicts and of the true class, for the trained and the untrained
model, with each model's class probabilities and the maps' Spearman correlations (``outputs/gradcam``):
``render_gradcam`` draws them side by side over the image, so a drawing param redraws without this stage.

TensorFlow (gradients). The sanity checks of Adebayo et al. (2018) over the first ``attribution.sanity_images``
images of a split, streamed: the cascading model-parameter randomization (the trained model's layers replaced by
the untrained twin's from the top down; the last step is the untrained model, the randomization test) with the
Spearman correlation to the trained map, ties reported; and the deletion curve (accuracy as each method's
most-attributed pixels are removed). One CSV per method and curve for ``dvc plots``; the numbers in gradcam.json.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from convlens.analysis.attribution import (
    TARGETS,
    baseline_input,
    cascade_rows,
    deletion_fractions,
    deletion_rows,
    gradcam_layer,
    gradcam_record,
    gradcam_targets,
    randomization_line,
    sample_correlations,
    sanity_line,
    sanity_summary,
    sanity_warning,
)
from convlens.analysis.evaluate import head_problem
from convlens.model.layers import output_layer
from convlens.model.network import Models, prepare
from convlens.pipeline import paths
from convlens.pipeline.artifacts import load_classes, load_samples, write_skipped
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import staged_dir, write_csv, write_json

log = logging.getLogger(__name__)


def run(cfg: DictConfig, root: Path, pair: str = paths.ATTRIBUTION) -> None:
    """``pair``: the foreach item of ``analyses.attribution``, which only names the stage (both models, one scale)."""
    paths.check_pair(pair)
    g, a, classes = cfg.gradcam, cfg.attribution, load_classes(root)
    images, index = load_samples(root)
    models = prepare(root, images, cfg.input.scale, log)
    resolved = None if g.layer is None else models.trained.resolve([g.layer], "gradcam.layer")[0]
    name = gradcam_layer(models.trained.layers, resolved)
    x, labels = models.inputs(images), np.asarray(index["labels"], np.int64)
    scorers, probs = class_scores(root, name, x)
    models.scale.refuse_non_finite(np.stack(list(probs.values())), "the models' class probabilities of the samples")
    problem = head_problem(probs["trained"].shape[1:], len(classes), output_layer(models.trained.layers))
    if problem:  # the same architecture for both models: decided by the trained one
        with staged_dir(paths.sanity_dir(root)) as out:  # its plots: each curve's folder, empty
            for curve in paths.SANITY_CURVES:
                (out / curve).mkdir()
        folders = (paths.gradcam_dir(root),)  # render_gradcam then draws no figure
        return write_skipped("gradcam", problem, folders, paths.gradcam_metrics(root))
    targets, methods, settings = gradcam_targets(probs["trained"], labels), ["gradcam", *a.methods], settings_of(a)
    baseline = baseline_input(a.baseline, (b for b, _ in sanity_batches(root, a, models)) if a.sanity_images else [x])
    maps = pixel_maps(root, scorers, name, x, [targets[t] for t in TARGETS], methods, baseline, settings)
    found = {
        m: sample_correlations(by["trained"], by["untrained"], index["samples"], a.sanity_max_rho)
        for m, by in maps.items()
    }
    metrics = found["gradcam"] | {m: found[m] for m in methods[1:]}
    metrics["sanity"] = check_sanity(root, a, models, name, baseline)
    rho = {m: [found[m]["spearman"][f"sample_{s}"] for s in index["samples"]] for m in maps}  # the figures' ρ
    with staged_dir(paths.gradcam_dir(root)) as out:  # all that render_gradcam draws, with the samples
        for method, role, array in ((m, role, a) for m, by in maps.items() for role, a in by.items()):
            np.save(out / paths.attribution_name(role, method), array)
        for role, p in probs.items():
            np.save(out / paths.gradcam_probabilities_name(role), p)
        record = gradcam_record(name, index, targets, probs) | {"methods": list(maps), "spearman": rho}
        write_json(out / paths.INDEX_NAME, record)
    write_json(paths.gradcam_metrics(root), metrics)
    log.info("%s", randomization_line(len(index["samples"]), name, found["gradcam"]))
    verdicts = {f"{m} ({t})": {"passes": found[m]["passes"][t]} for m in maps for t in TARGETS}  # the samples'
    if warning := sanity_warning(verdicts, a.sanity_max_rho):
        log.warning("%s", warning)


def class_scores(root: Path, name: str, x: np.ndarray) -> tuple[dict, dict]:
    """Each model's scorer (Grad-CAM at layer ``name``) and class probabilities of ``x``: the first time Keras runs
    the user's model, so a model it cannot compute is one line (``computed_by_keras``), and before it images too
    small for a model of open input size (``forward.refuse_small_images``: a window larger than its input, where
    TensorFlow's depthwise convolution would give numbers from uninitialised memory) are."""
    from convlens.analysis.gradients import class_probabilities
    from convlens.model.forward import refuse_small_images
    from convlens.model.keras_models import computed_by_keras, load_model

    scorers, probs = {}, {}
    for role in paths.ROLES:
        model = load_model(paths.model_path(root, role))
        open_axes = tuple(d is None for d in model.inputs[0].shape[1:])
        refuse_small_images(model, paths.model_path(root, role), tuple(x.shape[1:]), open_axes)
        with computed_by_keras(paths.model_path(root, role), model):
            scorers[role], probs[role] = class_probabilities(model, name, x)
    return scorers, probs


def pixel_maps(root: Path, scorers: dict, name: str, x: np.ndarray, targets, methods, baseline, settings) -> dict:
    """:func:`~convlens.analysis.sanity.sample_maps` of the samples ``x``, after each model's gradients are checked
    (:func:`~convlens.analysis.gradients.check_scorer_gradients`: none missing, a batch of another size computed), so
    that a model whose later Keras calls fail is one line before any map, as a failure in the maps themselves is."""
    from convlens.analysis.gradients import check_scorer_gradients
    from convlens.analysis.sanity import sample_maps
    from convlens.model.keras_models import computed_by_keras

    for role, scorer in scorers.items():
        with computed_by_keras(paths.model_path(root, role), scorer):
            check_scorer_gradients(paths.model_path(root, role), scorer, name, x, methods)
    with computed_by_keras(paths.model_path(root, "trained"), scorers["trained"]):
        return sample_maps(scorers, x, targets, methods, baseline, settings)


def settings_of(a: DictConfig):
    """How the pixel methods run, from ``attribution.*``."""
    from convlens.analysis.saliency import Settings

    return Settings(
        a.smoothgrad_noise, a.smoothgrad_samples, a.ig_steps, a.occlusion_window, a.occlusion_stride, a.seed
    )


def check_sanity(root: Path, a: DictConfig, models: Models, layer: str, baseline: np.ndarray) -> dict[str, object]:
    """The sanity checks over the first ``attribution.sanity_images`` images: their curves written (one CSV per
    method and curve in ``sanity_dir``), their numbers returned for the metrics and logged."""
    from convlens.analysis.sanity import cascade, sanity_pass
    from convlens.model.keras_models import computed_by_keras

    fractions, methods = deletion_fractions(a.deletion_steps), ["gradcam", *a.methods]
    with staged_dir(paths.sanity_dir(root)) as out:
        for curve in paths.SANITY_CURVES:  # each a plot of the stage in dvc.yaml: there, if empty
            (out / curve).mkdir()
        if not a.sanity_images:
            return {"split": a.sanity_split, "images": 0, "max_rho": a.sanity_max_rho}
        layers, scorers = cascade(paths.model_path(root, "trained"), paths.model_path(root, "untrained"), layer)
        with computed_by_keras(paths.model_path(root, "trained"), scorers[0]):  # batches of attribution.batch_size
            tally = sanity_pass(scorers, sanity_batches(root, a, models), methods, baseline, settings_of(a), fractions)
        curves = {m: cascade_rows(steps, layers) for m, steps in tally.similar.items()}
        deletion = {m: deletion_rows(fractions, c, tally.images) for m, c in tally.correct.items()}
        for curve, table in (("cascading", curves), ("deletion", deletion)):
            for method, rows in table.items():
                write_csv(out / paths.sanity_curve_name(curve, method), rows)
    summary = sanity_summary(curves, deletion, a.sanity_max_rho)
    log.info("%s", sanity_line(tally.images, summary))
    if warning := sanity_warning(summary, a.sanity_max_rho):  # a finding, not an error: the stage succeeds
        log.warning("%s", warning)
    return {"split": a.sanity_split, "images": tally.images, "max_rho": a.sanity_max_rho, **summary}


def sanity_batches(root: Path, a: DictConfig, models: Models):
    """The sanity checks' images: the first ``attribution.sanity_images`` of ``attribution.sanity_split`` as model
    inputs, with their labels, ``attribution.batch_size`` at a time."""
    images = np.load(paths.images(root, a.sanity_split), mmap_mode="r")
    labels = np.asarray(np.load(paths.labels(root, a.sanity_split), mmap_mode="r"), np.int64)
    n = min(a.sanity_images, len(images))
    for start in range(0, n, a.batch_size):
        stop = min(start + a.batch_size, n)
        yield models.inputs(np.asarray(images[start:stop])), labels[start:stop]


if __name__ == "__main__":
    run_stage("gradcam", run, skip_teardown=True)
