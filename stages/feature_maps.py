"""Stage 5: the feature maps of the chosen layers for the chosen samples, trained and untrained.

One multi-output ``keras.Model`` per model (the book's ``conv_acti``), batched inference.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from stages.lib import layout
from stages.lib.archive import resolve_layers
from stages.lib.config import run_stage
from stages.lib.errors import ConvlensError
from stages.lib.io import staged_dir, write_csv, write_json
from stages.lib.samples import check_samples, model_inputs
from stages.lib.stats import channel_stats, layer_summary, table_rows

log = logging.getLogger(__name__)


def run(cfg: DictConfig, root: Path) -> None:
    fm = cfg.feature_maps
    data = layout.data_dir(root)
    if not (data / f"{fm.split}_images.npy").is_file():
        raise ConvlensError(f"feature_maps.split={fm.split!r} has no images in {data}; use train or test")
    images = np.load(data / f"{fm.split}_images.npy", mmap_mode="r")
    labels = np.load(data / f"{fm.split}_labels.npy", mmap_mode="r")
    ids = check_samples(list(cfg.samples), len(images), fm.split)
    x = model_inputs(images[ids], fm.scale)

    from stages.lib.keras_models import (
        activation_model,
        activations,
        input_check,
        load_model,
        map_layers_check,
        model_layers,
    )

    models = {role: load_model(layout.model_path(root, role)) for role in layout.ROLES}
    trained = models["trained"]
    input_check(trained, images.shape[1:])
    names = resolve_layers(None if cfg.layers is None else list(cfg.layers), model_layers(trained), "Conv2D")
    map_layers_check(trained, names)
    maps = {
        role: dict(zip(names, activations(activation_model(m, names), x, fm.batch_size, role), strict=True))
        for role, m in models.items()
    }

    channels = {role: {name: channel_stats(a) for name, a in by_layer.items()} for role, by_layer in maps.items()}
    with staged_dir(layout.feature_maps_dir(root)) as out:
        np.save(out / "samples.npy", np.asarray(images[ids]))
        write_json(
            out / "index.json",
            {"split": fm.split, "samples": ids.tolist(), "labels": np.asarray(labels[ids]).tolist(), "layers": names},
        )
        for role, by_layer in maps.items():
            for name, array in by_layer.items():
                (out / role).mkdir(exist_ok=True)
                np.save(out / role / f"{name}.npy", array)
                log.info("%s %s: feature maps %s", role, name, array.shape)
    with staged_dir(layout.metrics_dir(root) / "channels") as out:
        for role, by_layer in channels.items():
            for name, stats in by_layer.items():
                write_csv(out / f"{role}_{name}.csv", table_rows("channel", stats))
    write_json(
        layout.metrics_dir(root) / "feature_maps.json",
        {role: {name: layer_summary(s) for name, s in by_layer.items()} for role, by_layer in channels.items()},
    )


if __name__ == "__main__":
    run_stage("feature_maps", run)
