"""Stage: the per-model summaries merged into the metric files users diff (``dvc metrics diff``, ``dvc exp show``).

``dataset@<model>`` and ``activation_max@<model>`` run once per model, so that a change to one model reruns only
its own work; each writes its numbers beside its outputs. This stage (JSON only, no NumPy model run) writes them
under the names they always had: ``dataset.json``, ``evaluate.json``, ``input_range.json``, ``activation_max.json``
(the reason it was not run under ``analyses=light``, the default).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

from convlens.pipeline import paths
from convlens.pipeline.artifacts import merged_metrics, skipped, write_merged
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import read_json

NOT_RUN = "activation maximization is opt-in: dvc exp run -S analyses=full (docs/analyses.md)"


def run(cfg: DictConfig, root: Path) -> None:
    dataset = {role: read_json(paths.dataset_summary(root, role)) for role in paths.ROLES}
    write_merged(root, merged_metrics(dataset, activation_max_metrics(root, cfg.analyses.activation_max)))


def activation_max_metrics(root: Path, roles: Sequence[str]) -> dict[str, object]:
    """Each of ``roles``' ascent summary (``analyses.activation_max``: the models ``activation_max@`` ran for), or
    why there is none: the default (``analyses=light``) leaves activation maximization out."""
    if not roles:
        return skipped(NOT_RUN)
    return {role: read_json(paths.activation_max_summary(root, paths.check_role(role))) for role in roles}


if __name__ == "__main__":
    run_stage("metrics", run)
