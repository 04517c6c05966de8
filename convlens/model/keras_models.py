"""Everything that needs TensorFlow: loading models and building the untrained model.

Imported by build_untrained, by ``forward.open_network`` for a model the numpy forward pass does not compute,
by fetch_model for a legacy ``.h5``, and by tests that check the numpy forward pass against Keras.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from convlens.errors import ConvlensError
from convlens.model.archive import Archive, write_reproducible


def _import_keras_quietly():
    """Import Keras with the C++ runtime's start-up banners (oneDNN, CPU features) sent to /dev/null.

    They are written to file descriptor 2 before any logging config applies; Python warnings and
    errors raised later still reach stderr.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # 3: also grappler's harmless "remapper failed" E-line
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
import tensorflow as tf  # noqa: E402  (loaded by Keras above, quietly; for gradients)


class _NoRetracingNotes(logging.Filter):
    """Drops TensorFlow's "N out of the last M calls … triggered tf.function retracing" note: the attribution
    checks trace one gradient function per model on purpose (each randomized copy is a new model)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


tf.get_logger().addFilter(_NoRetracingNotes())


def keras_error_summary(error: BaseException) -> str:
    """Keras's loading error as one line that keeps its cause.

    Keras nests its errors as ``<class '…Functional'> could not be deserialized properly. … config={…}.
    Exception encountered: <class '…Conv2D'> could not be … Exception encountered: <the cause>``: keep the
    innermost class and the cause, drop the advice and the config dumps between them.
    """
    text = str(error)
    *outer, cause = text.split("Exception encountered:")
    cause = re.sub(
        r"\s*(Full object config|config)\s*[:=]\s*\{.*", "", cause.strip().splitlines()[0] if cause.strip() else ""
    )
    classes = re.findall(r"<class '(?:[\w.]*\.)?(\w+)'> could not be deserialized", "".join(outer))
    return f"{classes[-1]} could not be deserialized: {cause}" if classes else cause or type(error).__name__


def one_line(error: BaseException) -> str:
    """An error Keras raised while building or computing a layer, in a line: its class, the layer call, the cause (no
    colours, no variable's values). A traced function's error (``tf.function``: "in user code:", the frames, then
    "<Class>: <the layer's error>") is read from its layer's error on."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(error).splitlines()]
    calling = "Exception encountered when calling "
    if lines and lines[0] == "in user code:":
        raised = [i for i, line in enumerate(lines) if re.match(r"\w+(Error|Exception): ", line)]
        lines = [lines[raised[0]].split(": ", 1)[1], *lines[raised[0] + 1 :]] if raised else lines[1:]
    where = next((line.removeprefix(calling).rstrip(".") for line in lines if line.startswith(calling)), None)
    cause = next((line for line in lines if line and not line.startswith(calling)), "")
    cause = re.sub(r"\s*\[Op:\w+\].*", "", re.sub(r"\{\{function_node [^}]*\}\}\s*", "", cause))  # TF's op names
    cause = re.sub(r"\s*\(Variable: <tf\.Variable.*", "", cause)  # a variable's repr, its values on the lines after
    cause = re.sub(r"\s*for '\{\{node .*", "", cause)  # a graph node's definition
    return f"{type(error).__name__}{f' in {where}' if where else ''}: {cause}".rstrip(": ")


def load_model(path: Path) -> keras.Model:
    """Load a ``.keras`` archive for inference, with Keras's safe mode on."""
    Archive.read(path)  # config checked: no class from outside Keras, no code
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except (ValueError, TypeError, OSError) as e:
        raise ConvlensError(f"{path}: Keras cannot load this model ({keras_error_summary(e)})") from e


def convert_h5(checked: Path, source: Path, dest: Path) -> None:
    """Load a legacy ``.h5`` model (``checked``: a private copy whose config and storage were checked by
    :func:`archive.read_h5_config`, named ``*.h5`` so Keras picks its HDF5 loader) with safe mode on and
    write it to ``dest`` as a reproducible ``.keras``; errors name ``source``, the user's file."""
    try:
        model = keras.saving.load_model(checked, compile=False, safe_mode=True)
    except (ValueError, TypeError, OSError, KeyError, AttributeError) as e:
        raise ConvlensError(
            f"{source}: Keras cannot load this .h5 model ({keras_error_summary(e)}); "
            "save it again with model.save('name.keras')"
        ) from e
    save_reproducible(model, dest)


def load_with_untrained_model(path: Path, seed: int) -> tuple[keras.Model, keras.Model]:
    """The trained model and a freshly initialised model of the same architecture.

    The book's order: global seed first, then the trained model, then the new layers, so that
    with seed 42 the untrained first Conv2D has the kernel the book's notebook printed. An adapted
    ``Normalization`` keeps its mean and variance (statistics of the data, not learned weights;
    cloning would reset them to 0 and 1), so both models see their inputs scaled alike.
    """
    keras.utils.set_random_seed(seed)
    trained = load_model(path)
    untrained = keras.models.clone_model(trained)
    for mine, theirs in zip(trained.layers, untrained.layers, strict=True):
        if isinstance(mine, keras.layers.Normalization) and mine.weights:
            theirs.set_weights(mine.get_weights())  # data statistics, not learned: the untrained model keeps them
            theirs.finalize_state()
    return trained, untrained


def save_reproducible(model: keras.Model, path: Path) -> None:
    """``model.save`` without the save date: the same weights give the same bytes."""
    with tempfile.TemporaryDirectory() as scratch:
        model.save(Path(scratch) / "model.keras")
        write_reproducible(Path(scratch) / "model.keras", path)


# What Keras raises for a model it loaded and cannot compute; not memory (TensorFlow's ResourceExhaustedError: a batch
# too large for the device) nor a cancelled run, which are not the model's.
MODEL_FAILURES = (ArithmeticError, LookupError, ValueError, TypeError, tf.errors.OpError)
NOT_THE_MODEL = (tf.errors.ResourceExhaustedError, tf.errors.CancelledError)


def _layers_of_class(model: keras.Model, class_name: str, prefix: str = "") -> list[str]:
    """The addresses (``outer/inner``) of ``model``'s layers of class ``class_name``, nested models' layers too."""
    found = []
    for layer in model.layers:
        address = f"{prefix}{layer.name}"
        if type(layer).__name__ == class_name:
            found.append(address)
        if isinstance(layer, keras.Model):
            found += _layers_of_class(layer, class_name, f"{address}/")
    return found


_KERAS_PACKAGES = tuple(str(Path(m.__file__).resolve().parent) + os.sep for m in (keras, tf))


def raised_by_keras(error: BaseException) -> bool:
    """Whether Keras or TensorFlow raised ``error``, not convlens's code around their calls (its numpy steps between
    them, where a ValueError, IndexError or TypeError is a bug of convlens's, not the model's): a TensorFlow op's
    error (``OpError``), an error raised inside a layer's call (Keras marks it: "Exception encountered when calling
    …"), or one whose innermost frame is in the Keras or TensorFlow package (an error raised while TensorFlow traced
    a function, "in user code: …", keeps the frame it was raised in). The marks first: both may filter their own
    frames out of a traceback."""
    if isinstance(error, tf.errors.OpError) or getattr(error, "_keras_call_info_injected", False):
        return True
    frames = [frame.f_code.co_filename for frame, _ in traceback.walk_tb(error.__traceback__)]
    return bool(frames) and str(Path(frames[-1]).resolve()).startswith(_KERAS_PACKAGES)


@contextmanager
def computed_by_keras(path: Path | None, model: keras.Model) -> Iterator[None]:
    """Keras computing ``model``, loaded from ``path``: what it raises for a model it loaded and cannot run on the
    stage's float32 images (a Softmax over an axis past its input's, an input dtype they do not fit, a Reshape their
    size does not fit) refused in one line naming the file, the layer and the cause (:func:`one_line`), the
    error kept as its ``__cause__``; anything else (memory, an interruption, an error convlens's own code in the
    block raised: :func:`raised_by_keras`) as it was."""
    try:
        yield
    except NOT_THE_MODEL:
        raise
    except MODEL_FAILURES as e:
        if not raised_by_keras(e):  # convlens's own code in the block (numpy steps between the Keras calls): a bug
            raise
        line = one_line(e)
        call = re.match(r"\w+ in (\w+)\.call\(\)", line)
        named = _layers_of_class(model, call.group(1)) if call else []
        named = named or re.findall(r"of layer '([\w.-]+)' is incompatible", line)  # a Functional's input check
        at = f" at layer{'s' if len(named) > 1 else ''} {', '.join(repr(n) for n in named)}" if named else ""
        raise ConvlensError(
            f"{path}: Keras cannot compute this model{at} ({line}); fix the model so that model.predict runs on "
            f"float32 images of shape {tuple(model.inputs[0].shape[1:])}, any number at a time, or use another one"
        ) from e


def _passes_gradient(layer: keras.layers.Layer) -> bool:
    """Whether ``layer`` carries a gradient from its output back to its float input: not where its output is an
    integer (a cast, a Discretization) or TensorFlow has no gradient for its operation. Probed on one random input
    of the shape of its first call; a layer with several inputs, an integer input (the layer that made it integer is
    the one named) or one that cannot be probed alone counts as passing."""
    try:
        given = layer.input
        if not hasattr(given, "shape") or not keras.backend.is_float_dtype(given.dtype):
            return True
        x = tf.random.uniform([1 if d is None else d for d in given.shape], dtype=given.dtype)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=False)
    except (*MODEL_FAILURES, AttributeError, NotImplementedError):  # a layer that cannot be probed alone
        return True
    if not hasattr(y, "dtype") or not keras.backend.is_float_dtype(y.dtype):
        return False
    return tape.gradient(y, x) is not None


