"""The untrained baseline's weights without TensorFlow: Keras's initialisation, replayed in numpy bit for bit.

``keras_models.load_with_untrained_model`` seeds Python's ``random`` (``keras.utils.set_random_seed``), loads the
trained model and clones it. Building a layer, Keras gives every unseeded random initializer, and every dropout layer
with a rate, a seed from ``random.randint(1, 10**9)``: once while loading, once more while cloning. The clone's
initializers then fill their variables with TensorFlow's stateless uniform: Philox-4x32-10 keyed by that seed, each
32-bit draw's high mantissa bits read as a float in [1, 2), minus 1, scaled to [minval, maxval) in float32.

Both are replayed for a model the numpy forward pass computes (a Sequential, or a Functional chain) of the layers
in ``LAYER_INITIALIZERS`` with ``Zeros``, ``Ones``, ``Constant``, ``RandomUniform`` and the uniform
``VarianceScaling`` family (``GlorotUniform``, the Keras default, ``HeUniform``, ``LecunUniform``). Any other model
needs Keras anyway, and :func:`write_untrained` asks Keras to build it (tests check both paths give the same
weights).

The model file is the user's, hostile until checked: the replay takes a config only where Keras would load it and
build exactly what is replayed. Every key of the model, of each layer and of each initializer must be one Keras
writes, with a value its constructors accept (``_LAYER_KEYS``, ``_INITIALIZER_KEYS``: positive integer sizes,
finite numbers, float32 policies, no regularizer, LoRA or renorm), and the chain's shapes, each layer's
``build_config`` and stored variables must be the ones Keras computes from the input layer on (``_chain_problem``).
Anything else goes to Keras, the reason in the log; Keras builds it, or refuses it as it did before the replay
(``tests/unit/model/test_initial_hostile.py`` compares ~200 hostile configs with Keras's own load and clone).
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from convlens.errors import ConvlensError
from convlens.model.archive import Archive, write_archive
from convlens.model.forward import load_network
from convlens.model.ops import ACTIVATIONS, Unsupported, pair

# Per layer class: its initializers in the order its constructor builds them (each unseeded random one takes a seed
# then), and which initializer fills each stored variable (``vars/0, 1, …``; a flag in the config leaves one out).
LAYER_INITIALIZERS: dict[str, tuple[str, ...]] = {
    "Conv2D": ("kernel_initializer", "bias_initializer"),
    "Dense": ("kernel_initializer", "bias_initializer"),
    "BatchNormalization": (
        "beta_initializer",
        "gamma_initializer",
        "moving_mean_initializer",
        "moving_variance_initializer",
    ),
}
# Only layers the numpy forward pass computes: any other model goes to Keras before the replay looks at it.
DROPOUTS = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianDropout")
NOISES = ("GaussianNoise",)  # a seed generator when stddev > 0
WEIGHTLESS = (
    "InputLayer",
    "Flatten",
    "Reshape",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalMaxPooling2D",
    "GlobalAveragePooling2D",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "Softmax",
    "Rescaling",
)
KEPT = ("Normalization",)
# An adapted Normalization's mean and variance are the data's: the untrained model keeps them, in the dtypes of
# Keras's variables (mean, variance, count), which cast what Keras loads.
_KEPT_DTYPES = {"Normalization": ("<f4", "<f4", "<i8")}

_UNIFORM_SCALING = {  # VarianceScaling's subclasses that draw uniformly: (scale, mode)
    "GlorotUniform": (1.0, "fan_avg"),
    "HeUniform": (2.0, "fan_in"),
    "LecunUniform": (1.0, "fan_in"),
}
_DEFAULTS = {  # an initializer a layer's config leaves out: the constructor's default
    "kernel_initializer": "glorot_uniform",
    "bias_initializer": "zeros",
    "beta_initializer": "zeros",
    "gamma_initializer": "ones",
    "moving_mean_initializer": "zeros",
    "moving_variance_initializer": "ones",
}
_CONSTANT = ("Zeros", "Ones", "Constant")
_RANDOM = ("RandomUniform", "RandomNormal", "TruncatedNormal", "VarianceScaling", "Orthogonal")
_RANDOM += tuple(f"{kind}{d}" for kind in ("Glorot", "He", "Lecun") for d in ("Uniform", "Normal"))
_STRING_NAMES = {  # ``initializers.get("glorot_uniform")``: Keras's own aliases
    "zeros": "Zeros",
    "ones": "Ones",
    "glorot_uniform": "GlorotUniform",
    "he_uniform": "HeUniform",
    "lecun_uniform": "LecunUniform",
    "random_uniform": "RandomUniform",
    "uniform": "RandomUniform",
}

_M32 = np.uint64(0xFFFFFFFF)
_PHILOX_M = (np.uint64(0xD2511F53), np.uint64(0xCD9E8D57))
_PHILOX_W = (0x9E3779B9, 0xBB67AE85)
_SEED_KEY = (0x3EC8F720, 0x02461E29)  # TensorFlow's fixed key for scrambling a stateless op's seed


def philox(counter: Sequence[np.ndarray], key: tuple[int, int]) -> list[np.ndarray]:
    """Philox-4x32-10 of each counter (four uint64 arrays holding 32-bit words) under ``key``, as TensorFlow's
    ``PhiloxRandom`` computes it: ten rounds, the key raised by the Weyl constants between them."""
    c = [np.asarray(word, dtype=np.uint64) for word in counter]
    k0, k1 = key
    shift = np.uint64(32)
    for _ in range(10):
        p0, p1 = _PHILOX_M[0] * c[0], _PHILOX_M[1] * c[2]
        c = [(p1 >> shift) ^ c[1] ^ np.uint64(k0), p1 & _M32, (p0 >> shift) ^ c[3] ^ np.uint64(k1), p0 & _M32]
        k0, k1 = (k0 + _PHILOX_W[0]) & 0xFFFFFFFF, (k1 + _PHILOX_W[1]) & 0xFFFFFFFF
    return c


PHILOX_CHUNK = 1 << 16  # Philox calls computed at once: their uint64 temporaries stay a few MiB, whatever the kernel


def stateless_bits(n: int, seed: int) -> np.ndarray:
    """The first ``n`` 32-bit draws of ``tf.random.stateless_uniform`` with seed ``[seed, 0]`` (int32 seed words),
    :data:`PHILOX_CHUNK` Philox calls at a time: ``n`` draws take ``4 n`` bytes, and a few MiB more."""
    seed0 = seed & 0xFFFFFFFFFFFFFFFF  # an int32 widened to 64 bits as TensorFlow does (sign-extended)
    words = [seed0 & 0xFFFFFFFF, seed0 >> 32, 0, 0]
    mix = [int(w[0]) for w in philox([np.array([w], dtype=np.uint64) for w in words], _SEED_KEY)]
    key, start = (mix[0], mix[1]), (0, 0, mix[2], mix[3])
    calls = (n + 3) // 4  # each Philox call gives four draws; the counter counts calls
    out = np.empty(calls * 4, dtype=np.uint32)
    for first in range(0, calls, PHILOX_CHUNK):
        carry = np.arange(first, min(first + PHILOX_CHUNK, calls), dtype=np.uint64)
        counter = []
        for word in start:
            total = np.uint64(word) + carry
            counter.append(total & _M32)
            carry = total >> np.uint64(32)
        out[first * 4 : (first + len(counter[0])) * 4] = np.stack(philox(counter, key), axis=1).reshape(-1)
    return out[:n]


def stateless_uniform(shape: Sequence[int], minval: float, maxval: float, seed: int) -> np.ndarray:
    """``keras.random.uniform(shape, minval, maxval, seed=seed)`` on TensorFlow, float32, bit for bit."""
    seed %= 2**31 - 2  # keras.src.backend.tensorflow.random._cast_seed: int64 seeds folded into int32
    bits = stateless_bits(math.prod(shape), seed)
    bits &= np.uint32(0x7FFFFF)  # in place, step by step as TensorFlow computes it: no copy of the kernel
    bits |= np.uint32(0x3F800000)
    unit = bits.view(np.float32)
    low, high = np.float32(minval), np.float32(maxval)
    with np.errstate(over="ignore", invalid="ignore"):  # bounds near float32's limits: inf and nan, as TensorFlow's
        unit -= np.float32(1.0)
        unit *= high - low
        unit += low
    return unit.reshape(tuple(shape))


def compute_fans(shape: Sequence[int]) -> tuple[int, int]:
    """Keras's ``compute_fans``: a kernel's last two axes are inputs and outputs, the others its receptive field."""
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    field = math.prod(shape[:-2])
    return shape[-2] * field, shape[-1] * field


# --- What the replay takes as Keras would: each key of a layer's config, and its value, one Keras accepts ----------
# A config outside these tables is not necessarily wrong: Keras builds it (and refuses it where it is), so the result
# is always the old path's. Only values Keras's own constructors and builds accept are listed.
Check = Callable[[object], bool]
_F32_MAX = float(np.finfo(np.float32).max)


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True)


def _is(*allowed: object) -> Check:
    """Exactly one of ``allowed``, type included (``1`` is not ``1.0`` nor ``true``)."""
    shown = {_json(a) for a in allowed}
    return lambda value: _json(value) in shown


def _finite(value: object) -> bool:
    """A JSON number that fits float32 (an integer too long for a float included, without converting it)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return abs(value) <= _F32_MAX if isinstance(value, int) else math.isfinite(value) and abs(value) <= _F32_MAX


