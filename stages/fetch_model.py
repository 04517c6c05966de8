"""Stage 1: the trained model, from the pinned URL (checksum-verified) or your own ``.keras`` file.

No TensorFlow: the archive is checked as a Keras archive by reading its config.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from omegaconf import DictConfig

from stages.lib import layout
from stages.lib.archive import check_model_config, read_config, read_weights
from stages.lib.config import origin_root, run_stage
from stages.lib.errors import ConvlensError
from stages.lib.fetch import RemoteFile, fetch, search_dirs
from stages.lib.io import atomic_path

log = logging.getLogger(__name__)


def run(cfg: DictConfig, root: Path) -> None:
    model = cfg.model
    if model.path:
        candidates = dict.fromkeys((base / model.path).resolve() for base in (root, origin_root(root)))
        source = next((c for c in candidates if c.is_file()), None)
        if source is None:
            raise ConvlensError(f"model.path {next(iter(candidates))} does not exist; point it at a .keras file")
    else:
        source = fetch(RemoteFile(model.file, model.sha256, (model.url,)), search_dirs(root))
    layers = check_model_config(read_config(source), str(source))
    read_weights(source, [layer.name for layer in layers if layer.kind == "Conv2D"])  # the weights file reads
    with atomic_path(layout.model_path(root, "trained")) as tmp:
        shutil.copyfile(source, tmp)
    log.info("model %s: %s", model.name, ", ".join(f"{layer.name} ({layer.kind})" for layer in layers))


if __name__ == "__main__":
    run_stage("fetch_model", run)
