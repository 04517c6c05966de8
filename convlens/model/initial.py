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
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from convlens.model.archive import Archive, write_archive
from convlens.model.forward import load_network
from convlens.model.ops import Unsupported

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
KEPT = ("Normalization",)  # an adapted Normalization's mean and variance are the data's: the untrained model keeps them

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


def stateless_bits(n: int, seed: int) -> np.ndarray:
    """The first ``n`` 32-bit draws of ``tf.random.stateless_uniform`` with seed ``[seed, 0]`` (int32 seed words)."""
    seed0 = seed & 0xFFFFFFFFFFFFFFFF  # an int32 widened to 64 bits as TensorFlow does (sign-extended)
    words = [seed0 & 0xFFFFFFFF, seed0 >> 32, 0, 0]
    mix = [int(w[0]) for w in philox([np.array([w], dtype=np.uint64) for w in words], _SEED_KEY)]
    key, start = (mix[0], mix[1]), (0, 0, mix[2], mix[3])
    step = np.arange((n + 3) // 4, dtype=np.uint64)  # each Philox call gives four draws; the counter counts calls
    counter, carry = [], step
    for word in start:
        total = np.uint64(word) + carry
        counter.append(total & _M32)
        carry = total >> np.uint64(32)
    return np.stack(philox(counter, key), axis=1).reshape(-1)[:n].astype(np.uint32)


def stateless_uniform(shape: Sequence[int], minval: float, maxval: float, seed: int) -> np.ndarray:
    """``keras.random.uniform(shape, minval, maxval, seed=seed)`` on TensorFlow, float32, bit for bit."""
    seed %= 2**31 - 2  # keras.src.backend.tensorflow.random._cast_seed: int64 seeds folded into int32
    bits = stateless_bits(math.prod(shape), seed)
    unit = ((bits & np.uint32(0x7FFFFF)) | np.uint32(0x3F800000)).view(np.float32) - np.float32(1.0)
    low, high = np.float32(minval), np.float32(maxval)
    return (unit * (high - low) + low).reshape(tuple(shape))


def compute_fans(shape: Sequence[int]) -> tuple[int, int]:
    """Keras's ``compute_fans``: a kernel's last two axes are inputs and outputs, the others its receptive field."""
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    field = math.prod(shape[:-2])
    return shape[-2] * field, shape[-1] * field


def _initializer(spec: object) -> tuple[str, dict] | None:
    """An initializer's class name and config from a layer's config (a dict or one of Keras's string names)."""
    if isinstance(spec, str):
        return (_STRING_NAMES[spec], {}) if spec in _STRING_NAMES else None
    if isinstance(spec, dict) and isinstance(spec.get("class_name"), str):
        return spec["class_name"], spec.get("config") or {}
    return None


def _draws_seed(kind: str, cfg: dict) -> bool:
    return kind in _RANDOM and cfg.get("seed") is None


def _replay_problem(kind: str, cfg: dict) -> str | None:
    """Why the initializer ``kind`` with ``cfg`` cannot be replayed in numpy; None when it can."""
    seed = cfg.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or abs(seed) >= 2**63):
        return f"{kind} with seed {seed!r}"
    numbers = {"Constant": ("value",), "RandomUniform": ("minval", "maxval"), "VarianceScaling": ("scale",)}
    for key in numbers.get(kind, ()):
        value = cfg.get(key, 1.0)
        finite = (
            isinstance(value, int | float) and math.isfinite(value) and abs(value) <= float(np.finfo(np.float32).max)
        )
        if isinstance(value, bool) or not finite:
            return f"{kind} with {key} {value!r}"
    if kind in _CONSTANT or kind == "RandomUniform" or kind in _UNIFORM_SCALING:
        return None
    if kind == "VarianceScaling":
        axes = cfg.get("input_axes") is None and cfg.get("output_axes") is None
        ok = cfg.get("distribution") == "uniform" and cfg.get("mode") in ("fan_in", "fan_out", "fan_avg") and axes
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


def _dtype_problem(cfg: dict) -> str | None:
    dtype = cfg.get("dtype")
    name = dtype.get("config", {}).get("name") if isinstance(dtype, dict) else dtype
    kind = dtype.get("class_name") if isinstance(dtype, dict) else "DTypePolicy"
    ok = name in (None, "float32") and kind in ("DTypePolicy", "FloatDTypePolicy")
    return None if ok else f"dtype {name!r}"


