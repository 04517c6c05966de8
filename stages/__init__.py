"""The DVC stages, ``python -m stages.<name>``: thin scripts over the library in ``convlens``, and what two of
them share (:func:`write_weight_artifacts`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from convlens import layout
from convlens.files import staged_dir, write_csv, write_json
from convlens.weights import layer_weights, weight_metrics

log = logging.getLogger(__name__)


def write_weight_artifacts(
    root: Path, role: str, layers: Sequence[str | int] | None, percentiles: Sequence[float]
) -> None:
    """Kernels and biases of ``layers`` of the ``role`` model as ``.npy``, plus per-layer and per-filter stats
    (``extract_weights`` and ``build_untrained``); :func:`convlens.artifacts.load_kernels` reads the kernels back."""
    archive = layout.open_model(root, role)
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

    with staged_dir(layout.weights_dir(root, role)) as out:
        for name, w in weights.items():
            np.save(out / f"{layout.layer_stem(name)}.kernel.npy", w.kernel)
            if w.bias is not None:
                np.save(out / f"{layout.layer_stem(name)}.bias.npy", w.bias)
        write_json(out / "layers.json", names)
    with staged_dir(layout.metrics_dir(root) / "filters" / role) as out:
        for name, w in weights.items():
            write_csv(out / f"{layout.layer_stem(name)}.csv", w.filters)
    write_csv(layout.metrics_dir(root) / f"weights_{role}.csv", rows)
    write_json(layout.metrics_dir(root) / f"weights_{role}.json", {role: summary})
