"""Stage: how well each model classifies a whole split (the book's ``model.evaluate(test_scaled, test_target)``).

Streams ``evaluate.split`` through the trained and untrained models' last layer with the numpy forward pass
(Keras for layers it does not compute), batch by batch, keeping one predicted class per image. Writes the
accuracy and the accuracy per class as a metric, one row per image (actual, predicted) for ``dvc plots``'
confusion template, the confusion matrix of each model as a PNG, and the input range fed with the trained model's
first conv layer's silent channels (``input_range.json``; a warning in the log when most never fire).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from convlens.analysis.evaluate import (
    accuracy,
    check_labels,
    confusion_matrix,
    evaluation_summary,
    head_problem,
    output_shape,
    prediction_rows,
    stream_predictions,
)
from convlens.model.layers import output_layer
from convlens.model.network import prepare
from convlens.pipeline import paths
from convlens.pipeline.artifacts import load_classes, write_skipped
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import staged_dir, write_csv, write_json
from convlens.render.analyses import accuracy_title, confusion_figure

log = logging.getLogger(__name__)


def run(cfg: DictConfig, root: Path) -> None:
    ev, classes = cfg.evaluate, load_classes(root)
    images = np.load(paths.images(root, ev.split), mmap_mode="r")
    labels = np.asarray(np.load(paths.labels(root, ev.split), mmap_mode="r"), np.int64)
    check_labels(labels, len(classes), ev.split)
    models = prepare(root, images, cfg.input.scale, log)
    last, first = output_layer(models.trained.layers), models.first_conv

    confusions, predictions, peaks = {}, {}, {}
    for role in paths.ROLES:
        watch = first if role == "trained" else None  # the untrained model's zero biases make firing scale-free
        names = [last] if watch is None else [watch, last]
        network, size = models.network(role, names, ev.batch_size, "evaluate.batch_size")
        problem = head_problem(output_shape(network, last, images[0], models.scale.divisor), len(classes), last)
        if problem:  # the same architecture for both models: decided by the trained one
            return skip(root, problem, models.input_range(None, ev.split, len(images)))
        predictions[role], peaks[role] = stream_predictions(
            network, last, images, len(classes), models.scale.divisor, size, f"{role} {ev.split}", watch
        )
        confusions[role] = confusion_matrix(labels, predictions[role], len(classes))
        log.info("%s", accuracy_title(role, accuracy(confusions[role]), len(images), ev.split))
    record = models.input_range(peaks["trained"], ev.split, len(images))

    with staged_dir(paths.confusion_dir(root)) as out:
        for role, predicted in predictions.items():
            write_csv(out / paths.confusion_name(role), prediction_rows(labels, predicted, classes))
    with staged_dir(paths.evaluate_figures_dir(root)) as out:
        for role, confusion in confusions.items():
            title = accuracy_title(role, accuracy(confusion), len(images), ev.split)
            path = out / paths.confusion_figure_name(role)
            confusion_figure(confusion, classes, path, title, "Blues", cfg.render.dpi)
    write_json(paths.evaluate_metrics(root), {role: evaluation_summary(c, classes) for role, c in confusions.items()})
    write_json(paths.input_range_path(root), record)


def skip(root: Path, problem: str, record: dict) -> None:
    """Evaluate does not apply to this model: the metrics say why, the folders are empty; the input range stays."""
    folders = (paths.confusion_dir(root), paths.evaluate_figures_dir(root))
    write_skipped("evaluate", problem, folders, paths.evaluate_metrics(root))
    write_json(paths.input_range_path(root), record)


if __name__ == "__main__":
    run_stage("evaluate", run)
