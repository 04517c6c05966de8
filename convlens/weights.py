"""Kernel and bias artifacts with their statistics, for the trained model and its untrained model."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import layout
from .errors import ConvlensError
from .files import staged_dir, write_csv, write_json
from .stats import filter_stats, kernel_stats, table_rows

log = logging.getLogger(__name__)

# The kernel statistics kept in the metrics JSON (`dvc exp show` columns); the CSV table has them all.
SUMMARY_KEYS = ("mean", "std", "min", "max", "nan", "inf")


def kernel_and_bias(variables: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    """A layer's kernel (its first variable: a SeparableConv2D's depthwise kernel) and its bias (the last, 1-D)."""
    bias = variables[-1] if len(variables) > 1 and variables[-1].ndim == 1 else None
    return variables[0], bias


def save_weight_artifacts(
    root: Path, role: str, layers: Sequence[str | int] | None, percentiles: Sequence[float]
) -> None:
    """Kernels and biases of ``layers`` of the ``role`` model as ``.npy``, plus per-layer and per-filter stats.

    :func:`artifacts.load_kernels` reads the kernels back.
    """
    percentiles = [float(p) for p in percentiles]
    archive = layout.open_model(root, role)
    names = archive.resolve(layers, "weights.layers")
    variables = archive.weights(names)
    summary, rows = {}, []
    for name in names:
        if not variables[name] or variables[name][0].ndim < 2:
            raise ConvlensError(f"layer {name!r} has no kernel; choose layers like Conv2D or Dense in weights.layers")
        kernel, bias = kernel_and_bias(variables[name])
        stats = kernel_stats(kernel, percentiles)
        log.info(
            "%s %s kernel %s bias %s mean %s std %s",
            role,
            name,
            kernel.shape,
            None if bias is None else bias.shape,
            np.float32(stats.get("mean", np.nan)),
            np.float32(stats.get("std", np.nan)),
        )
        summary[name] = {key: stats[key] for key in SUMMARY_KEYS if key in stats}
        rows.append({"layer": name, **stats})

    with staged_dir(layout.weights_dir(root, role)) as out:
        for name in names:
            kernel, bias = kernel_and_bias(variables[name])
            np.save(out / f"{layout.layer_stem(name)}.kernel.npy", kernel)
            if bias is not None:
                np.save(out / f"{layout.layer_stem(name)}.bias.npy", bias)
        write_json(out / "layers.json", names)
    with staged_dir(layout.metrics_dir(root) / "filters" / role) as out:
        for name in names:
            kernel, bias = kernel_and_bias(variables[name])
            write_csv(out / f"{layout.layer_stem(name)}.csv", table_rows("filter", filter_stats(kernel, bias)))
    write_csv(layout.metrics_dir(root) / f"weights_{role}.csv", rows)
    write_json(layout.metrics_dir(root) / f"weights_{role}.json", {role: summary})