def _positive(value: object) -> bool:
    return type(value) is int and value > 0


def _size(value: object) -> bool:
    return _positive(value) or (type(value) is list and len(value) == 2 and all(_positive(v) for v in value))


def _at_least_0(value: object) -> bool:
    return _finite(value) and value >= 0  # type: ignore[operator]


def _rate(value: object) -> bool:
    return _finite(value) and 0 <= value <= 1  # type: ignore[operator]


def _bool(value: object) -> bool:
    return type(value) is bool


def _seed(value: object) -> bool:
    return value is None or (type(value) is int and abs(value) < 2**63)  # TensorFlow's int64 seed


def _activation(value: object) -> bool:
    return value is None or (type(value) is str and value in ACTIVATIONS)


def _any(value: object) -> bool:  # an initializer: :func:`_initializer_problem` checks it
    return True


def _float32(value: object) -> bool:
    """A float32 dtype policy: the name, or the policy Keras 3 serializes."""
    if value is None or _is("float32")(value):
        return True
    keys = {"module", "class_name", "config", "registered_name", "shared_object_id"}
    return (
        isinstance(value, dict)
        and set(value) <= keys
        and value.get("module", "keras") in ("keras", "keras.dtype_policies")
        and value.get("class_name") in ("DTypePolicy", "FloatDTypePolicy")
        and _is({"name": "float32"})(value.get("config"))
        and value.get("registered_name") is None
        and (value.get("shared_object_id") is None or type(value.get("shared_object_id")) is int)
    )


