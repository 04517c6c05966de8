"""Stage 4: the untrained model (the book's baseline), the trained model's architecture freshly initialised.

The book's order: seed, load the trained model, then build the untrained layers; replayed in numpy without
TensorFlow where ``convlens.model.initial`` can, by Keras otherwise.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from convlens.analysis.weights import write_weight_artifacts
from convlens.model.archive import open_model
from convlens.model.initial import write_untrained
from convlens.pipeline import paths
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import atomic_path

log = logging.getLogger(__name__)


def told(how: str) -> str:
    """``write_untrained``'s word on how it built the model, for the log: why Keras built it is always the trained
    model's (its layers, initializers or stored numbers), never the fresh untrained model's."""
    reason = how.removeprefix("by Keras: ")
    return how if reason == how else f"by Keras, as the trained model's {reason}"


def run(cfg: DictConfig, root: Path) -> None:
    trained = open_model(root, "trained")
    trained.resolve(cfg.weights.layers, "weights.layers")  # fails here, before anything is written
    with atomic_path(paths.model_path(root, "untrained")) as tmp:
        how = write_untrained(trained, cfg.untrained.seed, tmp)
    log.info("untrained model built with seed %d (%s)", cfg.untrained.seed, told(how))
    write_weight_artifacts(root, "untrained", cfg.weights.layers, cfg.weights.percentiles)


if __name__ == "__main__":
    run_stage("build_untrained", run, skip_teardown=True)
