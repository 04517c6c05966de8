"""Stage 4: the untrained model (the book's baseline), the trained model's architecture freshly initialised.

The book's order: seed, load the trained model, then build the untrained layers.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from convlens.analysis.weights import write_weight_artifacts
from convlens.model.archive import open_model
from convlens.pipeline import paths
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import atomic_path

log = logging.getLogger(__name__)


def run(cfg: DictConfig, root: Path) -> None:
    trained = open_model(root, "trained")
    trained.resolve(cfg.weights.layers, "weights.layers")  # fails here, before TensorFlow starts
    from convlens.model.keras_models import load_with_untrained_model, save_reproducible

    _, untrained = load_with_untrained_model(trained.path, cfg.untrained.seed)
    with atomic_path(paths.model_path(root, "untrained")) as tmp:
        save_reproducible(untrained, tmp)
    log.info("untrained model built with seed %d", cfg.untrained.seed)
    write_weight_artifacts(root, "untrained", cfg.weights.layers, cfg.weights.percentiles)


if __name__ == "__main__":
    run_stage("build_untrained", run, skip_teardown=True)
