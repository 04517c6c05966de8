"""Which engine streams a split through the models (``compute.engine``): the numpy forward pass or Keras.

The numpy pass (``forward.Network``) starts at once but computes slower per image than Keras (~2-4× on 2 cores on
the book's model, less when every conv layer's maps come back); Keras needs TensorFlow, whose import and model load
cost ~3.5 s of start-up. ``auto`` weighs the two: Keras once the
pass is large enough (images × multiply-adds per image) that its speed pays the start-up back, or when a GPU is
visible to a CUDA build of TensorFlow. Decided without importing TensorFlow, from cheap signs: a heuristic
(bench/engine.md has the measurements behind the threshold, docs/gpu.md the GPU side).
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convlens.errors import ConvlensError
from convlens.model.archive import Archive
from convlens.model.forward import load_network
from convlens.model.ops import Unsupported

ENGINES = ("auto", "numpy", "keras")  # compute.engine (convlens/schema.py checks the same three)

# TensorFlow's start-up in a stage process (import ≈ 3 s + loading a .keras model), measured on 2 cores.
TF_STARTUP_S = 3.5
# auto picks Keras from this many multiply-adds (images × the model's work per image; each stage process runs one
# model): about where the numpy pass's extra time per image has paid for TensorFlow's start-up. Measured on 2 shared
# cores with the book's model, `python -m stages.dataset trained` as a whole process, after the two-thread numpy pass
# (docs/gpu.md): 10,000 images numpy 5.0 s / Keras 7.6 s, 30,000 11.5 / 12.4 s, 60,000 21.4 / 20.5 s; per 1,000
# images 0.33 s against 0.27 s over a fixed 1.6 s against 4.2 s: they cross at ~43,000 images (180 G). 175 G is
# ~42,000 images of the book's model, which keeps its 10,000 test images on numpy and sends its 60,000 training
# images to Keras. (It was 50 G with the one-thread pass, which cost 0.86 s per 1,000 images.)
KERAS_PAYS_OFF = 175_000_000_000

NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")  # one folder per GPU the NVIDIA driver sees (Linux)
CUDA_TENSORFLOW = "tensorflow"  # the CUDA build's distribution; the project's default is tensorflow-cpu


@dataclass(frozen=True)
class Choice:
    """The engine a stage uses and why, as the one line the log shows."""

    engine: str  # numpy | keras
    reason: str

    @property
    def line(self) -> str:
        return f"engine: {self.engine} ({self.reason})"


def check_engine(setting: object) -> str:
    """``setting`` if it names an engine, else a one-line :class:`ConvlensError`."""
    if setting not in ENGINES:
        raise ConvlensError(f"compute.engine={setting!r}: expected one of {', '.join(ENGINES)}")
    return str(setting)


def _count(n: float) -> str:
    """``n`` with three significant digits and an SI prefix: 4.17 M, 47 G."""
    for size, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.3g} {prefix}"
    return f"{n:.3g}"


def choose_engine(setting: str, images: int, work: int | None, gpu: str | None) -> Choice:
    """The engine for a pass of ``images`` images of ``work`` multiply-adds each (``None``: the numpy pass does not
    compute this model), ``gpu`` what :func:`gpu_visible` saw (``None``: no usable GPU). A pure function."""
    setting = check_engine(setting)
    if setting != "auto":
        return Choice(setting, "compute.engine")
    if work is None:
        return Choice("keras", "the numpy forward pass does not compute this model")
    if gpu:
        return Choice("keras", f"a GPU is visible: {gpu}")
    total = images * work
    pass_size = f"{images} images × {_count(work)} multiply-adds = {_count(total)}"
    if total >= KERAS_PAYS_OFF:
        return Choice(
            "keras", f"{pass_size} ≥ {_count(KERAS_PAYS_OFF)}: TensorFlow's {TF_STARTUP_S} s start-up pays off"
        )
    return Choice(
        "numpy", f"{pass_size} < {_count(KERAS_PAYS_OFF)}: too little to pay for TensorFlow's {TF_STARTUP_S} s start-up"
    )


def gpu_visible(
    environ: Mapping[str, str] = os.environ,
    gpus: Path = NVIDIA_GPUS,
    which: Callable[[str], str | None] = shutil.which,
    cuda_build: Callable[[], bool] | None = None,
) -> str | None:
    """What says a GPU would run Keras, or ``None``: TensorFlow's CUDA build installed (``pip install .[gpu]``),
    ``CUDA_VISIBLE_DEVICES`` not hiding every device, and the NVIDIA driver listing a GPU (or ``nvidia-smi`` on
    PATH). Cheap signs, no TensorFlow import: a heuristic (a driver too old for the CUDA build still says yes)."""
    if not (cuda_build or _cuda_tensorflow)():
        return None
    hidden = environ.get("CUDA_VISIBLE_DEVICES")
    if hidden is not None and hidden.strip() in ("", "-1"):
        return None
    try:
        listed = sorted(p.name for p in gpus.iterdir())
    except OSError:
        listed = []
    if listed:
        return f"{len(listed)} NVIDIA GPU{'s' if len(listed) > 1 else ''} in {gpus}"
    if smi := which("nvidia-smi"):
        return f"{smi}"
    return None


def _cuda_tensorflow() -> bool:
    """Whether the CUDA build of TensorFlow is installed (``tensorflow``, not ``tensorflow-cpu``), from its metadata."""
    try:
        importlib.metadata.distribution(CUDA_TENSORFLOW)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def multiply_adds(archive: Archive, sample: np.ndarray) -> int | None:
    """Multiply-adds of one image through the whole model (conv and dense kernels: each output position costs its
    kernel's size), measured on ``sample`` (1, H, W, C) with the numpy pass; ``None`` where that pass does not
    compute the model."""
    try:
        network = load_network(archive, sample=sample.shape[1:])  # an open input size: the images'
    except Unsupported:
        return None
    outputs = network.activations(sample[:1], network.names)
    weights = archive.weights(network.names)
    total = 0
    for name, out in zip(network.names, outputs, strict=True):
        kernel = next((w for w in weights.get(name, []) if w.ndim >= 2), None)
        total += int(out[0].size) if kernel is None else math.prod(out.shape[1:-1]) * int(kernel.size)
    return total
