"""Stage: one layer's feature maps for the chosen samples, trained and untrained (the book's ``conv_acti``).

A ``foreach`` stage, one instance per entry of ``feature_maps.layers``: adding a layer runs only that layer's
instance. The forward pass is numpy (``convlens.model.forward``), so this stage starts without TensorFlow.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from convlens.analysis.stats import channel_stats, layer_summary, table_rows
from convlens.checks import layer_item
from convlens.model.archive import open_model
from convlens.model.batching import available_memory, batches, bytes_per_image, fit_batch_size
from convlens.model.forward import open_network
from convlens.model.inputs import first_conv, model_inputs, read_input_scale
from convlens.pipeline import paths
from convlens.pipeline.artifacts import load_samples
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import staged_dir, write_csv, write_json

log = logging.getLogger(__name__)


def run(cfg: DictConfig, root: Path, item: str) -> None:
    trained = open_model(root, "trained")
    [name] = trained.resolve([layer_item(item)], "feature_maps.layers")
    images, index = load_samples(root)
    trained.check_input(images.shape[1:])
    scale = read_input_scale(trained, cfg.input.scale)  # both models: the untrained one has the same layers
    if note := scale.note():
        log.info("%s", note)
    x = model_inputs(images, scale.divisor)

    maps = {}
    for role in paths.ROLES:
        network = open_network(trained if role == "trained" else open_model(root, role), [name], log.info)
        size, note = fit_batch_size(
            cfg.feature_maps.batch_size, bytes_per_image(network, x), available_memory(), "feature_maps.batch_size"
        )
        if note:
            log.info("%s", note)
        maps[role] = np.concatenate([network.activations(x[s], [name])[0] for s in batches(len(x), size)])
        log.info("%s %s: feature maps %s", role, name, maps[role].shape)

    channels = {role: channel_stats(m) for role, m in maps.items()}
    # trained only: the untrained model's zero biases make firing scale-free
    if name == first_conv(trained.layers):
        seen = f"{index['split']} images {index['samples']}"
        if warning := scale.silent_warning(name, channels["trained"]["max"], seen):
            log.warning("%s", warning)
    with staged_dir(paths.feature_maps_dir(root, item)) as out:
        for role, array in maps.items():
            np.save(out / paths.maps_name(role), array)
            write_csv(out / paths.map_channels_name(role), table_rows("channel", channels[role]))
        write_json(out / paths.MAP_LAYER_NAME, {"name": name, "shape": list(maps["trained"].shape[1:]), **index})
        write_json(out / paths.MAP_SUMMARY_NAME, {role: layer_summary(stats) for role, stats in channels.items()})


if __name__ == "__main__":
    run_stage("feature_maps", run)
