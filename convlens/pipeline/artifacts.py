"""Reading the pipeline's own artifacts back: arrays that earlier stages wrote under ``outputs/``."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from convlens.pipeline import paths
from convlens.pipeline.files import read_json, staged_dir, write_json

if TYPE_CHECKING:  # numpy is imported where an array is read: `metrics` merges JSON only
    import numpy as np


def load_kernels(root: Path, role: str) -> dict[str, np.ndarray]:
    """The kernels saved by the weight stages (``analysis.weights.write_weight_artifacts``), by layer name, in layer
    order."""
    import numpy as np

    return {name: np.load(paths.kernel(root, role, name)) for name in read_json(paths.weight_layers(root, role))}


def load_kinds(root: Path, role: str) -> dict[str, str | None]:
    """The layer classes of the kernels :func:`load_kernels` reads, by layer name."""
    return read_json(paths.weight_kinds(root, role))


def load_samples(root: Path) -> tuple[np.ndarray, dict]:
    """The chosen sample images and their index (split, sample ids, labels), saved by the samples stage."""
    import numpy as np

    index = read_json(paths.sample_index(root))
    return np.load(paths.sample_images(root)), index


SKIPPED = "skipped"  # the one key of an analysis' metrics file when the analysis does not apply to the model


def skipped(reason: str) -> dict[str, str]:
    """The metrics an analysis that does not apply to this model writes instead of its numbers: why, in one line.
    The experiment goes on; the report shows the reason where the analysis would be."""
    return {SKIPPED: reason}


def write_skipped(stage: str, reason: str, folders: Sequence[Path], metrics: Path) -> None:
    """What ``stage`` writes when it does not apply to this model: one log line, its ``folders`` empty (DVC
    records the stage and the experiment goes on) and :func:`skipped` as its ``metrics``."""
    logging.getLogger(f"stages.{stage}").info("%s skipped: %s", stage, reason)
    for folder in folders:
        with staged_dir(folder):
            pass
    write_json(metrics, skipped(reason))


def skip_reason(metrics: object) -> str | None:
    """Why the analysis was skipped, when ``metrics`` is what :func:`skipped` wrote; else ``None``."""
    if isinstance(metrics, dict) and set(metrics) == {SKIPPED} and isinstance(metrics[SKIPPED], str):
        return metrics[SKIPPED]
    return None


def load_classes(root: Path) -> list[str]:
    """The data's class names by label, written by ``fetch_data`` (``data.classes`` or the data's own names)."""
    return [str(name) for name in read_json(paths.classes(root))]


def merged_metrics(
    dataset: Mapping[str, Mapping[str, object]], activation_max: Mapping[str, object] | None = None
) -> dict[str, object]:
    """The metric files users diff (:data:`MERGED`), from the per-model summaries of ``dataset@<model>`` and
    ``activation_max@<model>`` (``paths.ROLES`` order): ``dataset`` and ``activation_max`` per model and layer;
    ``evaluate`` per model, or the trained model's :func:`skipped` (both models have the same last layer);
    ``input_range``, the trained model's. Without ``activation_max``, the first three."""
    evaluate = {role: part["evaluate"] for role, part in dataset.items()}
    trained = evaluate.get("trained")
    merged = {
        "dataset": {role: part["dataset"] for role, part in dataset.items()},
        "evaluate": trained if skip_reason(trained) else evaluate,
        "input_range": dataset["trained"]["input_range"],
    }
    return merged if activation_max is None else {**merged, "activation_max": dict(activation_max)}


MERGED = {  # merged_metrics' keys: where each is written
    "dataset": paths.dataset_metrics,
    "evaluate": paths.evaluate_metrics,
    "input_range": paths.input_range_path,
    "activation_max": paths.activation_max_metrics,
}


def write_merged(root: Path, merged: Mapping[str, object]) -> None:
    """Each of :func:`merged_metrics`' files written (atomically) where :data:`MERGED` says."""
    for name, value in merged.items():
        write_json(MERGED[name](root), value)