def _seed_takers(entry: dict) -> list[str | None] | str:
    """The seeds the layer ``entry`` takes from Python's ``random`` when built, in order (an initializer's key, or
    None for a dropout's generator), or why it cannot be replayed."""
    kind, cfg = entry.get("class_name"), entry.get("config") or {}
    if kind in WEIGHTLESS or kind in KEPT:
        return []
    if kind in DROPOUTS or kind in NOISES:
        key = "stddev" if kind in NOISES else "rate"
        amount, top = cfg.get(key, 0), math.inf if kind in NOISES else 1
        number = isinstance(amount, int | float) and not isinstance(amount, bool) and 0 <= amount <= top
        if not number or (cfg.get("seed") is not None and not isinstance(cfg["seed"], int)):
            return f"layer {cfg.get('name')!r} of class {kind} with {key} {amount!r}"
        return [None] if amount > 0 and cfg.get("seed") is None else []
    if kind not in LAYER_INITIALIZERS:
        return f"layer {cfg.get('name')!r} of class {kind}"
    problem = _dtype_problem(cfg)
    if problem:
        return f"layer {cfg.get('name')!r} with {problem}"
    takers: list[str | None] = []
    for key in LAYER_INITIALIZERS[kind]:
        found = _initializer(cfg.get(key, _DEFAULTS[key]))
        problem = f"unknown initializer {cfg.get(key)!r}" if found is None else _replay_problem(*found)
        if problem:
            return f"{key} {problem} of layer {cfg.get('name')!r}"
        if _draws_seed(*found):
            takers.append(key)
    if kind == "BatchNormalization" and takers:
        return f"a random initializer of BatchNormalization layer {cfg.get('name')!r}"
    return takers


def _variable_initializers(entry: dict) -> list[str]:
    """Which initializer fills each of the layer's stored variables, in Keras's order."""
    kind, cfg = entry["class_name"], entry.get("config") or {}
    if kind == "BatchNormalization":
        keys = ["gamma_initializer"] * (cfg.get("scale", True) is not False)
        keys += ["beta_initializer"] * (cfg.get("center", True) is not False)
        return [*keys, "moving_mean_initializer", "moving_variance_initializer"]
    kernels = [key for key in LAYER_INITIALIZERS[kind] if key != "bias_initializer"]
    return kernels + ["bias_initializer"] * (cfg.get("use_bias", True) is not False)


def untrained_variables(
    config: dict, trained: Mapping[str, Sequence[np.ndarray]], seed: int
) -> dict[str, list[np.ndarray]] | str:
    """Each layer's variables (by layer name) of ``keras.models.clone_model`` of the model whose ``config.json`` is
    ``config``, after ``keras.utils.set_random_seed(seed)`` and loading it; ``trained`` holds the loaded model's
    variables (their shapes, and an adapted ``Normalization``'s statistics, which the clone keeps). Returns a
    sentence saying why instead, when the model has a layer or initializer not replayed here."""
    if config.get("class_name") not in ("Sequential", "Functional"):
        return f"a {config.get('class_name')} model"
    entries = (config.get("config") or {}).get("layers")
    if not isinstance(entries, list):
        return "a model with no layer list"
    takers = []
    for entry in entries:
        found = _seed_takers(entry) if isinstance(entry, dict) else "a layer entry that is not a mapping"
        if isinstance(found, str):
            return found
        takers.append(found)
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
            if name in trained:
                out[name] = [np.asarray(v) for v in trained[name]]
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


def write_untrained(trained: Archive, seed: int, dest: Path) -> str:
    """The untrained model (``trained``'s architecture, initialised as Keras would with ``seed``) as a ``.keras``
    archive at ``dest``; says how it was built. Replayed in numpy for a model the numpy forward pass computes
    (``forward.load_network``) and :func:`untrained_variables` replays; by Keras otherwise (TensorFlow starts only
    then, and Keras's own checks refuse a config it cannot load, as they did before the replay)."""
    try:  # a model the numpy forward pass does not compute needs Keras anyway: Keras builds it (and checks it)
        layers = [e["config"]["name"] for e in trained.config["config"]["layers"] if e["class_name"] != "InputLayer"]
        weights = trained.weights(layers)  # read once: the forward pass's check and the replay's shapes
        load_network(trained, weights=weights)
        variables = untrained_variables(trained.config, weights, seed)
    except Unsupported as e:
        variables = f"{e}: the numpy forward pass does not compute this model"
    else:
        variables = variables if not isinstance(variables, str) else f"{variables} is not replayed in numpy"
    if isinstance(variables, str):
        from convlens.model.keras_models import load_with_untrained_model, save_reproducible

        _, model = load_with_untrained_model(trained.path, seed)
        save_reproducible(model, dest)
        return f"by Keras: {variables}"
    write_archive(trained, variables, dest)
    return "Keras's initializers replayed in numpy"
