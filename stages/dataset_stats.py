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

from convlens.analysis.dataset import MAP_KINDS, channel_rows, dataset_metrics, stream_statistics, streamed_count
from convlens.analysis.examples import example_rows
from convlens.errors import ConvlensError
from convlens.model.network import prepare
from convlens.pipeline import paths
from convlens.pipeline.artifacts import load_classes
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import staged_dir, write_csv, write_json

log = logging.getLogger(__name__)


def run(cfg: DictConfig, root: Path) -> None:
    ds, classes = cfg.dataset, load_classes(root)
    data = paths.data_dir(root)
    if not paths.images(root, ds.split).is_file():
        raise ConvlensError(f"dataset.split={ds.split!r} has no images in {data}; use train or test")
    images = np.load(paths.images(root, ds.split), mmap_mode="r")
    labels = np.load(paths.labels(root, ds.split), mmap_mode="r")
    count = streamed_count(ds.limit, ds.examples.k, ds.split, len(images))
    images, labels = images[:count], labels[:count]
    models = prepare(root, images, cfg.input.scale, log)  # both models: the untrained model has the same layers
    names = models.trained.resolve(None if ds.layers is None else list(ds.layers), "dataset.layers", MAP_KINDS)

    tables = {}
    for role in paths.ROLES:
        network, size = models.network(role, names, ds.batch_size, "dataset.batch_size")
        tables[role] = stream_statistics(
            network, images, np.asarray(labels, np.int64), names, len(classes), models.scale.divisor,
            size, f"{role} {ds.split}", (ds.examples.k, ds.examples.by),
        )  # fmt: skip
        log.info("%s: %d %s images through %s", role, len(images), ds.split, ", ".join(names))

    models.warn_if_silent(tables["trained"], f"the {len(images)} {ds.split} images")
    with staged_dir(paths.dataset_dir(root)) as out:
        for role, by_layer in tables.items():
            for name, table in by_layer.items():
                write_csv(out / paths.dataset_table_name(role, name), channel_rows(table, classes))
                tops = (table["example_scores"], table["example_images"])
                examples = example_rows(name, *tops, labels, table["example_tied"])
                path = paths.examples_dir(root).relative_to(paths.dataset_dir(root))  # inside the staged folder
                write_csv(out / path / paths.dataset_table_name(role, name), examples)
        index = {"split": ds.split, "images": len(images), "layers": names, "classes": classes}
        write_json(out / paths.INDEX_NAME, {**index, "examples_by": ds.examples.by})
    write_json(paths.dataset_metrics(root), dataset_metrics(tables))


if __name__ == "__main__":
    run_stage("dataset_stats", run)
