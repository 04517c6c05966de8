"""Stage 1: the trained model, from the pinned URL (checksum-verified) or your own ``.keras`` file.

No TensorFlow: the archive is checked by reading its config and weights file (`stages/lib/archive.py`).
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
from pathlib import Path

from omegaconf import DictConfig

from stages.lib import layout
from stages.lib.archive import check_model_config, read_config, read_weights
from stages.lib.config import origin_root, run_stage
from stages.lib.errors import ConvlensError
from stages.lib.fetch import RemoteFile, fetch, search_dirs
from stages.lib.io import atomic_path

log = logging.getLogger(__name__)


def file_kind(mode: int) -> str:
    """What a non-regular file is, for a message: ``a directory``, ``a FIFO``, ``a character device``, …"""
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((text for test, text in kinds if test(mode)), "not a regular file")


def local_model(path: str, root: Path) -> Path:
    """``model.path`` (relative to the project, or to the original repository in a queued experiment),
    which must be a regular file: checked with ``os.stat`` before anything opens it (a FIFO would block)."""
    candidates = list(dict.fromkeys((base / path).resolve() for base in (root, origin_root(root))))
    modes = {}
    for candidate in candidates:
        try:
            modes[candidate] = os.stat(candidate).st_mode
        except OSError:
            continue
        if stat.S_ISREG(modes[candidate]):
            return candidate
    if not modes:
        raise ConvlensError(f"model.path {candidates[0]} does not exist; point it at a .keras file")
    candidate, mode = next(iter(modes.items()))
    kind = file_kind(mode)
    detail = "" if kind == "a directory" else ", not a regular file"
    raise ConvlensError(f"model.path {candidate} is {kind}{detail}; point it at a .keras file")


def run(cfg: DictConfig, root: Path) -> None:
    model = cfg.model
    if model.path:
        source = local_model(model.path, root)
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
