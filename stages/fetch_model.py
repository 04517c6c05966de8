"""Stage 1: the trained model, from the pinned URL (checksum-verified) or your own ``.keras`` file.

No TensorFlow: the archive is checked by reading its config and weights file (`stages/lib/archive.py`).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from omegaconf import DictConfig

from stages.lib import layout
from stages.lib.archive import check_model_config, read_config, read_weights
from stages.lib.config import run_stage
from stages.lib.fetch import RemoteFile, fetch, search_dirs
from stages.lib.io import atomic_path
from stages.lib.schema import model_file

log = logging.getLogger(__name__)


def run(cfg: DictConfig, root: Path) -> None:
    model = cfg.model
    if model.path:
        source = model_file(root, model.path)
    else:
        source = fetch(RemoteFile(model.file, model.sha256, (model.url,)), search_dirs(root))
    layers = check_model_config(read_config(source), str(source))
    # the weights file reads, points nowhere outside itself, and every stored shape fits the config
    read_weights(source, [layer.name for layer in layers if layer.kind == "Conv2D"])
    with atomic_path(layout.model_path(root, "trained")) as tmp:
        shutil.copyfile(source, tmp)
    log.info("model %s: %s", model.name, ", ".join(f"{layer.name} ({layer.kind})" for layer in layers))


if __name__ == "__main__":
    run_stage("fetch_model", run)
