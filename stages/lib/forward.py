"""The forward pass in numpy: feature maps without TensorFlow.

A ``.keras`` archive's layer chain (config + weights, read by ``archive``) becomes a list of
numpy functions, one per layer, so the stages that compute activations start in a fraction of
a second instead of importing TensorFlow. Inference only; a test checks every supported layer
kind against Keras itself. What it does not compute (a branch, a nested model, other layer kinds) raises
``Unsupported``, and :func:`open_network` hands the model to Keras instead.

Also how pixels become the network's inputs (``input_scale``): ``pixels / input.scale``, or raw
pixels for a model that starts with Rescaling or Normalization; and the warning when most channels of
the first Conv2D never fire, the sign of pixels scaled otherwise than the model was trained on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .archive import Archive
from .errors import ConvlensError
from .layers import CONV_KINDS, LayerInfo, input_shape
from .samples import SCALE_KEY, check_scale

Op = Callable[[np.ndarray], np.ndarray]

IM2COL_BELOW_CHANNELS = 8  # conv2d's strategy switch, measured on the book's two layers (C = 1 and 32)

KERAS_EPSILON = 1e-7  # keras.backend.epsilon(), the floor of Normalization's standard deviation
IDENTITY_KINDS = frozenset(
    {"Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "ActivityRegularization"}
)
RAW_PIXEL_KINDS = ("Rescaling", "Normalization")  # a model starting with one of these scales its own input


class Unsupported(ConvlensError):
    """What the numpy forward pass does not compute (a branch, a nested model, a layer kind): Keras does."""


class Activations(Protocol):
    """What computes layer outputs: :class:`Network` (numpy) or ``keras_models.KerasNetwork``."""

    names: tuple[str, ...]

    def activations(self, x: np.ndarray, names: Sequence[str]) -> list[np.ndarray]: ...


@dataclass(frozen=True)
class Network:
    """A layer chain ready to run: input shape (no batch axis), layer names and their functions."""

    input_shape: tuple[int | None, ...]
    names: tuple[str, ...]
    ops: tuple[Op, ...]

    def activations(self, x: np.ndarray, names: Sequence[str]) -> list[np.ndarray]:
        """The named layers' outputs for the batch ``x``, stopping after the deepest one."""
        x = (x[..., np.newaxis] if x.ndim == len(self.input_shape) else x).astype(np.float32, copy=False)
        wanted, last = set(names), max(self.names.index(n) for n in names)
        found: dict[str, np.ndarray] = {}
        for name, op in zip(self.names[: last + 1], self.ops, strict=False):
            x = op(x)
            if name in wanted:
                found[name] = x
        return [found[n] for n in names]


# --- activations -------------------------------------------------------------------------------


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


ACTIVATIONS: dict[str, Op] = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "softmax": _softmax,
    "softplus": lambda x: np.logaddexp(0, x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "silu": lambda x: x / (1 + np.exp(-x)),
}
ACTIVATIONS["swish"] = ACTIVATIONS["silu"]


def activation(spec: str | dict | None, layer: str) -> Op:
    """The function for a Keras activation as the config names it (``"relu"`` or a serialized dict)."""
    name = spec.get("config", spec.get("class_name")) if isinstance(spec, dict) else spec
    name = "linear" if name is None else name
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise Unsupported(f"layer {layer!r} uses activation {name!r}")
    return ACTIVATIONS[name]


# --- layers ------------------------------------------------------------------------------------


