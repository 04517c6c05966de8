"""Stage 1: the trained model, from the pinned URL (checksum-verified) or your own ``.keras`` or ``.h5`` file.

No TensorFlow for a ``.keras``: the archive is checked by reading its config and weights file
(``convlens/model/archive.py``, ``layers.py``, ``weights_file.py``). A legacy ``.h5`` (Keras 2, the book's
earlier editions) is checked the same way with h5py, then converted to ``.keras`` once here: the only
place this stage imports Keras.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from convlens.checks import model_file
from convlens.data.fetch import RemoteFile, fetch, search_dirs
from convlens.data.samples import check_samples, streamed_count
from convlens.errors import ConvlensError
from convlens.model.archive import RESAVE_KERAS2, Archive, is_hdf5, read_config, read_h5_config
from convlens.model.defaults import check_derived
from convlens.model.layers import CONV_KINDS, check_model_config, keras2_problem
from convlens.pipeline import paths
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import atomic_path
from convlens.schema import SPLITS

log = logging.getLogger(__name__)


def convert_legacy(source: Path, dest: Path) -> None:
    """A legacy ``.h5`` model as a reproducible ``.keras`` at ``dest``: a private copy is checked with h5py
    (storage, config allow-list, Lambda) before Keras opens it, then loaded with safe mode and saved."""
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "model.h5"
        shutil.copyfile(source, copy)
        check_model_config(read_h5_config(copy, source), str(source))
        log.info("%s: a legacy HDF5 model, converting it to .keras (loads Keras)", source)
        from convlens.model.keras_models import convert_h5  # TensorFlow starts here, for .h5 files only

        convert_h5(copy, source, dest)


def check_fits(cfg: DictConfig, root: Path, archive: Archive) -> None:
    """Fail here, in seconds, naming the user's file, not stages later: the configured layer lists must name
    layers of this model, its weights must read (nothing outside the file, every stored shape the one its config
    says), and the data's samples must fit its input. Checked before the model is written."""
    archive.weights([layer.name for layer in archive.layers if layer.kind in CONV_KINDS])
    for key, specs in (
        ("weights.layers", cfg.weights.layers),
        ("feature_maps.layers", cfg.feature_maps.each),
        ("dataset.layers", cfg.dataset.layers),
        ("activation_max.layers", cfg.activation_max.layers),
        ("gradcam.layer", None if cfg.gradcam.layer is None else [cfg.gradcam.layer]),
    ):
        try:
            resolved = archive.resolve(None if specs is None else list(specs), key)
            if key == "gradcam.layer" and cfg.analyses.attribution:  # gradcam's own rule: refused here, not last
                from convlens.analysis.attribution import gradcam_layer  # only then (30 ms of imports)

                gradcam_layer(archive.layers, None if specs is None else resolved[0])
        except ConvlensError as e:
            said = str(e) if str(e).startswith(key) else f"{key}: {e}"
            raise ConvlensError(f"{archive.source}: {said}") from e
    declared = cfg.model.conv_layers
    if declared is not None and list(declared) != archive.resolve(None, "model.conv_layers"):
        raise ConvlensError(
            f"{archive.source}: model.conv_layers {list(declared)} are not the model's conv layers "
            f"{archive.resolve(None, 'model.conv_layers')}; correct them in the model's preset"
        )
    counts = {}
    for split in SPLITS:  # dependencies under DVC; absent when run on its own first
        images = paths.images(root, split)
        if not images.is_file():
            continue
        try:
            shape = np.load(images, mmap_mode="r").shape
        except (OSError, ValueError) as e:
            raise ConvlensError(f"cannot read {images} ({e}); rerun fetch_data") from e
        archive.check_input(shape[1:])
        counts[split] = shape[0]
    check_counts(cfg, counts)


def check_counts(cfg: DictConfig, counts: dict[str, int]) -> None:
    """What only the data's size decides, checked before DVC deletes ``samples``' or ``dataset@<model>``'s outputs
    to rerun them: the sample indices within their split, the dataset pass's top examples within its images."""
    if cfg.samples.split in counts:
        check_samples(cfg.samples.indices, counts[cfg.samples.split], cfg.samples.split)
    if cfg.dataset.split in counts:
        streamed_count(cfg.dataset.limit, cfg.dataset.examples.k, cfg.dataset.split, counts[cfg.dataset.split])


def run(cfg: DictConfig, root: Path) -> None:
    model = cfg.model
    check_derived(OmegaConf.to_container(cfg), root)  # a model replaced since params.yaml was composed from it
    if model.path:
        source = model_file(root, model.path)
    else:
        source = fetch(RemoteFile(model.file, model.sha256, (model.url,)), search_dirs(root))
    if is_hdf5(source):
        with atomic_path(paths.model_path(root, "trained")) as tmp:
            convert_legacy(source, tmp)
            archive = Archive.read(tmp, str(source))  # the converted archive passes the same checks as a .keras
            check_fits(cfg, root, archive)
    else:
        config = read_config(source)
        problem = keras2_problem(config)  # before the checks below, which would misname the cause
        if problem:
            raise ConvlensError(
                f"{source} was saved by Keras 2 and Keras 3 cannot load it ({problem}); {RESAVE_KERAS2}"
            )
        archive = Archive.of(source, config)
        check_fits(cfg, root, archive)
        with atomic_path(paths.model_path(root, "trained")) as tmp:
            shutil.copyfile(source, tmp)
    log.info("model %s: %s", model.name, ", ".join(f"{layer.name} ({layer.kind})" for layer in archive.layers))


if __name__ == "__main__":
    run_stage("fetch_model", run)
