"""Stage ``train@trained`` (``-S model=train`` only): the book's chapter 8-2 training, every epoch on record.

Fashion-MNIST's train split ÷ ``input.scale``, ``train.validation_fraction`` held out as scikit-learn's
``train_test_split(random_state=42)`` holds it out, the book's CNN from the untrained baseline (``untrained.seed``),
Adam and early stopping (``convlens/model/training.py``). Everything is written into one staging folder and renamed
onto ``outputs/train`` when complete: a killed run leaves nothing there. docs/training.md.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from convlens.data.split import holdout_split
from convlens.errors import ConvlensError
from convlens.model.inputs import model_inputs
from convlens.pipeline import paths
from convlens.pipeline.artifacts import load_classes, load_samples
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import staged_dir
from convlens.schema import TRAIN_RUNS

log = logging.getLogger(__name__)

SPLIT_SEED = 42  # the book's train_test_split(random_state=42)


def run(cfg: DictConfig, root: Path, item: str) -> None:
    if item not in TRAIN_RUNS:
        raise ConvlensError(f"unknown training run {item!r}; model.train_runs may list {', '.join(TRAIN_RUNS)}")
    images, labels = np.load(paths.images(root, "train")), np.load(paths.labels(root, "train"))
    classes = len(load_classes(root))
    samples, _ = load_samples(root)
    train_rows, val_rows = holdout_split(len(images), float(cfg.train.validation_fraction), SPLIT_SEED)
    x = model_inputs(images, cfg.input.scale)
    y = labels.astype(np.int64)

    from convlens.model.training import Architecture, Recipe, initial_model, train  # TensorFlow starts here

    arch = Architecture.of(cfg.train.architecture)
    arch.check_fits(x.shape[1:])
    if list(cfg.model.conv_layers) != arch.conv_layers():
        raise ConvlensError(f"model.conv_layers must be {arch.conv_layers()}, one per train.architecture.filters")
    recipe = Recipe.of(cfg.train)
    log.info(
        "training on %d images, validating on %d; %s, %s",
        len(train_rows),
        len(val_rows),
        recipe,
        arch,
    )
    model = initial_model(x.shape[1:], classes, arch, cfg.untrained.seed)
    with staged_dir(paths.train_dir(root)) as out:
        train(
            model,
            (x[train_rows], y[train_rows]),
            (x[val_rows], y[val_rows]),
            recipe,
            model_inputs(samples, cfg.input.scale),
            arch.conv_layers(),
            out,
        )


if __name__ == "__main__":
    run_stage("train", run, skip_teardown=True)
