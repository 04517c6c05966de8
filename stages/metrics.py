"""Stage: the per-model summaries merged into the metric files users diff (``dvc metrics diff``, ``dvc exp show``).

``dataset@<model>`` and ``activation_max@<model>`` run once per model, so that a change to one model reruns only
its own work; each writes its numbers beside its outputs. This stage (JSON only, no NumPy model run) writes them
under the names they always had: ``dataset.json``, ``evaluate.json``, ``input_range.json``, ``activation_max.json``.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from convlens.pipeline import paths
from convlens.pipeline.artifacts import merged_metrics, write_merged
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import read_json


def run(cfg: DictConfig, root: Path) -> None:
    dataset = {role: read_json(paths.dataset_summary(root, role)) for role in paths.ROLES}
    actmax = {role: read_json(paths.activation_max_summary(root, role)) for role in paths.ROLES}
    write_merged(root, merged_metrics(dataset, actmax))


if __name__ == "__main__":
    run_stage("metrics", run)