def gradient_stops(model: keras.Model, prefix: str = "") -> list[str]:
    """The addresses (``outer/inner``) of ``model``'s layers no gradient passes through (:func:`_passes_gradient`),
    nested models' layers too."""
    found = []
    for layer in model.layers:
        address = f"{prefix}{layer.name}"
        if isinstance(layer, keras.Model):
            found += gradient_stops(layer, f"{address}/")
        elif not isinstance(layer, keras.layers.InputLayer) and not _passes_gradient(layer):
            found.append(address)
    return found


def no_gradient(path: Path | None, model: keras.Model, what: str, fix: str) -> ConvlensError:
    """The line for a model TensorFlow computes and cannot differentiate (``what``: the gradient that is None, e.g.
    "of the class score with respect to the input"), naming the layers that stop it and the fix."""
    stops = gradient_stops(model)
    at = f" at layer{'s' if len(stops) > 1 else ''} {', '.join(repr(n) for n in stops)}" if stops else ""
    return ConvlensError(
        f"{path}: this model has no gradient{at} (TensorFlow's gradient {what} is None: an integer output, or an "
        f"operation without a gradient); {fix}"
    )


def empty_layer(model: keras.Model, sample: tuple[int, ...]) -> str | None:
    """The first of ``model``'s layers whose output on samples of shape ``sample``
    Keras's shape inference finds empty or refuses (a window larger than its input), without computing anything:
    what a walk of the config (``layer_config.empty_output``) does not decide, such as a DepthwiseConv2D, for which
    TensorFlow's eager convolution returns numbers from uninitialised memory. None when no layer's output is."""
    spec = keras.KerasTensor((None, *sample))
    for layer in model.layers:
        try:
            output = layer.output
        except (AttributeError, ValueError):  # a layer called more than once has no single output
            continue
        try:
            found = keras.Model(model.inputs[0], output).compute_output_spec(spec)
        except ValueError:
            return layer.name
        shapes = [found.shape] if hasattr(found, "shape") else [f.shape for f in keras.tree.flatten(found)]
        if any(d is not None and d <= 0 for shape in shapes for d in shape[1:]):
            return layer.name
    return None