def _batch_shape(value: object) -> bool:
    return type(value) is list and len(value) >= 2 and value[0] is None and all(_positive(v) for v in value[1:])


def _target_shape(value: object) -> bool:
    ok = type(value) is list and len(value) >= 1 and all(type(v) is int and (v > 0 or v == -1) for v in value)
    return ok and value.count(-1) <= 1  # type: ignore[union-attr]


_PADDING, _LAST, _NONE = _is("valid", "same"), _is("channels_last"), _is(None)
_UNUSED = ("kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint")
_UNUSED += ("lora_rank", "lora_alpha")
_POOLING = {"pool_size": _size, "strides": lambda v: v is None or _size(v), "padding": _PADDING, "data_format": _LAST}
_LAYER_KEYS: dict[str, dict[str, Check]] = {
    "Conv2D": {
        "filters": _positive,
        "kernel_size": _size,
        "strides": _size,
        "padding": _PADDING,
        "data_format": _LAST,
        "dilation_rate": _is(1, [1, 1]),
        "groups": _is(1),
        "activation": _activation,
        "use_bias": _bool,
        "kernel_initializer": _any,
        "bias_initializer": _any,
        **dict.fromkeys(_UNUSED, _NONE),
    },
    "Dense": {
        "units": _positive,
        "activation": _activation,
        "use_bias": _bool,
        "kernel_initializer": _any,
        "bias_initializer": _any,
        "quantization_config": _NONE,
        **dict.fromkeys(_UNUSED, _NONE),
    },
    "BatchNormalization": {
        "axis": _is(-1, [-1]),
        "momentum": _finite,
        "epsilon": _finite,
        "center": _bool,
        "scale": _bool,
        **dict.fromkeys(LAYER_INITIALIZERS["BatchNormalization"], _any),
        **dict.fromkeys(("beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"), _NONE),
        "synchronized": _bool,
        "renorm": _is(False),
        "renorm_clipping": _NONE,
        "renorm_momentum": _finite,
    },
    "Dropout": {"rate": _rate, "seed": _seed, "noise_shape": _NONE},
    "SpatialDropout1D": {"rate": _rate, "seed": _seed},
    "SpatialDropout2D": {"rate": _rate, "seed": _seed, "data_format": _LAST},
    "GaussianDropout": {"rate": _rate, "seed": _seed},
    "GaussianNoise": {"stddev": _at_least_0, "seed": _seed},
    "InputLayer": {
        "batch_shape": _batch_shape,
        "dtype": _is("float32", None),
        "sparse": _is(False, None),
        "ragged": _is(False, None),
        "optional": _is(False),
    },
    "Flatten": {"data_format": _LAST},
    "Reshape": {"target_shape": _target_shape},
    "MaxPooling2D": _POOLING,
    "AveragePooling2D": _POOLING,
    "GlobalMaxPooling2D": {"data_format": _LAST, "keepdims": _bool},
    "GlobalAveragePooling2D": {"data_format": _LAST, "keepdims": _bool},
    "Activation": {"activation": _activation},
    "ReLU": {
        "max_value": lambda v: v is None or _at_least_0(v),
        "negative_slope": _at_least_0,
        "threshold": _at_least_0,
    },
    "LeakyReLU": {"negative_slope": _at_least_0},
    "Softmax": {"axis": _is(-1)},
    "Rescaling": {"scale": _finite, "offset": _finite},
    "Normalization": {"axis": _is(-1, [-1]), "invert": _bool, "mean": _NONE, "variance": _NONE},
}
_REQUIRED = {  # keys a layer's constructor (or the numpy forward pass) cannot do without
    "Conv2D": ("filters", "kernel_size", "strides"),
    "Dense": ("units",),
    "MaxPooling2D": ("pool_size",),
    "AveragePooling2D": ("pool_size",),
    "Reshape": ("target_shape",),
    "Activation": ("activation",),
    "Rescaling": ("scale",),
    "InputLayer": ("batch_shape",),
}
_COMMON: dict[str, Check] = {"name": lambda v: type(v) is str, "trainable": _bool, "dtype": _float32}
_ENTRY_KEYS = {"module", "class_name", "config", "registered_name", "build_config", "inbound_nodes", "name"}
_INITIALIZER_KEYS = {
    "Zeros": set(),
    "Ones": set(),
    "Constant": {"value"},
    "RandomUniform": {"minval", "maxval", "seed"},
    "VarianceScaling": {"scale", "mode", "distribution", "seed", "input_axes", "output_axes"},
    **{kind: {"seed", "input_axes", "output_axes"} for kind in ("GlorotUniform", "HeUniform", "LecunUniform")},
}


