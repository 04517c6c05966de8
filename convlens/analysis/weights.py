"""Kernels and biases with their statistics: a layer's variables in, its tables and metrics out."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convlens.analysis.stats import filter_stats, kernel_stats, table_rows
from convlens.errors import ConvlensError
from convlens.model.archive import open_model
from convlens.pipeline import paths
from convlens.pipeline.files import staged_dir, write_csv, write_json

# The kernel statistics kept in the metrics JSON (`dvc exp show` columns); the CSV table has them all.
SUMMARY_KEYS = ("mean", "std", "min", "max", "nan", "inf")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayerWeights:
    """One layer's kernel and bias, its kernel statistics and its per-filter table rows."""

    kernel: np.ndarray
    bias: np.ndarray | None
    stats: dict[str, object]
    filters: list[dict[str, object]]


def kernel_and_bias(variables: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    """A layer's kernel (its first variable: a SeparableConv2D's depthwise kernel) and its bias (the last, 1-D)."""
    bias = variables[-1] if len(variables) > 1 and variables[-1].ndim == 1 else None
    return variables[0], bias


def layer_weights(name: str, variables: Sequence[np.ndarray], percentiles: Sequence[float]) -> LayerWeights:
    """Layer ``name``'s kernel and bias with their statistics; a layer without a kernel (≥ 2-D) is refused."""
    if not variables or variables[0].ndim < 2:
        raise ConvlensError(f"layer {name!r} has no kernel; choose layers like Conv2D or Dense in weights.layers")
    kernel, bias = kernel_and_bias(variables)
    stats = kernel_stats(kernel, [float(p) for p in percentiles])
    return LayerWeights(kernel, bias, stats, table_rows("filter", filter_stats(kernel, bias)))


def weight_metrics(layers: Mapping[str, LayerWeights]) -> tuple[list[dict[str, object]], dict[str, dict]]:
    """The per-layer table (one row a layer, every kernel statistic) and the metrics summary (:data:`SUMMARY_KEYS`)."""
    rows = [{"layer": name, **w.stats} for name, w in layers.items()]
    summary = {name: {key: w.stats[key] for key in SUMMARY_KEYS if key in w.stats} for name, w in layers.items()}
    return rows, summary


def write_weight_artifacts(
    root: Path, role: str, layers: Sequence[str | int] | None, percentiles: Sequence[float]
) -> None:
    """Kernels and biases of ``layers`` of the ``role`` model as ``.npy``, plus per-layer and per-filter stats
    (``extract_weights`` and ``build_untrained``); :func:`~convlens.pipeline.artifacts.load_kernels` reads them back."""
    archive = open_model(root, role)
    names = archive.resolve(layers, "weights.layers")
    variables = archive.weights(names)
    weights = {name: layer_weights(name, variables[name], percentiles) for name in names}
    for name, w in weights.items():
        log.info(
            "%s %s kernel %s bias %s mean %s std %s",
            role,
            name,
            w.kernel.shape,
            None if w.bias is None else w.bias.shape,
            np.float32(w.stats.get("mean", np.nan)),
            np.float32(w.stats.get("std", np.nan)),
        )
    rows, summary = weight_metrics(weights)

    with staged_dir(paths.weights_dir(root, role)) as out:
        for name, w in weights.items():
            np.save(out / paths.kernel_name(name), w.kernel)
            if w.bias is not None:
                np.save(out / paths.bias_name(name), w.bias)
        write_json(out / paths.LAYERS_NAME, names)
        kinds = {layer.name: layer.kind for layer in archive.layers}
        write_json(out / paths.KINDS_NAME, {name: kinds.get(name) for name in names})
    with staged_dir(paths.filter_metrics_dir(root, role)) as out:
        for name, w in weights.items():
            write_csv(out / paths.filter_metrics_name(name), w.filters)
    write_csv(paths.weight_metrics(root, role, "csv"), rows)
    write_json(paths.weight_metrics(root, role, "json"), {role: summary})
