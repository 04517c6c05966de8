"""Kernels and biases with their statistics: a layer's variables in, its tables and metrics out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import ConvlensError
from .stats import filter_stats, kernel_stats, table_rows

# The kernel statistics kept in the metrics JSON (`dvc exp show` columns); the CSV table has them all.
SUMMARY_KEYS = ("mean", "std", "min", "max", "nan", "inf")


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
