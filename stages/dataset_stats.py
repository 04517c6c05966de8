"""Stage: feature statistics over a whole split, both models (the book looks at one image; this at all).

Streams the split through the numpy forward pass in batches, keeping running sums per layer and
channel: mean activation, fraction active, max, and mean activation per class. No activation is
kept, so memory stays flat however many images there are.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from convlens.analysis.dataset import MAP_KINDS, dataset_summary, selectivity, stream_statistics
from convlens.analysis.examples import example_rows
from convlens.analysis.stats import as_number
from convlens.errors import ConvlensError
from convlens.model.archive import open_model
from convlens.model.batching import available_memory, bytes_per_image, fit_batch_size
from convlens.model.forward import open_network
from convlens.model.inputs import first_conv, model_inputs, read_input_scale
from convlens.pipeline import paths
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import staged_dir, write_csv, write_json

log = logging.getLogger(__name__)


def channel_rows(table: dict[str, np.ndarray], classes: list[str]) -> list[dict[str, object]]:
    """The CSV table: one row per channel, its statistics and its mean activation for each class."""
    rows = []
    for c in range(len(table["mean"])):
        row: dict[str, object] = {"channel": c}
        row.update({k: as_number(table[k][c]) for k in ("mean", "fraction_active", "max", "top_image_mean")})
        row["selectivity"] = as_number(selectivity(table["class_means"][:, c : c + 1])[0])
        row.update({name: as_number(table["class_means"][k, c]) for k, name in enumerate(classes)})
        rows.append(row)
    return rows


def run(cfg: DictConfig, root: Path) -> None:
    ds, classes = cfg.dataset, list(cfg.data.classes)
    data = paths.data_dir(root)
    if not paths.images(root, ds.split).is_file():
        raise ConvlensError(f"dataset.split={ds.split!r} has no images in {data}; use train or test")
    images = np.load(paths.images(root, ds.split), mmap_mode="r")
    labels = np.load(paths.labels(root, ds.split), mmap_mode="r")
    if ds.limit is not None:
        if ds.limit > len(images):
            raise ConvlensError(
                f"dataset.limit={ds.limit} is beyond the {ds.split} split's {len(images)} images; "
                f"use null for every image or a number up to {len(images)}"
            )
        images, labels = images[: ds.limit], labels[: ds.limit]
    if ds.examples.k > len(images):
        raise ConvlensError(
            f"dataset.examples.k={ds.examples.k} is more than the {len(images)} {ds.split} images streamed; "
            f"use dataset.examples.k={len(images)} or less"
        )
    trained = open_model(root, "trained")
    trained.check_input(images.shape[1:])
    scale = read_input_scale(trained, cfg.input.scale)  # both models: the untrained model has the same layers
    if note := scale.note():
        log.info("%s", note)
    names = trained.resolve(None if ds.layers is None else list(ds.layers), "dataset.layers", MAP_KINDS)

    tables = {}
    for role in paths.ROLES:
        network = open_network(trained if role == "trained" else open_model(root, role), names, log.info)
        per_image = bytes_per_image(network, model_inputs(images[:1], scale.divisor))
        size, note = fit_batch_size(ds.batch_size, per_image, available_memory(), "dataset.batch_size")
        if note:
            log.info("%s", note)
        tables[role] = stream_statistics(
            network, images, np.asarray(labels, np.int64), names, len(classes), scale.divisor,
            size, f"{role} {ds.split}", (ds.examples.k, ds.examples.by),
        )  # fmt: skip
        log.info("%s: %d %s images through %s", role, len(images), ds.split, ", ".join(names))

    first = first_conv(trained.layers)
    if first in names:  # trained only: the untrained model's zero biases make firing scale-free
        seen = f"the {len(images)} {ds.split} images"
        if warning := scale.silent_warning(first, tables["trained"][first]["max"], seen):
            log.warning("%s", warning)

    with staged_dir(paths.dataset_dir(root)) as out:
        for role, by_layer in tables.items():
            for name, table in by_layer.items():
                write_csv(out / paths.dataset_table_name(role, name), channel_rows(table, classes))
                examples = example_rows(name, table["example_scores"], table["example_images"], labels)
                path = paths.examples_dir(root).relative_to(paths.dataset_dir(root))  # inside the staged folder
                write_csv(out / path / paths.dataset_table_name(role, name), examples)
        index = {"split": ds.split, "images": len(images), "layers": names, "classes": classes}
        write_json(out / paths.INDEX_NAME, {**index, "examples_by": ds.examples.by})
    write_json(
        paths.dataset_metrics(root),
        {role: {name: dataset_summary(t) for name, t in by_layer.items()} for role, by_layer in tables.items()},
    )


if __name__ == "__main__":
    run_stage("dataset_stats", run)
