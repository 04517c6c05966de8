"""Training the book's CNN here (``-S model=train``): chapter 8-2's recipe, every epoch on record.

The model starts from the untrained baseline: the architecture is built, saved and handed to
``keras_models.load_with_untrained_model`` with ``untrained.seed``, the one function ``build_untrained`` calls on
the trained model. Both draw the same initial weights, so snapshot 0 *is* ``outputs/models/untrained.keras``'s
kernels, bit for bit. Then ``keras.utils.set_random_seed(train.seed)`` with TensorFlow's deterministic ops, Adam,
sparse categorical cross-entropy and ``EarlyStopping(restore_best_weights=True)``, as the book's notebook.

Every epoch DVCLive logs loss, accuracy, val_loss, val_accuracy and each conv layer's kernel mean and std; its
summary (``metrics.json``) then holds the kept epoch's (:func:`kept_summary`). The conv kernels and the samples'
feature maps are kept at epoch 0 and after each epoch. :func:`train` writes everything into one folder (the stage's
staging folder, renamed into place when the run is complete).
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convlens.errors import ConvlensError
from convlens.model.keras_models import keras, load_with_untrained_model, save_reproducible, tf
from convlens.pipeline import paths
from convlens.pipeline.files import write_json

log = logging.getLogger(__name__)

METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")  # Keras's names, as DVCLive and history.json record them


@dataclass(frozen=True)
class Architecture:
    """The book's 8-2 CNN with its sizes as settings (``train.architecture``)."""

    filters: tuple[int, ...] = (32, 64)
    kernel_size: int = 3
    dense_units: int = 100
    dropout: float = 0.4

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> Architecture:
        return cls(
            tuple(int(f) for f in config["filters"]),
            int(config["kernel_size"]),
            int(config["dense_units"]),
            float(config["dropout"]),
        )

    def conv_layers(self) -> list[str]:
        return ["conv2d" if i == 0 else f"conv2d_{i}" for i in range(len(self.filters))]

    def check_fits(self, input_shape: Sequence[int]) -> None:
        """Each conv layer is followed by a 2×2 max pooling: the image must keep at least one pixel."""
        side = min(input_shape[:2])
        if side >> len(self.filters) < 1:
            raise ConvlensError(
                f"train.architecture.filters {list(self.filters)}: a conv layer per entry, each followed by a "
                f"2×2 max pooling: a {input_shape[0]}×{input_shape[1]} image shrinks to nothing; use at most "
                f"{int(math.log2(side))} entries"
            )


@dataclass(frozen=True)
class Recipe:
    """``train.*``: how long, how fast, with which seed."""

    epochs: int = 20
    patience: int = 2
    batch_size: int = 32
    learning_rate: float = 0.001
    seed: int = 42

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> Recipe:
        return cls(
            int(config["epochs"]),
            int(config["patience"]),
            int(config["batch_size"]),
            float(config["learning_rate"]),
            int(config["seed"]),
        )


def architecture_model(input_shape: Sequence[int], classes: int, arch: Architecture) -> keras.Model:
    """Conv2D(f, k, relu, same) → MaxPool(2) per filter count → Flatten → Dense(relu) → Dropout → Dense(softmax),
    the layers named as a fresh Keras session names the book's (``conv2d``, ``max_pooling2d``, …, ``dense_1``)."""
    layers: list[Any] = [keras.Input(shape=tuple(input_shape))]
    for i, (name, filters) in enumerate(zip(arch.conv_layers(), arch.filters, strict=True)):
        pool = "max_pooling2d" if i == 0 else f"max_pooling2d_{i}"
        layers += [
            keras.layers.Conv2D(filters, arch.kernel_size, activation="relu", padding="same", name=name),
            keras.layers.MaxPooling2D(2, name=pool),
        ]
    layers += [
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(arch.dense_units, activation="relu", name="dense"),
        keras.layers.Dropout(arch.dropout, name="dropout"),
        keras.layers.Dense(classes, activation="softmax", name="dense_1"),
    ]
    return keras.Sequential(layers, name="sequential")


