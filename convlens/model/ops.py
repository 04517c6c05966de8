"""Keras layers as numpy functions, for inference: convolution, pooling, Dense, normalization, activations.

Each supported layer kind is checked against Keras itself (``tests/unit/model/test_forward.py``). What is not
supported raises ``Unsupported``; the forward pass then hands the model to Keras.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from convlens.errors import ConvlensError
from convlens.model.graph import activation_name

Op = Callable[[np.ndarray], np.ndarray]


IM2COL_BELOW_CHANNELS = 8  # conv2d's strategy switch, measured on the book's two layers (C = 1 and 32)


CHUNK_BYTES = 1 << 18  # conv2d's and max pooling's output per chunk of images: with its temporaries, in a core's L2


KERAS_EPSILON = 1e-7  # keras.backend.epsilon(), the floor of Normalization's standard deviation


IDENTITY_KINDS = frozenset(
    {"Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "ActivityRegularization"}
)


class Unsupported(ConvlensError):
    """What the numpy forward pass does not compute (a branch, a nested model, a layer kind): Keras does."""


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


# The same functions, overwriting their argument: for a layer's own fresh output (a conv's or a Dense's), where no
# other layer's activation can be that array. 4× faster for the book's first conv layer's ReLU.
IN_PLACE: dict[str, Op] = {"linear": lambda x: x, "relu": lambda x: np.maximum(x, 0, out=x)}


def activation(spec: str | dict | None, layer: str, in_place: bool = False) -> Op:
    """The function for a Keras activation as the config names it (``"relu"`` or a serialized dict); ``in_place``:
    it may overwrite its argument (:data:`IN_PLACE`, same values)."""
    name = activation_name(spec)
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise Unsupported(f"layer {layer!r} uses activation {name!r}")
    return IN_PLACE.get(name, ACTIVATIONS[name]) if in_place else ACTIVATIONS[name]


def _pad_same(x: np.ndarray, window: tuple[int, int], strides: tuple[int, int], value: float) -> np.ndarray:
    """Pad H and W as Keras's ``padding="same"`` does (the extra row/column goes after)."""
    pads = []
    for size, k, s in zip(x.shape[1:3], window, strides, strict=True):
        total = max((-(-size // s) - 1) * s + k - size, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, [(0, 0), *pads, (0, 0)], constant_values=value)


def conv2d(
    x: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray | None,
    strides: tuple[int, int],
    padding: str,
    activation: Op | None = None,
    dilation: tuple[int, int] = (1, 1),
    groups: int = 1,
) -> np.ndarray:
    """2-D convolution (cross-correlation, channels last): (N, H, W, C) × (kh, kw, C / groups, F) → (N, H', W', F),
    plus ``bias``, then ``activation`` if given: an :data:`IN_PLACE` function, applied to the output as it is made.

    As Keras's ``Conv2D``: the kernel's taps ``dilation`` (rows, columns) apart, a window of ``(k - 1) · d + 1``
    input pixels; ``groups``: the channels split in that many groups, each convolved with its own ``F / groups``
    filters (:func:`_grouped`).

    Few input channels: the patches are gathered once (im2col) and the layer is one matrix product.
    Many: one product per kernel offset, summed, which skips copying every patch (2-4× faster at C=32).
    Either way a few images at a time (:data:`CHUNK_BYTES` of output), so that their patches or products,
    the sum, the bias and the activation stay in the CPU's cache: 1.3× the same work over the whole batch, every
    value the same (each output's sum is taken in the same order, whatever the chunk).
    """
    kh, kw, channels, filters = kernel.shape
    span = effective_kernel((kh, kw), dilation)
    if padding == "same":
        x = _pad_same(x, span, strides, 0.0)
    out_h = (x.shape[1] - span[0]) // strides[0] + 1
    out_w = (x.shape[2] - span[1]) // strides[1] + 1
    if groups != 1:
        return _grouped(x, kernel, bias, (strides, dilation, (out_h, out_w)), activation, groups)
    im2col = channels < IM2COL_BELOW_CHANNELS
    dtype = np.result_type(np.float32, kernel.dtype) if im2col else np.dtype(np.float32)
    out = np.empty((len(x), out_h, out_w, filters), dtype)
    fused = bias is None or np.result_type(out, bias) == out.dtype  # else the bias upcasts: added after
    step = max(1, CHUNK_BYTES // max(out_h * out_w * filters * dtype.itemsize, 1))
    if im2col:
        patches = np.empty((min(step, len(x)), out_h, out_w, kh, kw, channels), np.float32)
    else:
        products = np.empty((min(step, len(x)), out_h, out_w, filters), np.result_type(x, kernel))
    for start in range(0, len(x), step):
        part, done = x[start : start + step], out[start : start + step]
        if im2col:
            gathered = patches[: len(part)]
            for i in range(kh):
                for j in range(kw):
                    gathered[:, :, :, i, j] = _tap(part, i, j, (strides, dilation, (out_h, out_w)))
            np.matmul(
                gathered.reshape(-1, kh * kw * channels), kernel.reshape(-1, filters), out=done.reshape(-1, filters)
            )
        else:
            done[...] = 0  # + each product, as a sum started at 0 (-0.0 products become 0.0)
            product = products[: len(part)]
            for i in range(kh):
                for j in range(kw):
                    done += np.matmul(_tap(part, i, j, (strides, dilation, (out_h, out_w))), kernel[i, j], out=product)
        if fused:
            _finish(done, bias, activation)
    return out if fused else _finish(out + bias, None, activation)


Geometry = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]  # a conv's strides, dilation and output (H', W')


def _tap(part: np.ndarray, i: int, j: int, geometry: Geometry) -> np.ndarray:
    """The input pixels (N, H', W', C) kernel tap ``(i, j)`` multiplies, for each output position: of the padded
    images ``part``, every stride-th from the tap's offset, ``dilation`` taps apart."""
    strides, dilation, (out_h, out_w) = geometry
    i, j = i * dilation[0], j * dilation[1]
    return part[:, i : i + strides[0] * out_h : strides[0], j : j + strides[1] * out_w : strides[1]]


def _finish(out: np.ndarray, bias: np.ndarray | None, activation: Op | None) -> np.ndarray:
    """``out`` plus ``bias``, then ``activation``, in place (an :data:`IN_PLACE` activation)."""
    if bias is not None:
        out += bias
    return out if activation is None else activation(out)


def effective_kernel(kernel: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int]:
    """The input pixels (rows, columns) a dilated kernel's window spans: ``(k - 1) · d + 1``."""
    return (kernel[0] - 1) * dilation[0] + 1, (kernel[1] - 1) * dilation[1] + 1


def _grouped(
    x: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray | None,
    geometry: Geometry,
    activation: Op | None,
    groups: int,
) -> np.ndarray:
    """A grouped :func:`conv2d` of the padded images ``x``, as Keras computes it: group ``g`` of ``groups``
    convolves input channels ``[g·C', (g+1)·C')`` (``C'``: the kernel's input channels) with filters
    ``[g·F', (g+1)·F')`` (``F' = F / groups``), the groups' outputs side by side along the channels.

    Every group at once: for each kernel tap, one batched product (G, M, C') × (G, C', F') over a few images' M
    output positions (:data:`CHUNK_BYTES` of output), summed. Measured on 512 images of 14×14×32, 64 filters, 2 to
    32 groups: as fast as one :func:`conv2d` per group at 2 groups, up to 2.4× faster at 8 or 16 (one BLAS thread;
    10× where BLAS's threads contend, as in conv2d's im2col of 4 channels). Gathering each group's patches once
    (im2col) was no faster at 1 channel per group, 2-2.5× slower at 2 or 4."""
    kh, kw, per_in, filters = kernel.shape
    if x.shape[-1] != per_in * groups or filters % groups:
        raise ValueError(f"{groups} groups of {x.shape[-1]} channels and {filters} filters, kernel {kernel.shape}")
    per_out, (out_h, out_w) = filters // groups, geometry[2]
    taps = kernel.reshape(kh, kw, per_in, groups, per_out).transpose(0, 1, 3, 2, 4)  # tap (i, j): (G, C', F')
    out = np.empty((len(x), out_h, out_w, filters), np.float32)
    fused = bias is None or np.result_type(out, bias) == out.dtype  # else the bias upcasts: added after
    step = max(1, CHUNK_BYTES // max(out_h * out_w * filters * out.itemsize, 1))
    sums = np.empty((groups, min(step, len(x)) * out_h * out_w, per_out), np.float32)
    for start in range(0, len(x), step):
        part, done = x[start : start + step], out[start : start + step]
        positions = len(part) * out_h * out_w
        total = sums[:, :positions]
        total[...] = 0
        for i in range(kh):
            for j in range(kw):
                pixels = _tap(part, i, j, geometry).reshape(positions, groups, per_in).transpose(1, 0, 2)
                total += np.matmul(pixels, taps[i, j])
        done[...] = total.transpose(1, 0, 2).reshape(done.shape)
        if fused:
            _finish(done, bias, activation)
    return out if fused else _finish(out + bias, None, activation)


def dense(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """``x @ kernel + bias``, the bias added to the product in place where that keeps its type."""
    out = x @ kernel
    if bias is None:
        return out
    if np.result_type(out, bias) == out.dtype:
        out += bias
        return out
    return out + bias


def pool2d(x: np.ndarray, size: tuple[int, int], strides: tuple[int, int], padding: str, mode: str) -> np.ndarray:
    """Max or average pooling over H and W (average ignores the padding, as Keras does)."""
    if padding == "same":
        counts = _pad_same(np.ones((1, *x.shape[1:3], 1), np.float32), size, strides, 0.0)
        x = _pad_same(x, size, strides, -np.inf if mode == "max" else 0.0)
    if mode == "max":  # the maximum of one strided view per window offset: 1.5× a reduce over the windows,
        # a few images at a time (CHUNK_BYTES of output, which stays in cache while each view is folded in): 2×
        out_h, out_w = ((n - k) // s + 1 for n, k, s in zip(x.shape[1:3], size, strides, strict=True))
        out = np.empty((len(x), out_h, out_w, *x.shape[3:]), x.dtype)
        step = max(1, CHUNK_BYTES // max(out[:1].nbytes, 1))
        for start in range(0, len(x), step):
            part, done = x[start : start + step], out[start : start + step]
            for i in range(size[0]):
                for j in range(size[1]):
                    view = part[:, i : i + strides[0] * out_h : strides[0], j : j + strides[1] * out_w : strides[1]]
                    if i == j == 0:
                        done[...] = view
                    else:
                        np.maximum(done, view, out=done)
        return out
    windows = sliding_window_view(x, size, axis=(1, 2))[:, :: strides[0], :: strides[1]]
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


def pair(value: int | Sequence[int]) -> tuple[int, int]:
    """A Keras size or stride setting (one int or two) as (rows, columns)."""
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def layer_op(kind: str, cfg: dict, weights: list[np.ndarray]) -> Op:
    """The numpy function computing one Keras layer at inference time, from a config ``layer_config`` checked (the
    forward pass checks the model before it calls this: ``forward.load_network``); a key left out is Keras's
    default."""
    name = cfg["name"]
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise Unsupported(f"layer {name!r} is channels_first")
    padding = cfg.get("padding", "valid")
    padding = padding.lower() if isinstance(padding, str) else padding  # Keras reads "SAME" as "same"
    if kind in ("Conv2D", "MaxPooling2D", "AveragePooling2D") and padding not in ("valid", "same"):
        raise Unsupported(f"layer {name!r} has padding {cfg.get('padding')!r}")
    if kind == "Conv2D":
        kernel, bias = weights[0], (weights[1] if cfg.get("use_bias", True) else None)
        act = activation(cfg.get("activation"), name, in_place=True)  # on conv2d's own output
        strides = pair(cfg.get("strides", 1))  # Keras's defaults where a config leaves a key out
        dilation, groups = pair(cfg.get("dilation_rate", 1)), cfg.get("groups", 1)
        if any(act is f for f in IN_PLACE.values()):  # applied chunk by chunk, as conv2d makes its output
            return lambda x: conv2d(x, kernel, bias, strides, padding, act, dilation, groups)
        return lambda x: act(conv2d(x, kernel, bias, strides, padding, None, dilation, groups))
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        size = pair(cfg.get("pool_size", 2))
        strides = pair(cfg.get("strides") or size)
        mode = "max" if kind == "MaxPooling2D" else "avg"
        return lambda x: pool2d(x, size, strides, padding, mode)
    if kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        reduce, keep = (np.mean if kind.startswith("GlobalAverage") else np.max), bool(cfg.get("keepdims"))
        return lambda x: reduce(x, axis=(1, 2), keepdims=keep)
    if kind == "Flatten":
        return lambda x: x.reshape(len(x), -1)
    if kind == "Reshape":
        if "target_shape" not in cfg:  # Keras's constructor needs it
            raise Unsupported(f"layer {name!r} is a Reshape without target_shape")
        shape = tuple(cfg["target_shape"])
        return lambda x: x.reshape(len(x), *shape)
    if kind == "Dense":
        kernel, bias = weights[0], (weights[1] if cfg.get("use_bias", True) else None)
        act = activation(cfg.get("activation"), name, in_place=True)  # on the product, this layer's own array
        return lambda x: act(dense(x, kernel, bias))
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
        if not (np.asarray(variance) >= 0).all():  # a NaN square root, which numpy and TensorFlow carry on otherwise
            raise Unsupported(f"layer {name!r} is a Normalization with a variance below 0")
        invert = bool(cfg.get("invert", False))
        return lambda x: normalization(x, np.asarray(mean), np.asarray(variance), axis, invert)
    if kind == "BatchNormalization":
        if cfg.get("axis", -1) not in (-1, [-1], 3, [3]):
            raise Unsupported(f"layer {name!r} is a BatchNormalization over an axis other than the last")
        parts = iter(weights)
        gamma = next(parts) if cfg.get("scale", True) else np.float32(1)
        beta = next(parts) if cfg.get("center", True) else np.float32(0)
        mean, var = next(parts), next(parts)
        with np.errstate(all="ignore"):
            factor = (gamma / np.sqrt(var + np.float32(cfg.get("epsilon", 1e-3)))).astype(np.float32)
            shift = (beta - mean * factor).astype(np.float32)
        if not (np.isfinite(factor).all() and np.isfinite(shift).all()):  # a variance + epsilon of 0 or below
            raise Unsupported(f"layer {name!r} is a BatchNormalization whose statistics give NaN or infinity")
        return lambda x: x * factor + shift
    if kind in IDENTITY_KINDS:
        return lambda x: x
    raise Unsupported(f"layer {name!r} is a {kind}")
