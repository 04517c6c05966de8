"""Stage: the images to look at (the book's ``train_input[0:1]``), picked from one split of the data.

No TensorFlow: it checks the indices and saves the chosen images and labels for the later stages.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from convlens.data.samples import check_samples
from convlens.errors import ConvlensError
from convlens.pipeline import paths
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import staged_dir, write_json

log = logging.getLogger(__name__)


def run(cfg: DictConfig, root: Path) -> None:
    split, data = cfg.samples.split, paths.data_dir(root)
    if not paths.images(root, split).is_file():
        raise ConvlensError(f"samples.split={split!r} has no images in {data}; use train or test")
    images = np.load(paths.images(root, split), mmap_mode="r")
    labels = np.load(paths.labels(root, split), mmap_mode="r")
    ids = check_samples(list(cfg.samples.indices), len(images), split)
    with staged_dir(paths.samples_dir(root)) as out:
        np.save(out / paths.SAMPLE_IMAGES_NAME, np.asarray(images[ids]))
        write_json(out / paths.INDEX_NAME, {"split": split, "samples": ids.tolist(), "labels": labels[ids].tolist()})
    log.info("%s images %s, labels %s", split, ids.tolist(), labels[ids].tolist())


if __name__ == "__main__":
    run_stage("samples", run)