def _pad_same(x: np.ndarray, window: tuple[int, int], strides: tuple[int, int], value: float) -> np.ndarray:
    """Pad H and W as Keras's ``padding="same"`` does (the extra row/column goes after)."""
    pads = []
    for size, k, s in zip(x.shape[1:3], window, strides, strict=True):
        total = max((-(-size // s) - 1) * s + k - size, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, [(0, 0), *pads, (0, 0)], constant_values=value)


def conv2d(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, strides: tuple[int, int], padding: str):
    """2-D convolution (cross-correlation, channels last): (N, H, W, C) × (kh, kw, C, F) → (N, H', W', F).

    Few input channels: the patches are gathered once (im2col) and the layer is one matrix product.
    Many: one product per kernel offset, summed, which skips copying every patch (2-4× faster at C=32).
    """
    kh, kw, channels, filters = kernel.shape
    if padding == "same":
        x = _pad_same(x, (kh, kw), strides, 0.0)
    out_h = (x.shape[1] - kh) // strides[0] + 1
    out_w = (x.shape[2] - kw) // strides[1] + 1

    def window(i: int, j: int) -> np.ndarray:
        return x[:, i : i + strides[0] * out_h : strides[0], j : j + strides[1] * out_w : strides[1]]

    if channels < IM2COL_BELOW_CHANNELS:
        patches = np.empty((len(x), out_h, out_w, kh, kw, channels), np.float32)
        for i in range(kh):
            for j in range(kw):
                patches[:, :, :, i, j] = window(i, j)
        out = (patches.reshape(-1, kh * kw * channels) @ kernel.reshape(-1, filters)).reshape(
            len(x), out_h, out_w, filters
        )
    else:
        out = np.zeros((len(x), out_h, out_w, filters), np.float32)
        for i in range(kh):
            for j in range(kw):
                out += window(i, j) @ kernel[i, j]
    return out if bias is None else out + bias


def pool2d(x: np.ndarray, size: tuple[int, int], strides: tuple[int, int], padding: str, mode: str) -> np.ndarray:
    """Max or average pooling over H and W (average ignores the padding, as Keras does)."""
    if padding == "same":
        counts = _pad_same(np.ones((1, *x.shape[1:3], 1), np.float32), size, strides, 0.0)
        x = _pad_same(x, size, strides, -np.inf if mode == "max" else 0.0)
    windows = sliding_window_view(x, size, axis=(1, 2))[:, :: strides[0], :: strides[1]]
    if mode == "max":
        return windows.max(axis=(-2, -1))
    total = windows.sum(axis=(-2, -1))
    if padding != "same":
        return total / (size[0] * size[1])
    return total / sliding_window_view(counts, size, axis=(1, 2))[:, :: strides[0], :: strides[1]].sum(axis=(-2, -1))


def normalization(
    x: np.ndarray, mean: np.ndarray, variance: np.ndarray, axis: Sequence[int], invert: bool
) -> np.ndarray:
    """Keras's ``Normalization``: ``(x - mean) / max(sqrt(variance), 1e-7)`` (``invert``: the reverse).

    ``mean`` and ``variance`` hold one value per position of the kept ``axis`` (an adapted layer's
    weights), or fewer trailing dimensions, or a scalar (values given in the config): they are lined up
    with the kept axes from the right, as Keras does.
    """
    keep = sorted(a % x.ndim for a in axis)
    shape = [1] * x.ndim
    for i in range(1, np.ndim(mean) + 1):
        shape[keep[-i]] = np.shape(mean)[-i]
    mean = np.reshape(mean, shape).astype(np.float32)
    std = np.maximum(np.sqrt(np.reshape(variance, shape).astype(np.float32)), np.float32(KERAS_EPSILON))
    return (mean + x * std) if invert else (x - mean) / std


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def layer_op(kind: str, cfg: dict, weights: list[np.ndarray]) -> Op:
    """The numpy function computing one Keras layer at inference time."""
    name = cfg["name"]
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise Unsupported(f"layer {name!r} is channels_first")
    if kind == "Conv2D":
        if _pair(cfg.get("dilation_rate", 1)) != (1, 1) or cfg.get("groups", 1) != 1:
            raise Unsupported(f"layer {name!r} is a dilated or grouped Conv2D")
        kernel, bias = weights[0], (weights[1] if cfg.get("use_bias", True) else None)
        act, strides, padding = activation(cfg.get("activation"), name), _pair(cfg["strides"]), cfg["padding"]
        return lambda x: act(conv2d(x, kernel, bias, strides, padding))
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        size = _pair(cfg["pool_size"])
        strides = _pair(cfg.get("strides") or size)
        mode = "max" if kind == "MaxPooling2D" else "avg"
        return lambda x: pool2d(x, size, strides, cfg.get("padding", "valid"), mode)
    if kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        reduce, keep = (np.mean if kind.startswith("GlobalAverage") else np.max), bool(cfg.get("keepdims"))
        return lambda x: reduce(x, axis=(1, 2), keepdims=keep)
    if kind == "Flatten":
        return lambda x: x.reshape(len(x), -1)
    if kind == "Reshape":
        shape = tuple(cfg["target_shape"])
        return lambda x: x.reshape(len(x), *shape)
    if kind == "Dense":
        kernel, bias = weights[0], (weights[1] if cfg.get("use_bias", True) else None)
        act = activation(cfg.get("activation"), name)
        return lambda x: act(x @ kernel if bias is None else x @ kernel + bias)
    if kind == "Activation":
        return activation(cfg.get("activation"), name)
    if kind == "ReLU":
        top, slope, threshold = cfg.get("max_value"), cfg.get("negative_slope", 0.0), cfg.get("threshold", 0.0)
        return lambda x: np.clip(np.where(x >= threshold, x, slope * (x - threshold)), None, top)
    if kind == "LeakyReLU":
        slope = cfg.get("negative_slope", cfg.get("alpha", 0.3))
        return lambda x: np.where(x >= 0, x, slope * x)
    if kind == "Softmax":
        return lambda x: _softmax(x, cfg.get("axis", -1))
    if kind == "Rescaling":
        scale, offset = cfg.get("scale", 1.0), cfg.get("offset", 0.0)
        return lambda x: x * np.float32(scale) + np.float32(offset)
    if kind == "Normalization":
        axis = cfg.get("axis")
        axis = () if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
        given = cfg.get("mean") is not None
        mean, variance = (cfg["mean"], cfg["variance"]) if given else (weights[0], weights[1])
        invert = bool(cfg.get("invert", False))
        return lambda x: normalization(x, np.asarray(mean), np.asarray(variance), axis, invert)
    if kind == "BatchNormalization":
        if cfg.get("axis", -1) not in (-1, [-1], 3, [3]):
            raise Unsupported(f"layer {name!r} is a BatchNormalization over an axis other than the last")
        parts = iter(weights)
        gamma = next(parts) if cfg.get("scale", True) else np.float32(1)
        beta = next(parts) if cfg.get("center", True) else np.float32(0)
        mean, var = next(parts), next(parts)
        factor = (gamma / np.sqrt(var + np.float32(cfg.get("epsilon", 1e-3)))).astype(np.float32)
        shift = (beta - mean * factor).astype(np.float32)
        return lambda x: x * factor + shift
    if kind in IDENTITY_KINDS:
        return lambda x: x
    raise Unsupported(f"layer {name!r} is a {kind}")


# --- the model ---------------------------------------------------------------------------------


def _chain(config: dict, upto: str | None = None) -> tuple[tuple[int | None, ...], list[dict]]:
    """The model's input shape and its non-input layer entries, after checking that they form one chain up to
    layer ``upto`` (a branch or merge after it does not matter)."""
    entries = config["config"]["layers"]
    if upto is not None and "/" in upto:
        raise Unsupported(f"layer {upto!r} is inside the nested model {upto.split('/')[0]!r}")
    if config["class_name"] != "Sequential":
        previous = None
        for entry in entries:
            sources = [
                arg["config"]["keras_history"][0]
                for node in entry.get("inbound_nodes", [])
                for arg in node.get("args", [])
                if isinstance(arg, dict) and "keras_history" in arg.get("config", {})
            ]
            if previous is not None and sources != [previous]:
                raise Unsupported(f"layer {entry['config']['name']!r} does not simply follow {previous!r} (a branch)")
            previous = entry["config"]["name"]
            if previous == upto:
                break
    return input_shape(config), [e for e in entries if e["class_name"] != "InputLayer"]


def load_network(archive: Archive, upto: str | None = None) -> Network:
    """The network stored in a ``.keras`` archive (no TensorFlow), up to (and including) layer ``upto``."""
    input_shape, entries = _chain(archive.config, upto)
    names = [entry["config"]["name"] for entry in entries]
    if upto is not None:
        names = names[: names.index(upto) + 1]
    weights = archive.weights(names)
    ops = [layer_op(e["class_name"], e["config"], weights[n]) for e, n in zip(entries, names, strict=False)]
    return Network(input_shape, tuple(names), tuple(ops))


def open_network(archive: Archive, names: Sequence[str], log: Callable[[str], None]) -> Activations:
    """What computes the ``names`` layers' outputs: the numpy forward pass where it can, else Keras itself
    (TensorFlow starts; ``log`` says why)."""
    order = [layer.name for layer in archive.layers]
    try:
        return load_network(archive, upto=max(names, key=order.index))
    except Unsupported as e:
        log(f"{archive.path.name}: {e}, which the numpy forward pass does not compute; computing it with Keras")
    from .keras_models import KerasNetwork  # TensorFlow starts here, for such models only

    return KerasNetwork.load(archive, names)


# A batch holds every layer's output up to the deepest one asked for, plus the temporaries of a
# convolution (its input padded and one product per kernel offset): about this many times their sum.
WORKING_COPIES = 3


def bytes_per_image(network: Network, sample: np.ndarray) -> int:
    """The bytes one image's activations take on their way through ``network``, measured on ``sample``."""
    outputs = network.activations(sample[:1], network.names)
    return WORKING_COPIES * (int(sample[:1].astype(np.float32).nbytes) + sum(int(o.nbytes) for o in outputs))


def available_memory() -> int:
    """Bytes of memory free for new work (``MemAvailable``), or 4 GiB where the system does not say."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return 4 << 30


def fit_batch_size(requested: int, per_image: int, available: int, key: str) -> tuple[int, str | None]:
    """``requested``, or the largest batch whose activations fit in half of ``available`` memory, with the
    log line that says so. Never below 1: a single image that does not fit is for the OS to refuse."""
    fits = max(1, available // 2 // max(per_image, 1))
    if requested <= fits:
        return requested, None
    gib = 1 << 30
    return fits, (
        f"{key}={requested} would need {requested * per_image / gib:.1f} GiB of activations, more than half of "
        f"the {available / gib:.1f} GiB available; using batches of {fits}"
    )


def batches(n: int, batch_size: int) -> Iterator[slice]:
    """Slices covering ``range(n)`` in batches of ``batch_size``."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConvlensError(f"batch_size must be a positive integer, got {batch_size!r}")
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


# --- the input: how pixels become the model's inputs ----------------------------------------------


def first_layer(config: dict) -> dict | None:
    """The first layer entry of a ``config.json`` that acts on the pixels: input layers and layers that do
    nothing at inference (dropout, noise) skipped; ``None`` for a model with no such layer."""
    for entry in config.get("config", {}).get("layers", []):
        if entry.get("class_name") not in ("InputLayer", *IDENTITY_KINDS):
            return entry
    return None


def _values(value: object) -> str:
    array = np.asarray(value, dtype=np.float64)
    return f"{array.item():.6g}" if array.size == 1 else np.array2string(array, precision=4, threshold=6)


def describe_preprocessing(entry: dict, weights: list[np.ndarray]) -> str:
    """A Rescaling or Normalization layer in a few words, e.g. ``Rescaling (scale 0.00392157, offset 0)``."""
    kind, cfg = entry["class_name"], entry.get("config", {})
    if kind == "Rescaling":
        return f"Rescaling (scale {_values(cfg.get('scale', 1.0))}, offset {_values(cfg.get('offset', 0.0))})"
    mean, variance = (cfg.get("mean"), cfg.get("variance")) if cfg.get("mean") is not None else weights[:2]
    return f"Normalization (mean {_values(mean)}, variance {_values(variance)})"


@dataclass(frozen=True)
class InputScale:
    """How pixels become the model's inputs: ``pixels / divisor``, and why."""

    divisor: float  # SCALE_KEY's value, or 1 when the model scales raw pixels itself
    preprocessing: str | None = None  # the model's own first layer, described, when it takes raw pixels

    def note(self) -> str | None:
        """The log line saying that the model gets raw pixels, or ``None`` when it gets ``pixels / scale``."""
        if self.preprocessing is None:
            return None
        return f"the model starts with {self.preprocessing}: feeding raw 0–255 pixels, {SCALE_KEY} ignored"

    def silent_warning(self, layer: str, peaks: np.ndarray, seen: str) -> str | None:
        """A warning when more than half of ``layer``'s channels never fire (``peaks``: each channel's
        largest activation, ≤ 0 when it never fires) on what was ``seen``: the sign of pixels scaled
        otherwise than the model was trained on."""
        silent, channels = int((np.asarray(peaks) <= 0).sum()), int(np.size(peaks))
        if 2 * silent <= channels:
            return None
        if self.preprocessing is not None:
            hint = f"it gets raw 0–255 pixels, as its first layer {self.preprocessing} asks"
        elif self.divisor == 1:
            hint = f"the model may expect pixels in 0..1: {SCALE_KEY}=255"
        else:
            hint = f"the model may expect raw pixels: {SCALE_KEY}=1"
        problem = f"{silent} of {channels} channels of {layer} never fire on {seen}"
        return f"warning: {problem}; is the input scale right? {hint}"


def input_scale(first: dict | None, weights: Sequence[np.ndarray], scale: object) -> InputScale:
    """The divisor for the pixels: 1 (raw 0–255 pixels) when the model's first layer (``first_layer``, its
    ``weights``) is Rescaling or Normalization, which scales the input itself (dividing first would scale
    it twice); else ``scale``, the configured divisor."""
    scale = check_scale(scale)
    if first is None or first.get("class_name") not in RAW_PIXEL_KINDS:
        return InputScale(scale)
    return InputScale(1.0, describe_preprocessing(first, list(weights)))


def read_input_scale(archive: Archive, scale: object) -> InputScale:
    """``input_scale`` for a ``.keras`` archive."""
    first = first_layer(archive.config)
    needs_weights = first is not None and first.get("class_name") == "Normalization"
    weights = archive.weights([first["config"]["name"]])[first["config"]["name"]] if needs_weights else []
    return input_scale(first, weights, scale)


def first_conv(layers: Sequence[LayerInfo]) -> str | None:
    """The model's first conv layer (``CONV_KINDS``): the one whose channels show a wrong input scale."""
    return next((layer.name for layer in layers if layer.kind in CONV_KINDS), None)
