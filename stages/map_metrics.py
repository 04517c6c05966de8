"""Stage: the feature-map statistics of the ``feature_maps.layers`` as one metrics file and per-channel tables.

``feature_maps`` runs once per layer and keeps its statistics beside its maps; this stage gathers
those of the layers listed now, so a layer dropped from the list drops out of ``dvc exp show``,
``dvc metrics diff`` and the channel plots instead of lingering from an earlier run.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from omegaconf import DictConfig

from convlens.errors import ConvlensError
from convlens.pipeline import paths
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import read_json, staged_dir, write_json

log = logging.getLogger(__name__)


def run(cfg: DictConfig, root: Path) -> None:
    items = [str(layer) for layer in cfg.feature_maps.each]
    summary: dict[str, dict] = {role: {} for role in paths.ROLES}
    with staged_dir(paths.channels_dir(root)) as out:
        for item in items:
            name = read_json(paths.map_layer(root, item))["name"]
            if name in summary["trained"]:
                raise ConvlensError(
                    f"feature_maps.layers names layer {name!r} twice (as {item!r} and as another entry); list it once"
                )
            for role, stats in read_json(paths.map_summary(root, item)).items():
                summary[role][name] = stats
                table = out / paths.channels_name(name, role)
                table.parent.mkdir(exist_ok=True)
                shutil.copyfile(paths.map_channels(root, item, role), table)
    write_json(paths.feature_map_metrics(root), summary)
    log.info("statistics of %s", ", ".join(summary["trained"]))


if __name__ == "__main__":
    run_stage("map_metrics", run)