def layer_output(model: keras.Model, address: str) -> list[keras.Model]:
    """The models that, applied in turn, take ``model``'s input to the output of the layer at ``address``
    (``outer/inner``: layer ``inner`` of the nested model ``outer``: ``outer``'s input, then ``outer``'s graph)."""
    head, _, rest = address.partition("/")
    layer = model.get_layer(head)
    if not rest:
        return [keras.Model(model.inputs[0], layer.output)]
    return [keras.Model(model.inputs[0], layer.input), *layer_output(layer, rest)]


@dataclass
class KerasNetwork:
    """The layers' outputs computed by Keras itself: for models the numpy forward pass does not compute
    (branches, nested models, depthwise and separable convolutions, other layer kinds)."""

    model: keras.Model
    names: tuple[str, ...]
    parts: dict[str, list[keras.Model]] = field(default_factory=dict)
    path: Path | None = None  # the model's file, which a failure to compute names (``computed_by_keras``)

    @classmethod
    def load(cls, archive: Archive, names: Sequence[str]) -> KerasNetwork:
        return cls(load_model(archive.path), tuple(names), path=archive.path)

    def activations(self, x: np.ndarray, names: Sequence[str]) -> list[np.ndarray]:
        """The named layers' outputs for the batch ``x`` (inference: dropout off, batch statistics frozen)."""
        x = (x[..., np.newaxis] if x.ndim == len(self.model.inputs[0].shape) - 1 else x).astype(np.float32)
        found = []
        for name in names:
            if name not in self.parts:
                self.parts[name] = layer_output(self.model, name)
            y = x
            with computed_by_keras(self.path, self.model):
                for part in self.parts[name]:
                    y = part(y, training=False)
            found.append(np.asarray(y, dtype=np.float32))
        return found


