"""Stage 3: the trained model's kernels and biases, with their statistics (the book's mean/std)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from convlens.analysis.weights import write_weight_artifacts
from convlens.pipeline.config import run_stage


def run(cfg: DictConfig, root: Path) -> None:
    write_weight_artifacts(root, "trained", cfg.weights.layers, cfg.weights.percentiles)


if __name__ == "__main__":
    run_stage("extract_weights", run)