def _layer_problem(entry: dict) -> str | None:
    """Why the layer ``entry`` is not one the replay takes as Keras would (a key or value outside
    :data:`_LAYER_KEYS`); None when it is."""
    kind, cfg = entry.get("class_name"), entry.get("config")
    if not isinstance(cfg, dict) or kind not in _LAYER_KEYS:
        return f"layer {(cfg or {}).get('name')!r} of class {kind}"
    where = f"layer {cfg.get('name')!r}"
    if not set(entry) <= _ENTRY_KEYS:
        return f"{where} with the entry keys {sorted(set(entry) - _ENTRY_KEYS)}"
    if entry.get("registered_name") not in (None, kind):
        return f"{where} registered as {entry.get('registered_name')!r}"
    if "name" in entry and not _is(cfg.get("name"))(entry["name"]):  # a Functional layer's name, twice
        return f"{where} named {entry['name']!r} in its entry"
    checks = {**_COMMON, **_LAYER_KEYS[kind]}
    for key in _REQUIRED.get(kind, ()):
        if key not in cfg:
            return f"{where} of class {kind} without {key}"
    for key, value in cfg.items():
        check = checks.get(key)
        if check is None:
            return f"{where} of class {kind} with the key {key!r}"
        if not check(value):
            return f"{where} of class {kind} with {key} {value!r}"
    return None


def _initializer(spec: object) -> tuple[str, dict] | None:
    """An initializer's class name and config from a layer's config (a dict or one of Keras's string names)."""
    if isinstance(spec, str):
        return (_STRING_NAMES[spec], {}) if spec in _STRING_NAMES else None
    if isinstance(spec, dict) and isinstance(spec.get("class_name"), str):
        return spec["class_name"], spec.get("config") or {}
    return None


def _draws_seed(kind: str, cfg: dict) -> bool:
    return kind in _RANDOM and cfg.get("seed") is None


def _spec_problem(spec: object) -> str | None:
    """Why an initializer as a layer's config gives it is not one the replay reads as Keras does (None: it is)."""
    if isinstance(spec, str):
        return None if spec in _STRING_NAMES else f"unknown initializer {spec!r}"
    keys = {"module", "class_name", "config", "registered_name"}
    ok = isinstance(spec, dict) and set(spec) <= keys and isinstance(spec.get("config"), dict)
    ok = ok and spec.get("module", "keras.initializers") == "keras.initializers" and spec.get("registered_name") is None
    if not ok or spec["class_name"] not in _INITIALIZER_KEYS:  # type: ignore[index]
        return f"unknown initializer {spec!r}" if not ok else None
    extra = set(spec["config"]) - _INITIALIZER_KEYS[spec["class_name"]]  # type: ignore[index]
    return f"{spec['class_name']} with the keys {sorted(extra)}" if extra else None  # type: ignore[index]


