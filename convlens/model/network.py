"""How a stage that runs both models on images starts: the trained model opened and checked against the images,
how pixels become its inputs (the note logged when the model scales raw pixels itself), each model's network for
some layers with a batch size that fits in memory, and the input-range warning of the trained first conv layer.

:func:`prepare` does the first part once; the :class:`Models` it returns does the rest, per model.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convlens.model.archive import Archive, open_model
from convlens.model.batching import available_memory, bytes_per_image, fit_batch_size
from convlens.model.engine import Choice, check_engine, choose_engine, gpu_visible, multiply_adds
from convlens.model.forward import Activations, open_network
from convlens.model.inputs import InputScale, first_conv, model_inputs, read_input_scale


@dataclass(frozen=True)
class Models:
    """Both models of the project at ``root``, ready to run on images shaped like ``sample``: the trained model's
    archive (the untrained one has the same layers), how pixels become their inputs, and where notes go."""

    root: Path
    trained: Archive
    scale: InputScale
    sample: np.ndarray  # one image as the models' input (1, H, W, C): what a batch's memory is measured on
    log: logging.Logger
    engine: str = "numpy"  # numpy | keras: what computes the layers (``engine.choose_engine``, chosen by prepare)

    @property
    def first_conv(self) -> str | None:
        """The first conv layer, whose channels show a wrong input scale (``inputs.first_conv``)."""
        return first_conv(self.trained.layers)

    def archive(self, role: str) -> Archive:
        """The ``role`` model's archive (``paths.ROLES``); the trained one is read once."""
        return self.trained if role == "trained" else open_model(self.root, role)

    def inputs(self, images: np.ndarray) -> np.ndarray:
        """Pixels → the models' inputs (``pixels / divisor``)."""
        return model_inputs(images, self.scale.divisor)

    def network(self, role: str, names: Sequence[str], batch_size: int, key: str) -> tuple[Activations, int]:
        """What computes the ``role`` model's ``names`` layers (``forward.open_network``, with the engine
        :func:`prepare` chose), and ``batch_size`` capped to what fits in memory (``batching.fit_batch_size``,
        ``key`` the setting; the cap logged)."""
        network = open_network(self.archive(role), names, self.log.info, self.engine, self.sample.shape[1:])
        size, note = fit_batch_size(batch_size, bytes_per_image(network, self.sample), available_memory(), key)
        if note:
            self.log.info("%s", note)
        return network, size

    def warn_if_silent(self, channels: Mapping[str, Mapping[str, np.ndarray]], seen: str) -> str | None:
        """``InputScale.silent_warning`` of the first conv layer, when ``channels`` (each layer's channel statistics
        in the trained model on what was ``seen``, ``max`` among them) has it, logged as a warning. The trained model
        only: the untrained model's zero biases make firing scale-free."""
        first = self.first_conv
        warning = self.scale.silent_warning(first, channels[first]["max"], seen) if first in channels else None
        if warning:
            self.log.warning("%s", warning)
        return warning

    def input_range(self, peaks: np.ndarray | None, split: str, images: int) -> dict[str, object]:
        """``InputScale.record`` of the first conv layer over ``images`` of ``split`` (``peaks``: its channel peaks
        in the trained model, ``None`` when no image was seen), its warning logged."""
        record = self.scale.record(self.first_conv, peaks if peaks is not None else np.zeros(0), split, images)
        if record["warning"]:
            self.log.warning("%s", record["warning"])
        return record


def prepare(
    root: Path,
    images: np.ndarray,
    scale: object,
    log: logging.Logger,
    role: str = "trained",
    engine: str = "numpy",
    trained_here: bool = False,
) -> Models:
    """The start of a stage that runs the models on ``images`` (N, H, W[, C] pixels): the ``role`` model opened (a
    stage of one model reads that model alone; both have the same layers), the images' shape checked against its
    input, the pixel divisor read (``input.scale``, or 1 for a model with its own Rescaling or Normalization: ``log``
    says so), and the engine chosen (``compute.engine``: ``numpy``, ``keras``, or ``auto``:
    :func:`engine.choose_engine` for all of ``images`` through that model, in one log line). ``trained_here``: the
    trained model was trained by this pipeline at this ``scale`` (``model.train_runs``), so its silent channels
    hint at a diverged training, not at a wrong scale."""
    trained = open_model(root, role)
    trained.check_input(images.shape[1:])
    input_scale = read_input_scale(trained, scale, trained_here)
    if note := input_scale.note():
        log.info("%s", note)
    sample = model_inputs(images[:1], input_scale.divisor)
    chosen = choose(engine, trained, sample, len(images))
    if engine == "auto":
        log.info("%s", chosen.line)
    return Models(root, trained, input_scale, sample, log, chosen.engine)


def choose(engine: str, archive: Archive, sample: np.ndarray, images: int) -> Choice:
    """``engine.choose_engine`` for ``images`` through the ``archive`` model (a stage process per model: each pays
    TensorFlow's start-up); the work and the GPU looked at only for ``auto``."""
    if check_engine(engine) != "auto":
        return choose_engine(engine, images, None, None)
    return choose_engine(engine, images, multiply_adds(archive, sample), gpu_visible())