def initial_model(input_shape: Sequence[int], classes: int, arch: Architecture, seed: int) -> keras.Model:
    """The model training starts from: the architecture initialised exactly as ``build_untrained`` initialises a
    model of it (``load_with_untrained_model(…, untrained.seed)``), so epoch 0 is the untrained baseline."""
    with tempfile.TemporaryDirectory() as scratch:
        template = Path(scratch) / "architecture.keras"
        architecture_model(input_shape, classes, arch).save(template)
        _, untrained = load_with_untrained_model(template, seed)
    return untrained


def _reseed_dropout(model: keras.Model, seed: int) -> None:
    """Dropout layers draw their masks from a seed fixed when the layer was made (from ``untrained.seed``'s
    draws); give them ``train.seed``'s instead, so the training's randomness is all ``train.seed``'s."""
    for i, layer in enumerate(model.layers):
        generator = getattr(layer, "seed_generator", None)
        if generator is not None:
            state = generator.state
            state.assign(np.array([seed + i, 0], dtype=state.dtype))


def _stats(kernel: np.ndarray) -> tuple[float, float]:
    k = kernel.astype(np.float64)
    return float(k.mean()), float(k.std())


class _Recorder(keras.callbacks.Callback):
    """After each epoch: one log line, DVCLive's metrics, the conv kernels and the samples' feature maps."""

    def __init__(self, model: keras.Model, conv_layers: Sequence[str], samples: np.ndarray, live: Any, epochs: int):
        super().__init__()
        self.layers = list(conv_layers)
        self.probe = keras.Model(model.inputs[0], [model.get_layer(n).output for n in self.layers])
        self.samples = samples
        self.live = live
        self.epochs = epochs
        self.kernels: dict[str, list[np.ndarray]] = {n: [] for n in self.layers}
        self.maps: dict[str, list[np.ndarray]] = {n: [] for n in self.layers}
        self.history: dict[str, list[float]] = {m: [] for m in METRICS}
        self.seconds: list[float] = []
        self._started = 0.0
        self.snapshot(model)

    def snapshot(self, model: keras.Model) -> None:
        """The conv kernels and feature maps now (epoch 0 before training, then after each epoch), their
        statistics logged at DVCLive's current step."""
        outputs = self.probe(self.samples, training=False)
        outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
        for name, maps in zip(self.layers, outputs, strict=True):
            kernel = np.array(model.get_layer(name).get_weights()[0], dtype=np.float32)
            self.kernels[name].append(kernel)
            self.maps[name].append(np.asarray(maps, dtype=np.float32))
            mean, std = _stats(kernel)
            self.live.log_metric(f"{name}/kernel_mean", mean)
            self.live.log_metric(f"{name}/kernel_std", std)
        self.live.next_step()

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        seconds = time.perf_counter() - self._started
        logs = dict(logs or {})
        missing = [m for m in METRICS if m not in logs]
        if missing:
            raise ConvlensError(f"Keras reported no {', '.join(missing)} after epoch {epoch + 1}")
        self.seconds.append(seconds)
        for m in METRICS:
            value = float(logs[m])
            self.history[m].append(value)
            self.live.log_metric(m, value)
        log.info(
            "epoch %d/%d: loss %.4f, accuracy %.4f, val_loss %.4f, val_accuracy %.4f (%.1f s)",
            epoch + 1,
            self.epochs,
            *(self.history[m][-1] for m in METRICS),
            seconds,
        )
        self.snapshot(self.model)


def _epochs(count: int) -> str:
    """``1 epoch``, ``2 epochs``: the log's English."""
    return f"{count} epoch" if count == 1 else f"{count} epochs"


def _reason(stopper: keras.callbacks.EarlyStopping, recipe: Recipe) -> tuple[bool, str]:
    """Whether training stopped early, and why it ended, in words."""
    best = stopper.best_epoch + 1
    if stopper.stopped_epoch > 0:
        waited = max(recipe.patience, 1)  # Keras stops at the first epoch without improvement when patience is 0
        return True, (
            f"early stopping: val_loss did not improve for {_epochs(waited)} after epoch {best} "
            f"(train.patience={recipe.patience}); the weights of epoch {best} were restored"
        )
    return False, f"ran all train.epochs={recipe.epochs}; the weights of epoch {best} (lowest val_loss) were kept"