@dataclass
class KerasEngine:
    """``compute.engine=keras``: one multi-output Keras model whose outputs are the ``names`` layers' outputs, run
    batch by batch in inference mode (dropout off, batch statistics frozen) by one traced function. The same
    protocol as the numpy ``forward.Network``; on a GPU when TensorFlow's CUDA build sees one."""

    model: keras.Model
    names: tuple[str, ...]
    run: object  # the traced call: a batch → one tensor per name
    path: Path | None = None  # the model's file, which a failure to compute names (``computed_by_keras``)

    @classmethod
    def load(cls, archive: Archive, names: Sequence[str]) -> KerasEngine | KerasNetwork:
        """The engine for ``names``; a layer inside a nested model (``outer/inner``) has no output of the outer
        graph, so such names are computed by :class:`KerasNetwork`, model by model."""
        # TensorFloat-32 (on by default on Ampere and newer GPUs) rounds conv and matmul inputs to 10 bits of mantissa:
        # off, so a GPU's numbers stay within float32 rounding of the numpy pass's. No effect on a CPU.
        tf.config.experimental.enable_tensor_float_32_execution(False)
        model = load_model(archive.path)
        if any("/" in name for name in names):
            return KerasNetwork(model, tuple(names), path=archive.path)
        outputs = keras.Model(model.inputs[0], [model.get_layer(name).output for name in names])
        run = tf.function(lambda x: outputs(x, training=False), reduce_retracing=True)
        return cls(outputs, tuple(names), run, archive.path)

    def activations(self, x: np.ndarray, names: Sequence[str]) -> list[np.ndarray]:
        """The named layers' outputs for the batch ``x``, as float32 numpy arrays (every name must be one of
        ``self.names``: the model computes those)."""
        x = (x[..., np.newaxis] if x.ndim == len(self.model.inputs[0].shape) - 1 else x).astype(np.float32)
        with computed_by_keras(self.path, self.model):
            outputs = self.run(tf.constant(x))
        found = dict(zip(self.names, outputs if isinstance(outputs, list | tuple) else [outputs], strict=True))
        return [np.asarray(found[name], dtype=np.float32) for name in names]
