"""Everything that needs TensorFlow: loading models, the untrained twin, activation models.

Imported only by the stages that run a model (build_baseline, feature_maps).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .archive import LayerInfo, check_model_config, read_config, write_reproducible
from .errors import ConvlensError


def _import_keras_quietly():
    """Import Keras with the C++ runtime's start-up banners (oneDNN, CPU features) sent to /dev/null.

    They are written to file descriptor 2 before any logging config applies; Python warnings and
    errors raised later still reach stderr.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        import keras
    finally:
        os.dup2(saved, 2)
        os.close(null)
        os.close(saved)
    return keras


keras = _import_keras_quietly()


def load_model(path: Path) -> keras.Model:
    """Load a ``.keras`` archive for inference, with Keras's safe mode on."""
    check_model_config(read_config(path), str(path))
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except (ValueError, TypeError, OSError) as e:
        raise ConvlensError(f"{path}: Keras cannot load this model ({str(e).splitlines()[0][:200]})") from e


def load_with_untrained_twin(path: Path, seed: int) -> tuple[keras.Model, keras.Model]:
    """The trained model and a freshly initialised model of the same architecture.

    The book's order: global seed first, then the trained model, then the new layers, so that
    with seed 42 the twin's first Conv2D has the kernel the book's notebook printed.
    """
    keras.utils.set_random_seed(seed)
    trained = load_model(path)
    return trained, keras.models.clone_model(trained)


def save_reproducible(model: keras.Model, path: Path) -> None:
    """``model.save`` without the save date: the same weights give the same bytes."""
    with tempfile.TemporaryDirectory() as scratch:
        model.save(Path(scratch) / "model.keras")
        write_reproducible(Path(scratch) / "model.keras", path)


def model_layers(model: keras.Model) -> list[LayerInfo]:
    """``model.layers`` as LayerInfo (input layers left out, as in a Sequential's ``layers``)."""
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    return [LayerInfo(i, layer.name, type(layer).__name__) for i, layer in enumerate(layers)]


def map_layers_check(model: keras.Model, names: Sequence[str]) -> None:
    """Feature maps are drawn from 4-D (N, H, W, C) outputs: Conv2D, pooling and the like."""
    for name in names:
        shape = model.get_layer(name).output.shape
        if len(shape) != 4:
            raise ConvlensError(
                f"layer {name!r} outputs shape {tuple(shape)}, not N×H×W×C feature maps; "
                "choose a Conv2D or pooling layer"
            )


def input_check(model: keras.Model, sample_shape: tuple[int, ...]) -> None:
    """The data's samples (H, W) or (H, W, C) must fit the model's input."""
    want = tuple(model.inputs[0].shape[1:])
    got = sample_shape if len(sample_shape) == len(want) else (*sample_shape, 1)
    if got != want:
        raise ConvlensError(f"the model expects inputs of shape {want} but the data's samples are {sample_shape}")


def activation_model(model: keras.Model, names: Sequence[str]) -> keras.Model:
    """One multi-output model giving the named layers' activations (the book's ``conv_acti``)."""
    return keras.Model(model.inputs[0], [model.get_layer(n).output for n in names])


def activations(model: keras.Model, x: np.ndarray, batch_size: int, label: str) -> list[np.ndarray]:
    """Run ``x`` through a multi-output model in batches; one array per output."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConvlensError(f"feature_maps.batch_size must be a positive integer, got {batch_size!r}")
    batches = range(0, len(x), batch_size)
    outs: list[list[np.ndarray]] = []
    for start in tqdm(batches, desc=label, unit="batch", disable=len(batches) < 4, leave=False):
        y = model(x[start : start + batch_size], training=False)
        outs.append([np.asarray(t) for t in (y if isinstance(y, list | tuple) else [y])])
    return [np.concatenate(parts) for parts in zip(*outs, strict=True)]