def _summary_value(value: float) -> float | str:
    """A number as DVCLive's summary holds it: NaN and ±inf as text (``Live.log_metric``'s rule), JSON has none."""
    return value if math.isfinite(value) else str(value)


def kept_summary(history: Mapping[str, Any], layers: Sequence[str]) -> dict[str, Any]:
    """DVCLive's summary (``metrics.json``, what ``dvc exp show`` and ``dvc metrics diff`` read) of the model kept:
    the four metrics of epoch ``best_epoch`` and each conv layer's kernel mean and std at its snapshot, in
    ``Live.log_metric``'s layout (``<layer>/kernel_std`` nested), ``step`` that epoch. Early stopping restores an
    earlier epoch's weights than the last; the last epoch's numbers would describe a model that is not kept."""
    best = int(history["best_epoch"])
    summary: dict[str, Any] = {m: _summary_value(history[m][best - 1]) for m in METRICS}
    for name in layers:
        summary[name] = {key: _summary_value(history[key][name][best]) for key in ("kernel_mean", "kernel_std")}
    return {**summary, "step": best}


def train(
    model: keras.Model,
    train_xy: tuple[np.ndarray, np.ndarray],
    val_xy: tuple[np.ndarray, np.ndarray],
    recipe: Recipe,
    samples: np.ndarray,
    conv_layers: Sequence[str],
    out: Path,
) -> dict[str, Any]:
    """Train ``model`` in place by ``recipe``; write into ``out`` the best model, DVCLive's folder, the snapshots
    and ``history.json``; return the history."""
    from dvclive import Live

    logging.getLogger("dvclive").setLevel(logging.WARNING)  # its "Logging to experiment …" line, every run
    keras.utils.set_random_seed(recipe.seed)
    tf.config.experimental.enable_op_determinism()
    _reseed_dropout(model, recipe.seed)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=recipe.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    live = Live(dir=str(out / paths.TRAIN_LIVE_NAME), save_dvc_exp=False, dvcyaml=False, report=None)
    recorder = _Recorder(model, conv_layers, samples, live, recipe.epochs)
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=recipe.patience, restore_best_weights=True)
    model.fit(
        *train_xy,
        batch_size=recipe.batch_size,
        epochs=recipe.epochs,
        validation_data=val_xy,
        callbacks=[recorder, stopper],  # the recorder first: its snapshot is the epoch's weights, not the restored
        verbose=0,
    )
    epochs_run = len(recorder.seconds)
    stopped, reason = _reason(stopper, recipe)
    history: dict[str, Any] = {
        "epochs_run": epochs_run,
        "best_epoch": stopper.best_epoch + 1,
        "stopped_early": stopped,
        "reason": reason,
        **recorder.history,
        "kernel_mean": {n: [_stats(k)[0] for k in recorder.kernels[n]] for n in recorder.layers},
        "kernel_std": {n: [_stats(k)[1] for k in recorder.kernels[n]] for n in recorder.layers},
        "seconds_per_epoch": recorder.seconds,
    }
    live.summary = kept_summary(history, recorder.layers)  # the kept model's numbers, not the last epoch's
    live.end()  # writes the summary (metrics.json) at the kept epoch's step; the per-epoch .tsv rows stay
    snapshots = out / paths.TRAIN_SNAPSHOTS_NAME
    snapshots.mkdir(parents=True, exist_ok=True)
    for name in recorder.layers:
        np.save(snapshots / paths.snapshot_kernels_name(name), np.stack(recorder.kernels[name]))
        np.save(snapshots / paths.snapshot_maps_name(name), np.stack(recorder.maps[name]))
    save_reproducible(model, out / paths.TRAIN_MODEL_NAME)
    write_json(out / paths.TRAIN_HISTORY_NAME, history)
    log.info("%s; %s run, best %d", reason, _epochs(epochs_run), history["best_epoch"])
    return history
