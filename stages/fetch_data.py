"""Stage 2: Fashion-MNIST's four IDX files, checksum-verified, parsed into ``.npy`` arrays.

No TensorFlow. Local copies (``$CONVLENS_MIRROR``, ``../shared/mirror``, Keras's cache) come first. Every file
is tried before failing, and the failure names every missing one, the book's model too when it is missing
(``fetch_model`` runs after this stage): offline with nothing local, one run says everything to copy.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from convlens.data.fetch import RemoteFile, offline_message, search_dirs, try_all
from convlens.data.idx import check_images_labels, read_idx
from convlens.errors import ConvlensError
from convlens.pipeline import paths
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import staged_dir

log = logging.getLogger(__name__)


def run(cfg: DictConfig, root: Path) -> None:
    data = cfg.data
    dirs = search_dirs(root, extra=[Path.home() / ".keras" / "datasets"])
    remotes = {
        key: RemoteFile(file.name, file.sha256, tuple(url + file.name for url in data.urls), data.subdir)
        for key, file in data.files.items()
    }
    found, missing = try_all([(remote, dirs) for remote in remotes.values()])
    model = cfg.model
    if missing and model.file and not model.path:  # the book's model: is it missing too? (else it is cached now)
        book = RemoteFile(model.file, model.sha256, (model.url,))
        missing = try_all([(book, search_dirs(root))])[1] + missing
    if missing:
        raise ConvlensError(offline_message(missing))
    arrays = {key: read_idx(path) for key, path in zip(remotes, found, strict=True)}
    splits = sorted({key.rsplit("_", 1)[0] for key in arrays})
    for split in splits:
        check_images_labels(arrays[f"{split}_images"], arrays[f"{split}_labels"], split)
    with staged_dir(paths.data_dir(root)) as out:
        for split in splits:
            np.save(out / paths.images_name(split), arrays[f"{split}_images"])
            np.save(out / paths.labels_name(split), arrays[f"{split}_labels"])
    for split in splits:
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        log.info(
            "%s: %d images %s, %d classes, mean pixel %.2f, label[0] = %d",
            split,
            len(images),
            "x".join(map(str, images.shape[1:])),
            len(np.unique(labels)),
            images.mean(),
            labels[0],
        )


if __name__ == "__main__":
    run_stage("fetch_data", run)
