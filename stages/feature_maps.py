"""Stage: one layer's feature maps for the chosen samples, trained and untrained (the book's ``conv_acti``).

A ``foreach`` stage, one instance per entry of ``feature_maps.layers``: adding a layer runs only that layer's
instance. The forward pass is numpy (``convlens.model.forward``), so this stage starts without TensorFlow.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from convlens.analysis.stats import channel_stats, layer_summary, sample_summaries, table_rows
from convlens.checks import layer_item
from convlens.model.batching import batches
from convlens.model.network import prepare
from convlens.pipeline import paths
from convlens.pipeline.artifacts import load_samples
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import staged_dir, write_csv, write_json

log = logging.getLogger(__name__)


def run(cfg: DictConfig, root: Path, item: str) -> None:
    images, index = load_samples(root)
    here = bool(cfg.model.train_runs)  # trained at this input.scale: silent channels blame the training, not it
    models = prepare(root, images, cfg.input.scale, log, trained_here=here)  # both models: the same layers
    [name] = models.trained.resolve([layer_item(item)], "feature_maps.layers")
    x = models.inputs(images)

    maps = {}
    for role in paths.ROLES:
        network, size = models.network(role, [name], cfg.feature_maps.batch_size, "feature_maps.batch_size")
        maps[role] = np.concatenate([network.activations(x[s], [name])[0] for s in batches(len(x), size)])
        models.scale.refuse_non_finite(maps[role], f"the {role} model's {name} maps", models.archive(role))  # no NaN
        log.info("%s %s: feature maps %s", role, name, maps[role].shape)

    channels = {role: channel_stats(m) for role, m in maps.items()}
    models.warn_if_silent({name: channels["trained"]}, f"{index['split']} images {index['samples']}")
    with staged_dir(paths.feature_maps_dir(root, item)) as out:
        for role, array in maps.items():
            np.save(out / paths.maps_name(role), array)
            write_csv(out / paths.map_channels_name(role), table_rows("channel", channels[role]))
        write_json(out / paths.MAP_LAYER_NAME, {"name": name, "shape": list(maps["trained"].shape[1:]), **index})
        write_json(out / paths.MAP_SUMMARY_NAME, {role: layer_summary(stats) for role, stats in channels.items()})
        write_json(out / paths.MAP_SAMPLES_NAME, {role: sample_summaries(m) for role, m in maps.items()})


if __name__ == "__main__":
    run_stage("feature_maps", run)
