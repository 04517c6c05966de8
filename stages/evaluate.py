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

from convlens.analysis.evaluate import accuracy, confusion_matrix, evaluation_summary, stream_predictions
from convlens.errors import ConvlensError
from convlens.model.archive import open_model
from convlens.model.batching import available_memory, bytes_per_image, fit_batch_size
from convlens.model.forward import open_network
from convlens.model.inputs import first_conv, model_inputs, read_input_scale
from convlens.pipeline import paths
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import staged_dir, write_csv, write_json
from convlens.render.analyses import confusion_figure

log = logging.getLogger(__name__)


def output_layer(archive) -> str:
    """The model's last top-level layer: what ``model.predict`` returns for a Sequential classifier."""
    return [info for info in archive.layers if info.index is not None][-1].name


def run(cfg: DictConfig, root: Path) -> None:
    ev, classes = cfg.evaluate, list(cfg.data.classes)
    images = np.load(paths.images(root, ev.split), mmap_mode="r")
    labels = np.asarray(np.load(paths.labels(root, ev.split), mmap_mode="r"), np.int64)
    if labels.size and labels.max() >= len(classes):
        raise ConvlensError(f"the {ev.split} labels go up to {labels.max()}; data.classes names only {len(classes)}")
    trained = open_model(root, "trained")
    trained.check_input(images.shape[1:])
    scale = read_input_scale(trained, cfg.input.scale)
    if note := scale.note():
        log.info("%s", note)
    last, first = output_layer(trained), first_conv(trained.layers)

    confusions, predictions, peaks = {}, {}, {}
    for role in paths.ROLES:
        watch = first if role == "trained" else None  # the untrained model's zero biases make firing scale-free
        names = [last] if watch is None else [watch, last]
        network = open_network(trained if role == "trained" else open_model(root, role), names, log.info)
        per_image = bytes_per_image(network, model_inputs(images[:1], scale.divisor))
        size, note = fit_batch_size(ev.batch_size, per_image, available_memory(), "evaluate.batch_size")
        if note:
            log.info("%s", note)
        predictions[role], peaks[role] = stream_predictions(
            network, last, images, len(classes), scale.divisor, size, f"{role} {ev.split}", watch
        )
        confusions[role] = confusion_matrix(labels, predictions[role], len(classes))
        log.info("%s: accuracy %s on %d %s images", role, f"{accuracy(confusions[role]):.4f}", len(images), ev.split)

    watched = peaks["trained"] if peaks["trained"] is not None else np.zeros(0)  # no image: no channel seen
    record = scale.record(first, watched, ev.split, len(images))
    if record["warning"]:
        log.warning("%s", record["warning"])

    names = np.array(classes, dtype=object)
    with staged_dir(paths.confusion_dir(root)) as out:
        for role, predicted in predictions.items():
            rows = [{"actual": a, "predicted": p} for a, p in zip(names[labels], names[predicted], strict=True)]
            write_csv(out / paths.confusion_name(role), rows)
    with staged_dir(paths.evaluate_figures_dir(root)) as out:
        for role, confusion in confusions.items():
            title = f"{role}: accuracy {accuracy(confusion):.4f} on {len(images)} {ev.split} images"
            path = out / paths.confusion_figure_name(role)
            confusion_figure(confusion, classes, path, title, "Blues", cfg.render.dpi)
    write_json(
        paths.evaluate_metrics(root),
        {role: evaluation_summary(confusion, classes) for role, confusion in confusions.items()},
    )
    write_json(paths.input_range_path(root), record)


if __name__ == "__main__":
    run_stage("evaluate", run)
