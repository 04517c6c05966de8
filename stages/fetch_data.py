"""Stage 2: the data (``data.format``: IDX files, an NPZ, a CIFAR archive, an image folder) as uint8 ``.npy`` splits
and ``classes.json``.

No TensorFlow. Downloads are checksum-verified, local copies (``$CONVLENS_MIRROR``, ``../shared/mirror``, Keras's
cache) first; every file is tried before failing, and the failure names every missing one, the book's model too
when it is missing (``fetch_model`` runs after this stage): offline with nothing local, one run says everything to
copy. Your own ``data.path`` is read in place, never unpickled, every file checked (``convlens.data.sources``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from convlens.data.fetch import RemoteFile
from convlens.data.pixels import shape_text
from convlens.data.sources import write_dataset
from convlens.pipeline import paths
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import staged_dir

log = logging.getLogger(__name__)


def run(cfg: DictConfig, root: Path) -> None:
    model = cfg.model
    book = RemoteFile(model.file, model.sha256, (model.url,)) if model.file and not model.path else None
    with staged_dir(paths.data_dir(root)) as out:
        summaries = write_dataset(OmegaConf.to_container(cfg.data), root, out, also=book)
    for s in summaries:
        log.info("%s: %d images %s, %d classes", s.split, s.count, shape_text(s.shape), s.classes)


if __name__ == "__main__":
    run_stage("fetch_data", run)
