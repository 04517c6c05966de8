"""Stage: one model over a whole split, in one streamed pass (``dataset@trained``, ``dataset@untrained``).

The book looks at one image and evaluates the model once (``model.evaluate(test_scaled, test_target)``); this
streams ``dataset.split`` through the model in batches, once, and keeps from the same pass:

- per layer and channel: mean activation, fraction active, max, mean per class and the top images (the tables);
- the class each image is predicted (accuracy, accuracy per class, one row per image for the confusion matrix), when the
  model's last layer scores the data's classes; otherwise the summary says why evaluation was skipped;
- for the trained model, the input range fed and its first conv layer's silent channels.

No activation is kept, so memory stays flat however many images there are. One instance per model, so a change
to the untrained model alone reruns only ``dataset@untrained``. ``metrics`` merges the two summaries into the
metric files (``dataset.json``, ``evaluate.json``, ``input_range.json``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from convlens.analysis.dataset import MAP_KINDS, channel_rows, dataset_summary, stream_pass
from convlens.analysis.evaluate import (
    accuracy,
    check_labels,
    confusion_matrix,
    evaluation_summary,
    head_problem,
    output_shape,
    prediction_rows,
)
from convlens.analysis.examples import example_rows
from convlens.analysis.receptive import peak_boxes
from convlens.data.samples import streamed_count
from convlens.errors import ConvlensError
from convlens.model.layers import output_layer
from convlens.model.network import prepare
from convlens.pipeline import paths
from convlens.pipeline.artifacts import load_classes, skipped
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import staged_dir, write_csv, write_json
from convlens.render.language import accuracy_title  # no matplotlib: this stage draws nothing
from convlens.report.summary import layer_fields, output_shapes

# Where evaluation is skipped: the confusion rows' header alone (render_dataset draws from confusion_name's file only).
SKIPPED_ROWS = "skipped.csv"
log = logging.getLogger(__name__)


def run(cfg: DictConfig, root: Path, role: str) -> None:
    ds, classes, role = cfg.dataset, load_classes(root), paths.check_role(role)
    if not paths.images(root, ds.split).is_file():
        raise ConvlensError(f"dataset.split={ds.split!r} has no images in {paths.data_dir(root)}; use train or test")
    images = np.load(paths.images(root, ds.split), mmap_mode="r")
    labels = np.asarray(np.load(paths.labels(root, ds.split), mmap_mode="r"), np.int64)
    check_labels(labels, len(classes), ds.split)
    count = streamed_count(ds.limit, ds.examples.k, ds.split, len(images))
    images, labels = images[:count], labels[:count]
    here = bool(cfg.model.train_runs)  # trained at this input.scale: silent channels blame the training, not it
    models = prepare(root, images, cfg.input.scale, log, role=role, engine=cfg.compute.engine, trained_here=here)
    archive = models.trained  # this model's archive (both models have the same layers)
    names = archive.resolve(None if ds.layers is None else list(ds.layers), "dataset.layers", MAP_KINDS)
    watch = models.first_conv if role == "trained" else None  # the untrained model's zero biases: scale-free
    watched = [*names, *([watch] if watch and watch not in names else [])]
    last = output_layer(archive.layers)
    network, size = models.network(role, [*watched, last], ds.batch_size, "dataset.batch_size")
    problem = head_problem(output_shape(network, last, images[0], models.scale.divisor), len(classes), last)
    tables, predicted = stream_pass(
        network, images, labels, watched, len(classes), models.scale.divisor, size, f"{role} {ds.split}",
        (ds.examples.k, ds.examples.by), None if problem else last,
    )  # fmt: skip
    for name, table in tables.items():  # NaN or infinity would be written as statistics (and overflow a figure)
        models.scale.refuse_non_finite(np.stack([table["mean"], table["max"]]), f"the {role} model's {name} maps")
    log.info("%s: %d %s images through %s", role, len(images), ds.split, ", ".join(names))

    summary = {"dataset": {name: dataset_summary(tables[name]) for name in names}}
    summary["evaluate"] = evaluation(root, role, problem, labels, predicted, classes, ds.split)
    if watch is not None:  # its warning logged once, when most of the first conv layer's channels never fire
        summary["input_range"] = models.input_range(tables[watch]["max"], ds.split, len(images))
    fields = layer_fields(archive, bool(output_shapes(archive)))  # where each top image's peak looks
    boxes = {
        name: peak_boxes(fields.get(name), t["example_peak_rows"], t["example_peak_columns"], images.shape[1:3])
        for name, t in tables.items()
    }
    write_tables(root, role, tables, names, labels, classes, ds, summary, boxes)


def evaluation(
    root: Path,
    role: str,
    problem: str | None,
    labels: np.ndarray,
    predicted: np.ndarray | None,
    classes: list[str],
    split: str,
) -> dict[str, object]:
    """The model's accuracy over the pass (its summary) and its rows for ``dvc plots``' confusion template (which
    ``render_dataset`` draws); the folder empty and the reason returned when the ``problem`` with its last layer
    skips evaluation."""
    if problem:
        log.info("evaluate skipped: %s", problem)
    else:
        confusion = confusion_matrix(labels, predicted, len(classes))
        log.info("%s", accuracy_title(role, accuracy(confusion), len(labels), split))
    with staged_dir(paths.confusion_dir(root, role)) as out:
        if not problem:
            write_csv(out / paths.confusion_name(role), prediction_rows(labels, predicted, classes))
        else:  # an empty folder: DVC warns "'…' is empty." at each step; a table of no row it plots as nothing
            (out / SKIPPED_ROWS).write_text("actual,predicted\n", encoding="utf-8")
    return skipped(problem) if problem else evaluation_summary(confusion, classes)


def write_tables(
    root: Path,
    role: str,
    tables: dict[str, dict[str, np.ndarray]],
    names: list[str],
    labels: np.ndarray,
    classes: list[str],
    ds: DictConfig,
    summary: dict[str, object],
    boxes: dict[str, np.ndarray],
) -> None:
    """The model's channel table and top images per layer (with the input ``boxes`` their peaks see, k × channels
    × 4 per layer: ``receptive.peak_boxes``), the folder's index and the stage's ``summary``, in
    ``dataset_dir(root, role)``."""
    with staged_dir(paths.dataset_dir(root, role)) as out:
        examples = paths.examples_dir(root, role).relative_to(paths.dataset_dir(root, role))  # inside the staged one
        for name in names:
            table = tables[name]
            write_csv(out / paths.dataset_table_name(role, name), channel_rows(table, classes))
            tops = (table["example_scores"], table["example_images"])
            peaks = (table["example_peak_rows"], table["example_peak_columns"], table["example_peaks"])
            rows = example_rows(name, *tops, labels, table["example_tied"], (*peaks, boxes[name]))
            write_csv(out / examples / paths.dataset_table_name(role, name), rows)
        index = {"split": ds.split, "images": len(labels), "layers": names, "classes": classes}
        write_json(out / paths.INDEX_NAME, {**index, "examples_by": ds.examples.by})
        write_json(out / paths.SUMMARY_NAME, summary)


if __name__ == "__main__":
    run_stage("dataset", run)
