"""Two runs' per-layer statistics side by side: what changed, by how much.

Metrics files hold ``{model: {layer: {statistic: value}}}``, and model-level numbers beside the layers
(``evaluate.json``: ``{model: {"accuracy": value, "class_accuracy": {class: value}}}``); a comparison is one row
per model × layer × statistic with both values, the change and the relative change. A model-level number's
layer is :data:`MODEL_LEVEL`; a group of numbers such as ``class_accuracy`` stands where a layer would.
DVCLive's file of a training run (:data:`TRAINING_FILE`) is not keyed by model: its numbers are the kept epoch's of
the model trained here (``trained``), read by :func:`training_rows`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from convlens.pipeline import paths

COLUMNS = ["model", "layer", "statistic", "a", "b", "change", "relative_change"]
MODEL_LEVEL = "(model)"  # the layer column of a model-level number (accuracy); never a layer's name
# DVCLive's summary of training here (-S model=train), as DVC names the file: the kept epoch's loss, accuracy,
# val_loss, val_accuracy and step (that epoch) at the top, each conv layer's {kernel_mean, kernel_std} under its name.
TRAINING_FILE = (paths.train_live_dir(Path()) / "metrics.json").as_posix()
TRAINED = paths.ROLES[0]  # the model that training here makes (conf/model/train.yaml's train_runs)
TRAINING = "(training)"  # the layer column of a training number (val_accuracy); beside a layer: its kernels then


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def training_rows(data: Mapping[str, Any]) -> dict[tuple[str, str, str], float]:
    """DVCLive's metrics of training (:data:`TRAINING_FILE`) as statistics of the trained model: a number at the top
    (``val_accuracy``) keyed (``trained``, ``(training)``, name), a layer's (``conv2d: {kernel_mean}``) keyed
    (``trained``, ``conv2d (training)``, name)."""
    values = {}
    for name, value in data.items():
        if _is_number(value):
            values[(TRAINED, TRAINING, name)] = float(value)
        for statistic, number in value.items() if isinstance(value, Mapping) else ():
            if _is_number(number):
                values[(TRAINED, f"{name} {TRAINING}", statistic)] = float(number)
    return values


def statistic_rows(files: Mapping[str, Mapping[str, Any]]) -> dict[tuple[str, str, str], float]:
    """Numeric statistics of every metrics file, keyed by (model, layer, statistic); a number directly under a
    model (its accuracy) is keyed (model, ``MODEL_LEVEL``, name); DVCLive's file of training by
    :func:`training_rows`."""
    values = {}
    for path, data in files.items():
        if path == TRAINING_FILE:
            values.update(training_rows(data))
            continue
        for model, layers in data.items():
            for layer, stats in layers.items() if isinstance(layers, Mapping) else ():
                if _is_number(stats):
                    values[(model, MODEL_LEVEL, layer)] = float(stats)
                for statistic, value in stats.items() if isinstance(stats, Mapping) else ():
                    if _is_number(value):
                        values[(model, layer, statistic)] = float(value)
    return values


def compare_statistics(a: Mapping[tuple[str, str, str], float], b: Mapping[tuple[str, str, str], float]):
    """One row per statistic in either run; a value missing from one run is NaN (a layer added or dropped)."""
    rows = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, math.nan), b.get(key, math.nan)
        change = vb - va
        relative = 0.0 if va == vb else change / abs(va) if va != 0 and math.isfinite(va) else math.nan
        rows.append([*key, va, vb, change, relative])
    return pd.DataFrame(rows, columns=COLUMNS)


def shared(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of statistics both runs have (a layer both looked at, an analysis both ran)."""
    return table[table["a"].notna() & table["b"].notna()]


def one_sided(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of statistics only one run has (a layer added or dropped, an analysis only one ran): not changes."""
    return table[table["a"].isna() ^ table["b"].isna()]


def changed(table: pd.DataFrame, tolerance: float = 1e-9) -> pd.DataFrame:
    """The rows of statistics both runs have whose values differ by more than ``tolerance``."""
    both = shared(table)
    return both[(both["b"] - both["a"]).abs() > tolerance]