_NORMAL = 2.0**-100  # float32 numbers this far from 0, and every sum, product and difference of them, are normal


def _subnormal(kind: str, cfg: dict) -> bool:
    """Whether the initializer could compute a subnormal float32, which TensorFlow's kernels flush to 0 and numpy
    keeps: a constant, bounds or their difference under :data:`_NORMAL` (a scaling's limit stays above it from a
    scale of 2**-150 whatever the fans: a weights file holds under 2**29 numbers)."""
    if kind == "VarianceScaling":
        return cfg.get("scale", 1.0) < 2.0**-150
    if kind == "Constant":
        numbers = [np.float32(cfg["value"])]
    elif kind == "RandomUniform":
        low, high = np.float32(cfg.get("minval", -0.05)), np.float32(cfg.get("maxval", 0.05))
        with np.errstate(over="ignore", invalid="ignore"):
            numbers = [low, high, high - low]
    else:
        return False
    return any(0 < abs(float(x)) < _NORMAL for x in numbers)


def _replay_problem(kind: str, cfg: dict) -> str | None:
    """Why the initializer ``kind`` with ``cfg`` cannot be replayed in numpy; None when it can."""
    seed = cfg.get("seed")
    if seed is not None and not _seed(seed):
        return f"{kind} with seed {seed!r}"
    numbers = {"Constant": ("value",), "RandomUniform": ("minval", "maxval"), "VarianceScaling": ("scale",)}
    if kind == "Constant" and "value" not in cfg:
        return "Constant without a value"
    for key in numbers.get(kind, ()):
        value = cfg.get(key, 1.0)
        # TensorFlow makes an integer an int64 tensor, then a float32: past 2**53 numpy would round it twice (through
        # a double), past 2**63 TensorFlow refuses it
        exact = not isinstance(value, int) or key == "scale" or abs(value) <= 2**53
        if not _finite(value) or not exact or (key == "scale" and not value > 0):
            return f"{kind} with {key} {value!r}"
    if _subnormal(kind, cfg):
        return f"{kind} with numbers so near 0 that TensorFlow flushes them to 0 (subnormal float32)"
    if (cfg.get("input_axes"), cfg.get("output_axes")) != (None, None):
        return f"{kind} with input_axes {cfg.get('input_axes')!r} and output_axes {cfg.get('output_axes')!r}"
    if kind in _CONSTANT or kind == "RandomUniform" or kind in _UNIFORM_SCALING:
        return None
    if kind == "VarianceScaling":
        ok = cfg.get("distribution") == "uniform" and cfg.get("mode") in ("fan_in", "fan_out", "fan_avg")
        return None if ok else "VarianceScaling other than uniform over a kernel's own fans"
    return kind


def initial_value(kind: str, cfg: dict, shape: Sequence[int], seed: int | None) -> np.ndarray:
    """What the initializer ``kind`` (config ``cfg``) puts in a float32 variable of ``shape``; ``seed`` is the
    one it drew when built (its configured seed, when it has one)."""
    seed = cfg.get("seed") if cfg.get("seed") is not None else seed
    if kind in _CONSTANT:
        value = {"Zeros": 0.0, "Ones": 1.0}.get(kind, cfg.get("value", 0.0))
        return np.full(tuple(shape), np.float32(value), dtype=np.float32)
    if kind == "RandomUniform":
        return stateless_uniform(shape, cfg.get("minval", -0.05), cfg.get("maxval", 0.05), seed)
    scale, mode = _UNIFORM_SCALING.get(kind) or (cfg.get("scale", 1.0), cfg.get("mode", "fan_in"))
    fan_in, fan_out = compute_fans(shape)
    scale /= max(1.0, {"fan_in": fan_in, "fan_out": fan_out}.get(mode, (fan_in + fan_out) / 2.0))
    limit = math.sqrt(3.0 * scale)
    return stateless_uniform(shape, -limit, limit, seed)


def _seed_takers(entry: dict) -> list[str | None] | str:
    """The seeds the layer ``entry`` takes from Python's ``random`` when built, in order (an initializer's key, or
    None for a dropout's generator), or why it cannot be replayed."""
    problem = _layer_problem(entry)
    if problem:
        return problem
    kind, cfg = entry["class_name"], entry["config"]
    if kind in DROPOUTS or kind in NOISES:
        amount = cfg.get("stddev" if kind in NOISES else "rate", 0)
        return [None] if amount > 0 and cfg.get("seed") is None else []
    if kind not in LAYER_INITIALIZERS:
        return []
    takers: list[str | None] = []
    for key in LAYER_INITIALIZERS[kind]:
        spec = cfg.get(key, _DEFAULTS[key])
        found = _initializer(spec)
        problem = _spec_problem(spec) or (_replay_problem(*found) if found else f"unknown initializer {spec!r}")
        if problem:
            return f"{key} {problem} of layer {cfg.get('name')!r}"
        if _draws_seed(*found):  # type: ignore[misc]
            takers.append(key)
    if kind == "BatchNormalization" and takers:
        return f"a random initializer of BatchNormalization layer {cfg.get('name')!r}"
    return takers


