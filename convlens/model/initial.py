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
writes, with a value its constructors accept, and the chain's shapes, each layer's ``build_config`` and stored
variables the ones Keras computes from the input layer on: ``layer_config``'s checks, the forward pass's too (the
replay's layer table, ``_REPLAY_KEYS``, is a little narrower).
Anything else goes to Keras, the reason in the log; Keras builds it, or refuses it as it did before the replay
(``tests/unit/model/test_initial_hostile.py`` compares ~200 hostile configs with Keras's own load and clone).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from convlens.model.archive import Archive, write_archive
from convlens.model.forward import built_by_keras, load_network
from convlens.model.layer_config import (
    BATCH_NORMALIZATION_INITIALIZERS,
    LAYER_KEYS,
    STRING_INITIALIZERS,
    chain_problem,
    finite,
    is_bool,
    is_seed,
    layer_problem,
    model_problem,
    one_of,
    spec_problem,
)
from convlens.model.ops import Unsupported

# Per layer class: its initializers in the order its constructor builds them (each unseeded random one takes a seed
# then), and which initializer fills each stored variable (``vars/0, 1, …``; a flag in the config leaves one out).
LAYER_INITIALIZERS: dict[str, tuple[str, ...]] = {
    "Conv2D": ("kernel_initializer", "bias_initializer"),
    "Dense": ("kernel_initializer", "bias_initializer"),
    "BatchNormalization": BATCH_NORMALIZATION_INITIALIZERS,
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

# The layer configs replayed: the forward pass's (``layer_config.LAYER_KEYS``), a Softmax over the last axis only, and
# a Normalization adapted over the channels only (the clone keeps its variables as they are stored).
_REPLAY_KEYS = {
    **LAYER_KEYS,
    "Softmax": {"axis": one_of(-1)},
    "Normalization": {"axis": one_of(-1, [-1]), "invert": is_bool, "mean": one_of(None), "variance": one_of(None)},
}

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


def _initializer(spec: object) -> tuple[str, dict] | None:
    """An initializer's class name and config from a layer's config (a dict or one of Keras's string names)."""
    if isinstance(spec, str):
        return (STRING_INITIALIZERS[spec], {}) if spec in STRING_INITIALIZERS else None
    if isinstance(spec, dict) and isinstance(spec.get("class_name"), str):
        return spec["class_name"], spec.get("config") or {}
    return None


def _draws_seed(kind: str, cfg: dict) -> bool:
    return kind in _RANDOM and cfg.get("seed") is None


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
    if seed is not None and not is_seed(seed):
        return f"{kind} with seed {seed!r}"
    numbers = {"Constant": ("value",), "RandomUniform": ("minval", "maxval"), "VarianceScaling": ("scale",)}
    if kind == "Constant" and "value" not in cfg:
        return "Constant without a value"
    for key in numbers.get(kind, ()):
        value = cfg.get(key, 1.0)
        # TensorFlow makes an integer an int64 tensor, then a float32: past 2**53 numpy would round it twice (through
        # a double), past 2**63 TensorFlow refuses it
        exact = not isinstance(value, int) or key == "scale" or abs(value) <= 2**53
        if not finite(value) or not exact or (key == "scale" and not value > 0):
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
    problem = layer_problem(entry, _REPLAY_KEYS)
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
        problem = spec_problem(spec) or (_replay_problem(*found) if found else f"unknown initializer {spec!r}")
        if problem:
            return f"{key} {problem} of layer {cfg.get('name')!r}"
        if _draws_seed(*found):  # type: ignore[misc]
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


def seed_takers(config: dict) -> list[list[str | None]] | str:
    """The seeds each layer of the model whose ``config.json`` is ``config`` takes when Keras builds it
    (:func:`_seed_takers`), after checking the model and each layer's config are ones the replay takes as Keras
    would; or why not. The config alone: no weights needed."""
    problem = model_problem(config)
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
    problem = chain_problem(entries, trained)
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
        from convlens.model.keras_models import load_with_untrained_model, save_reproducible

        _, model = built_by_keras(trained, lambda: load_with_untrained_model(trained.path, seed))
        save_reproducible(model, dest)
        return f"by Keras: {variables}"
    write_archive(trained, variables, dest)
    return "Keras's initializers replayed in numpy"
