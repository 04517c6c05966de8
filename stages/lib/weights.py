"""Kernel and bias artifacts with their statistics, for the trained model and its untrained model."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import layout
from .archive import check_model_config, read_config, read_weights, resolve_layers
from .errors import ConvlensError
from .io import staged_dir, write_csv, write_json
from .stats import filter_stats, kernel_stats, table_rows

log = logging.getLogger(__name__)

# The kernel statistics kept in the metrics JSON (`dvc exp show` columns); the CSV table has them all.
SUMMARY_KEYS = ("mean", "std", "min", "max", "nan", "inf")


def save_weight_artifacts(
    root: Path, role: str, layers: Sequence[str | int] | None, percentiles: Sequence[float]
) -> None:
    """Kernels and biases of ``layers`` of the ``role`` model as ``.npy``, plus per-layer and per-filter stats.

    :func:`layout.load_kernels` reads the kernels back.
    """
    percentiles = [float(p) for p in percentiles]
    archive = layout.model_path(root, role)
    names = resolve_layers(layers, check_model_config(read_config(archive), str(archive)), "Conv2D", "weights.layers")
    variables = read_weights(archive, names)
    summary, rows = {}, []
    for name in names:
        if not variables[name] or variables[name][0].ndim < 2:
            raise ConvlensError(f"layer {name!r} has no kernel; choose layers like Conv2D or Dense in weights.layers")
        kernel = variables[name][0]
        bias = variables[name][1] if len(variables[name]) > 1 else None
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
            np.save(out / f"{name}.kernel.npy", variables[name][0])
            if len(variables[name]) > 1:
                np.save(out / f"{name}.bias.npy", variables[name][1])
        write_json(out / "layers.json", names)
    with staged_dir(layout.metrics_dir(root) / "filters" / role) as out:
        for name in names:
            kernel, *rest = variables[name]
            write_csv(out / f"{name}.csv", table_rows("filter", filter_stats(kernel, rest[0] if rest else None)))
    write_csv(layout.metrics_dir(root) / f"weights_{role}.csv", rows)
    write_json(layout.metrics_dir(root) / f"weights_{role}.json", {role: summary})