_MODEL_KEYS = {"name", "trainable", "dtype", "layers", "build_input_shape", "input_layers", "output_layers"}


def _model_problem(config: dict) -> str | None:
    """Why the model around the layers is not one the replay takes as Keras would: one input layer first, then the
    chain, and nothing in the model's own config that Keras would read otherwise (None: it is)."""
    kind = config.get("class_name")
    if kind not in ("Sequential", "Functional"):
        return f"a {kind} model"
    outer = {"module", "class_name", "config", "registered_name", "build_config", "compile_config"}
    inner = config.get("config")
    entries = inner.get("layers") if isinstance(inner, dict) else None
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        return "a model with no layer list"
    kinds = [entry.get("class_name") for entry in entries]
    if kinds[0] != "InputLayer" or kinds.count("InputLayer") != 1:
        return "a model whose first layer is not its only InputLayer"
    batch = (entries[0].get("config") or {}).get("batch_shape")
    ends = [[entries[0]["config"].get("name"), 0, 0]], [[entries[-1]["config"].get("name"), 0, 0]]
    problems = {
        f"the keys {sorted(set(config) - outer)}": not set(config) <= outer,
        f"registered as {config.get('registered_name')!r}": config.get("registered_name") not in (None, kind),
        f"the model keys {sorted(set(inner) - _MODEL_KEYS)}": not set(inner) <= _MODEL_KEYS,
        f"trainable {inner.get('trainable')!r}": not _bool(inner.get("trainable", True)),
        f"dtype {inner.get('dtype')!r}": not _float32(inner.get("dtype")),
        f"build_config {config.get('build_config')!r}": not _is(None, {"input_shape": batch}, {"input_shape": None})(
            config.get("build_config")
        ),
        f"build_input_shape {inner.get('build_input_shape')!r}": not _is(None, batch)(inner.get("build_input_shape")),
        "inputs or outputs other than the chain's ends": config["class_name"] == "Functional"
        and not (
            _is(ends[0], ends[0][0])(inner.get("input_layers")) and _is(ends[1], ends[1][0])(inner.get("output_layers"))
        ),
    }
    found = [what for what, bad in problems.items() if bad]
    if found:
        return f"a {config['class_name']} model with {found[0]}"
    for before, entry in itertools.pairwise(entries):
        if kind == "Functional" and not _follows(entry.get("inbound_nodes"), before["config"]["name"]):
            return f"layer {entry['config']['name']!r}, which does not simply follow {before['config']['name']!r}"
    return None


def _follows(nodes: object, previous: object) -> bool:
    """A Functional layer's ``inbound_nodes``: one call, on the output of the layer ``previous``, nothing else."""
    tensor = {"class_name": "__keras_tensor__", "config": {"keras_history": [previous, 0, 0]}}
    if type(nodes) is not list or len(nodes) != 1 or not isinstance(nodes[0], dict):
        return False
    node = nodes[0]
    args = node.get("args")
    calls = _is({}, {"training": False}, {"training": True})  # a dropout's training flag: no variable of it
    if set(node) != {"args", "kwargs"} or not calls(node["kwargs"]) or type(args) is not list or len(args) != 1:
        return False
    arg = args[0]
    if not isinstance(arg, dict) or not isinstance(arg.get("config"), dict) or set(arg) != {"class_name", "config"}:
        return False
    kept = {"class_name": arg["class_name"], "config": {"keras_history": arg["config"].get("keras_history")}}
    return _is(tensor)(kept)


def _window(size: int, k: int, s: int, padding: str) -> int:
    return (size + s - 1) // s if padding == "same" else (size - k) // s + 1


def _output_shape(entry: dict, shape: tuple[int, ...], stored: Sequence[tuple[int, ...]]) -> tuple[int, ...] | str:
    """The output shape (batch axis left out) of the checked layer ``entry`` on inputs of ``shape``, Keras's build
    and ``compute_output_shape`` in short, given its stored variables' shapes; or why Keras would not build it so."""
    kind, cfg = entry["class_name"], entry["config"]
    image = len(shape) == 3
    channels = shape[-1]
    out: tuple[int, ...] | None = shape
    variables: list[tuple[int, ...]] = []
    if kind == "Conv2D":
        (kh, kw), (sh, sw) = pair(cfg["kernel_size"]), pair(cfg["strides"])
        padding = cfg.get("padding", "valid")
        out = (
            (_window(shape[0], kh, sh, padding), _window(shape[1], kw, sw, padding), cfg["filters"]) if image else None
        )
        variables = [(kh, kw, channels, cfg["filters"])] + [(cfg["filters"],)] * (cfg.get("use_bias", True))
    elif kind in ("MaxPooling2D", "AveragePooling2D"):
        size = pair(cfg["pool_size"])
        strides, padding = pair(cfg.get("strides") or cfg["pool_size"]), cfg.get("padding", "valid")
        out = (*(_window(n, k, s, padding) for n, k, s in zip(shape, size, strides, strict=False)), channels)
        out = out if image else None
    elif kind == "Flatten":
        out = (math.prod(shape),)
    elif kind == "Reshape":
        target = cfg["target_shape"]
        known = math.prod(v for v in target if v != -1)
        whole = math.prod(shape)
        out = tuple(whole // known if v == -1 else v for v in target)
        out = out if math.prod(out) == whole else None
    elif kind == "Dense":
        out = (*shape[:-1], cfg["units"])
        variables = [(channels, cfg["units"])] + [(cfg["units"],)] * cfg.get("use_bias", True)
    elif kind == "BatchNormalization":
        variables = [(channels,)] * (2 + cfg.get("scale", True) + cfg.get("center", True))
    elif kind in ("GlobalMaxPooling2D", "GlobalAveragePooling2D"):
        out = ((1, 1, channels) if cfg.get("keepdims") else (channels,)) if image else None
    elif kind in ("SpatialDropout1D", "SpatialDropout2D"):
        out = shape if len(shape) == (2 if kind.endswith("1D") else 3) else None
    elif kind == "Normalization":
        variables = [(channels,), (channels,), ()]
    if out is None or not all(d > 0 for d in out):
        return f"layer {cfg['name']!r} ({kind}) on inputs of shape {shape}"
    if [tuple(v) for v in stored] != variables:
        return (
            f"layer {cfg['name']!r} ({kind}), which stores {[tuple(v) for v in stored]} where Keras builds {variables}"
        )
    return out


def _chain_problem(entries: Sequence[dict], trained: Mapping[str, Sequence[np.ndarray]]) -> str | None:
    """Why Keras would not build the checked chain ``entries`` (an InputLayer, then one layer after another) with
    the variables ``trained`` holds as it stands (None: it would): each layer's input shape follows from the one
    before, as Keras computes it, and must be the one its ``build_config`` says, its variables the ones it builds."""
    shape = tuple(entries[0]["config"]["batch_shape"][1:])
    for entry in entries[1:]:
        build = entry.get("build_config")
        built = build.get("input_shape") if isinstance(build, dict) and set(build) == {"input_shape"} else None
        batch = isinstance(built, list) and len(built) >= 1 and (built[0] is None or _positive(built[0]))
        if build is not None and not (batch and _is(list(shape))(built[1:])):  # the batch axis as adapt() saw it
            return f"layer {entry['config']['name']!r}, built for inputs {build!r} where the chain gives {shape}"
        found = _output_shape(entry, shape, [np.shape(v) for v in trained.get(entry["config"]["name"], [])])
        if isinstance(found, str):
            return found
        shape = found
    return None


def _variable_initializers(entry: dict) -> list[str]:
    """Which initializer fills each of the layer's stored variables, in Keras's order."""
    kind, cfg = entry["class_name"], entry.get("config") or {}
    if kind == "BatchNormalization":
        keys = ["gamma_initializer"] * (cfg.get("scale", True) is not False)
        keys += ["beta_initializer"] * (cfg.get("center", True) is not False)
        return [*keys, "moving_mean_initializer", "moving_variance_initializer"]
    kernels = [key for key in LAYER_INITIALIZERS[kind] if key != "bias_initializer"]
    return kernels + ["bias_initializer"] * (cfg.get("use_bias", True) is not False)


def seed_takers(config: dict) -> list[list[str | None]] | str:
    """The seeds each layer of the model whose ``config.json`` is ``config`` takes when Keras builds it
    (:func:`_seed_takers`), after checking the model and each layer's config are ones the replay takes as Keras
    would; or why not. The config alone: no weights needed."""
    problem = _model_problem(config)
    if problem:
        return problem
    takers = []
    for entry in config["config"]["layers"]:
        found = _seed_takers(entry)
        if isinstance(found, str):
            return found
        takers.append(found)
    return takers


def untrained_variables(
    config: dict, trained: Mapping[str, Sequence[np.ndarray]], seed: int
) -> dict[str, list[np.ndarray]] | str:
    """Each layer's variables (by layer name) of ``keras.models.clone_model`` of the model whose ``config.json`` is
    ``config``, after ``keras.utils.set_random_seed(seed)`` and loading it; ``trained`` holds the loaded model's
    variables (their shapes, and an adapted ``Normalization``'s statistics, which the clone keeps). Returns a
    sentence saying why instead, when the model has a layer or initializer not replayed here."""
    takers = seed_takers(config)
    if isinstance(takers, str):
        return takers
    entries = config["config"]["layers"]
    problem = _chain_problem(entries, trained)
    if problem:
        return problem
    draw = random.Random(seed)
    for found in takers:  # loading the trained model: its layers take seeds, then the clone's do
        for _ in found:
            draw.randint(1, int(1e9))
    out: dict[str, list[np.ndarray]] = {}
    for entry, found in zip(entries, takers, strict=True):
        seeds = {key: draw.randint(1, int(1e9)) for key in found}
        kind, cfg = entry["class_name"], entry.get("config") or {}
        name = cfg.get("name")
        if kind in KEPT or kind not in LAYER_INITIALIZERS:
            kept = [np.asarray(v) for v in trained.get(name, [])]
            if [v.dtype.str for v in kept] != list(_KEPT_DTYPES.get(kind, ())):  # Keras casts them as it loads them
                return f"layer {name!r}, which stores {[v.dtype.name for v in kept]} variables,"
            if name in trained:
                out[name] = kept
            continue
        stored = trained.get(name, [])
        keys = _variable_initializers(entry)
        if len(stored) != len(keys):
            return f"layer {name!r}, which stores {len(stored)} variables where its config says {len(keys)},"
        values = []
        for key, variable in zip(keys, stored, strict=True):
            spec = _initializer(cfg.get(key, _DEFAULTS[key]))
            assert spec is not None  # checked by _seed_takers
            values.append(initial_value(*spec, np.shape(variable), seeds.get(key)))
        out[name] = values
    return out


def _one_line(error: BaseException) -> str:
    """An error Keras raised while building a layer, in a line: its class, the layer call, the cause (no colours)."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(error).splitlines()]
    calling = "Exception encountered when calling "
    where = next((line.removeprefix(calling).rstrip(".") for line in lines if line.startswith(calling)), None)
    cause = next((line for line in lines if line and not line.startswith(calling)), "")
    cause = re.sub(r"\s*\[Op:\w+\].*", "", re.sub(r"\{\{function_node [^}]*\}\}\s*", "", cause))  # TF's op names
    return f"{type(error).__name__}{f' in {where}' if where else ''}: {cause}".rstrip(": ")


def write_untrained(trained: Archive, seed: int, dest: Path) -> str:
    """The untrained model (``trained``'s architecture, initialised as Keras would with ``seed``) as a ``.keras``
    archive at ``dest``; says how it was built. Replayed in numpy for a model the numpy forward pass computes
    (``forward.load_network``) and :func:`untrained_variables` replays; by Keras otherwise (TensorFlow starts only
    then, and Keras's own checks refuse a config it cannot load, as they did before the replay)."""
    try:  # a model the numpy forward pass does not compute needs Keras anyway: Keras builds it (and checks it)
        layers = [e["config"]["name"] for e in trained.config["config"]["layers"] if e["class_name"] != "InputLayer"]
        weights = trained.weights(layers)  # read once: the forward pass's check and the replay's shapes
        checked = seed_takers(trained.config)  # before load_network, which reads only the keys it computes with
        if not isinstance(checked, str):
            load_network(trained, weights=weights)
        variables = checked if isinstance(checked, str) else untrained_variables(trained.config, weights, seed)
    except Unsupported as e:
        variables = f"{e}: the numpy forward pass does not compute this model"
    else:
        variables = variables if not isinstance(variables, str) else f"{variables} is not replayed in numpy"
    if isinstance(variables, str):
        from convlens.model.keras_models import load_with_untrained_model, save_reproducible, tf

        try:
            _, model = load_with_untrained_model(trained.path, seed)
        except (ArithmeticError, LookupError, ValueError, TypeError, tf.errors.OpError) as e:
            # what Keras's loader lets through, raised while it builds the layers (a string where a number belongs,
            # pooling strides of 0, an axis past the input's): one line, as a ValueError of its loader gives
            raise ConvlensError(f"{trained.path}: Keras cannot build this model ({_one_line(e)})") from e
        save_reproducible(model, dest)
        return f"by Keras: {variables}"
    write_archive(trained, variables, dest)
    return "Keras's initializers replayed in numpy"
