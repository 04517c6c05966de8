"""A model's ``config.json`` checked as Keras reads it, for the two paths that compute from it without TensorFlow: the
numpy forward pass (``forward.load_network``) and the replay of Keras's initialisation (``initial``).

The model file is the user's, hostile until checked. Each path takes a config only where Keras would load it and
compute exactly what numpy computes: every key of the model, of each layer (:data:`LAYER_KEYS`) and of each
initializer must be one Keras writes, with a value its constructors accept (positive integer sizes, finite float32
numbers, float32 policies, no regularizer, LoRA or renorm), the layers one chain from the input layer on
(:func:`model_problem`), and the chain's shapes, each layer's ``build_config`` and stored variables the ones Keras
computes from the input layer (:func:`chain_problem`). A config outside these tables is not necessarily wrong: the
caller hands it to Keras, which computes it, or refuses it where Keras refuses it.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from convlens.model.ops import ACTIVATIONS, effective_kernel, pair

BATCH_NORMALIZATION_INITIALIZERS = (
    "beta_initializer",
    "gamma_initializer",
    "moving_mean_initializer",
    "moving_variance_initializer",
)
STRING_INITIALIZERS = {  # ``initializers.get("glorot_uniform")``: Keras's own aliases
    "zeros": "Zeros",
    "ones": "Ones",
    "glorot_uniform": "GlorotUniform",
    "he_uniform": "HeUniform",
    "lecun_uniform": "LecunUniform",
    "random_uniform": "RandomUniform",
    "uniform": "RandomUniform",
}

# --- Each key of a layer's config, and its value, one Keras accepts ------------------------------------------------
Check = Callable[[object], bool]
_F32_MAX = float(np.finfo(np.float32).max)


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True)


def one_of(*allowed: object) -> Check:
    """Exactly one of ``allowed``, type included (``1`` is not ``1.0`` nor ``true``)."""
    shown = {_json(a) for a in allowed}
    return lambda value: _json(value) in shown


def finite(value: object) -> bool:
    """A JSON number that fits float32 (an integer too long for a float included, without converting it)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return abs(value) <= _F32_MAX if isinstance(value, int) else math.isfinite(value) and abs(value) <= _F32_MAX


def positive(value: object) -> bool:
    return type(value) is int and value > 0


def _size(value: object) -> bool:
    return positive(value) or (type(value) is list and len(value) == 2 and all(positive(v) for v in value))


def _at_least_0(value: object) -> bool:
    return finite(value) and value >= 0  # type: ignore[operator]


def _rate(value: object) -> bool:
    return finite(value) and 0 <= value <= 1  # type: ignore[operator]


def is_bool(value: object) -> bool:
    return type(value) is bool


def is_seed(value: object) -> bool:
    return value is None or (type(value) is int and abs(value) < 2**63)  # TensorFlow's int64 seed


def _activation(value: object) -> bool:
    return value is None or (type(value) is str and value in ACTIVATIONS)


def _any(value: object) -> bool:  # an initializer: :func:`_initializer_problem` checks it
    return True


def _float32(value: object) -> bool:
    """A float32 dtype policy: the name, or the policy Keras 3 serializes."""
    if value is None or one_of("float32")(value):
        return True
    keys = {"module", "class_name", "config", "registered_name", "shared_object_id"}
    return (
        isinstance(value, dict)
        and set(value) <= keys
        and value.get("module", "keras") in ("keras", "keras.dtype_policies")
        and value.get("class_name") in ("DTypePolicy", "FloatDTypePolicy")
        and one_of({"name": "float32"})(value.get("config"))
        and value.get("registered_name") is None
        and (value.get("shared_object_id") is None or type(value.get("shared_object_id")) is int)
    )


def _batch_shape(value: object) -> bool:
    """An InputLayer's ``batch_shape``: the batch axis open, the last (channels) fixed, the others fixed or open (a
    model of open input size, which the forward pass computes at the images' size: :func:`chain_problem`)."""
    if not (type(value) is list and len(value) >= 2 and value[0] is None and positive(value[-1])):
        return False
    return all(v is None or positive(v) for v in value[1:-1])  # type: ignore[index]


def _fits(built: Sequence[object], shape: tuple[int, ...]) -> bool:
    """A ``build_config`` input shape (batch axis left out) is the chain's ``shape``, an axis Keras built open
    (``None``: a model of open input size) fitting any size."""
    return len(built) == len(shape) and all(b is None or one_of(s)(b) for b, s in zip(built, shape, strict=True))


def _target_shape(value: object) -> bool:
    ok = type(value) is list and len(value) >= 1 and all(type(v) is int and (v > 0 or v == -1) for v in value)
    return ok and value.count(-1) <= 1  # type: ignore[union-attr]


def _axes(value: object) -> bool:
    """Normalization's ``axis``: None, an int or a list of them (within the input's axes: :func:`output_shape`)."""
    return value is None or type(value) is int or (type(value) is list and all(type(v) is int for v in value))


def _statistics(value: object, least: float = -math.inf) -> bool:
    """Normalization's ``mean`` or ``variance`` given in the config: a number or a flat list of them, none below
    ``least`` (a negative variance's square root is NaN, which numpy and TensorFlow carry on otherwise)."""
    numbers = value if type(value) is list and len(value) >= 1 else [value]
    return value is None or all(finite(v) and v >= least for v in numbers)  # type: ignore[operator]


_PADDING, _LAST, _NONE = one_of("valid", "same"), one_of("channels_last"), one_of(None)
_UNUSED = ("kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint")
_UNUSED += ("lora_rank", "lora_alpha")
_POOLING = {"pool_size": _size, "strides": lambda v: v is None or _size(v), "padding": _PADDING, "data_format": _LAST}
LAYER_KEYS: dict[str, dict[str, Check]] = {
    "Conv2D": {
        "filters": positive,
        "kernel_size": _size,
        "strides": _size,
        "padding": _PADDING,
        "data_format": _LAST,
        "dilation_rate": _size,
        "groups": positive,
        "activation": _activation,
        "use_bias": is_bool,
        "kernel_initializer": _any,
        "bias_initializer": _any,
        **dict.fromkeys(_UNUSED, _NONE),
    },
    "Dense": {
        "units": positive,
        "activation": _activation,
        "use_bias": is_bool,
        "kernel_initializer": _any,
        "bias_initializer": _any,
        "quantization_config": _NONE,
        **dict.fromkeys(_UNUSED, _NONE),
    },
    "BatchNormalization": {
        "axis": one_of(-1, [-1]),
        "momentum": finite,
        "epsilon": finite,
        "center": is_bool,
        "scale": is_bool,
        **dict.fromkeys(BATCH_NORMALIZATION_INITIALIZERS, _any),
        **dict.fromkeys(("beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"), _NONE),
        "synchronized": is_bool,
        "renorm": one_of(False),
        "renorm_clipping": _NONE,
        "renorm_momentum": finite,
    },
    "Dropout": {"rate": _rate, "seed": is_seed, "noise_shape": _NONE},
    "SpatialDropout1D": {"rate": _rate, "seed": is_seed},
    "SpatialDropout2D": {"rate": _rate, "seed": is_seed, "data_format": _LAST},
    "GaussianDropout": {"rate": _rate, "seed": is_seed},
    "GaussianNoise": {"stddev": _rate, "seed": is_seed},  # Keras refuses a stddev above 1
    "InputLayer": {
        "batch_shape": _batch_shape,
        "dtype": one_of("float32", None),
        "sparse": one_of(False, None),
        "ragged": one_of(False, None),
        "optional": one_of(False),
    },
    "Flatten": {"data_format": _LAST},
    "Reshape": {"target_shape": _target_shape},
    "MaxPooling2D": _POOLING,
    "AveragePooling2D": _POOLING,
    "GlobalMaxPooling2D": {"data_format": _LAST, "keepdims": is_bool},
    "GlobalAveragePooling2D": {"data_format": _LAST, "keepdims": is_bool},
    "Activation": {"activation": _activation},
    "ReLU": {
        "max_value": lambda v: v is None or _at_least_0(v),
        "negative_slope": _at_least_0,
        "threshold": _at_least_0,
    },
    "LeakyReLU": {"negative_slope": _at_least_0},
    "Softmax": {"axis": lambda v: type(v) is int},  # within the input's axes: :func:`output_shape`
    "Rescaling": {"scale": finite, "offset": finite},
    "Normalization": {
        "axis": _axes,
        "invert": is_bool,
        "mean": _statistics,
        "variance": lambda v: _statistics(v, 0.0),
    },
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
_COMMON: dict[str, Check] = {"name": lambda v: type(v) is str, "trainable": is_bool, "dtype": _float32}
_ENTRY_KEYS = {"module", "class_name", "config", "registered_name", "build_config", "inbound_nodes", "name"}
INITIALIZER_KEYS = {
    "Zeros": set(),
    "Ones": set(),
    "Constant": {"value"},
    "RandomUniform": {"minval", "maxval", "seed"},
    "VarianceScaling": {"scale", "mode", "distribution", "seed", "input_axes", "output_axes"},
    **{kind: {"seed", "input_axes", "output_axes"} for kind in ("GlorotUniform", "HeUniform", "LecunUniform")},
}


def layer_problem(entry: dict, tables: Mapping[str, Mapping[str, Check]] = LAYER_KEYS) -> str | None:
    """Why the layer ``entry`` is not one Keras reads as numpy computes it (a key or value outside ``tables``,
    :data:`LAYER_KEYS` or the replay's narrower ones); None when it is."""
    kind, cfg = entry.get("class_name"), entry.get("config")
    if not isinstance(cfg, dict) or kind not in tables:
        return f"layer {(cfg or {}).get('name')!r} of class {kind}"
    where = f"layer {cfg.get('name')!r}"
    if not set(entry) <= _ENTRY_KEYS:
        return f"{where} with the entry keys {sorted(set(entry) - _ENTRY_KEYS)}"
    if entry.get("registered_name") not in (None, kind):
        return f"{where} registered as {entry.get('registered_name')!r}"
    if "name" in entry and not one_of(cfg.get("name"))(entry["name"]):  # a Functional layer's name, twice
        return f"{where} named {entry['name']!r} in its entry"
    checks = {**_COMMON, **tables[kind]}
    for key in _REQUIRED.get(kind, ()):
        if key not in cfg:
            return f"{where} of class {kind} without {key}"
    for key, value in cfg.items():
        check = checks.get(key)
        if check is None:
            return f"{where} of class {kind} with the key {key!r}"
        if not check(value):
            return f"{where} of class {kind} with {key} {value!r}"
    return _conv_problem(cfg, where) if kind == "Conv2D" else None


def _conv_problem(cfg: dict, where: str) -> str | None:
    """What Keras's ``Conv2D`` constructor refuses among the keys that are each fine alone: strides above 1 with a
    dilation above 1, filters that the groups do not divide (a checked config: both only where the table allows them
    at all). The input channels the groups must divide too are the chain's: :func:`built`."""
    strides, dilation = pair(cfg.get("strides", 1)), pair(cfg.get("dilation_rate", 1))
    if max(strides) > 1 and max(dilation) > 1:
        return f"{where} of class Conv2D with strides {cfg.get('strides')!r} and dilation_rate {cfg['dilation_rate']!r}"
    if cfg["filters"] % cfg.get("groups", 1):
        return f"{where} of class Conv2D with filters {cfg['filters']!r} in {cfg['groups']!r} groups"
    return None


def spec_problem(spec: object) -> str | None:
    """Why an initializer as a layer's config gives it is not one the replay reads as Keras does (None: it is)."""
    if isinstance(spec, str):
        return None if spec in STRING_INITIALIZERS else f"unknown initializer {spec!r}"
    keys = {"module", "class_name", "config", "registered_name"}
    ok = isinstance(spec, dict) and set(spec) <= keys and isinstance(spec.get("config"), dict)
    ok = ok and spec.get("module", "keras.initializers") == "keras.initializers" and spec.get("registered_name") is None
    if not ok or spec["class_name"] not in INITIALIZER_KEYS:  # type: ignore[index]
        return f"unknown initializer {spec!r}" if not ok else None
    extra = set(spec["config"]) - INITIALIZER_KEYS[spec["class_name"]]  # type: ignore[index]
    return f"{spec['class_name']} with the keys {sorted(extra)}" if extra else None  # type: ignore[index]


_OTHER_INITIALIZER_KEYS = {  # Keras builds the variables with them, then loads the stored values over them
    "RandomNormal": {"mean", "stddev", "seed"},
    "TruncatedNormal": {"mean", "stddev", "seed"},
    "Orthogonal": {"gain", "seed"},
    **{kind: {"seed", "input_axes", "output_axes"} for kind in ("GlorotNormal", "HeNormal", "LecunNormal")},
}


def _int64(value: object) -> bool:
    """A finite number, an integer TensorFlow converts (int64)."""
    return finite(value) and (not isinstance(value, int) or abs(value) < 2**63)  # type: ignore[arg-type]


_INITIALIZER_VALUES: dict[str, Check] = {  # any other key: a finite number, an int64 if an integer
    "seed": is_seed,
    "mode": one_of("fan_in", "fan_out", "fan_avg"),
    "distribution": one_of("uniform", "normal", "truncated_normal", "untruncated_normal"),
    "scale": lambda v: finite(v) and v > 0,  # type: ignore[operator]
    "input_axes": _NONE,
    "output_axes": _NONE,
}


def initializers_problem(cfg: dict) -> str | None:
    """Why an initializer of the checked layer config ``cfg`` is not one Keras builds the layer with as it loads the
    model (None: each is). Its values never reach the forward pass, which reads the stored variables, but Keras calls
    it before loading them and refuses the model where it fails."""
    for key in ("kernel_initializer", "bias_initializer", *BATCH_NORMALIZATION_INITIALIZERS):
        spec = cfg.get(key)
        problem = spec_problem(spec) if key in cfg else None
        if problem is None and isinstance(spec, dict):
            kind, values = spec["class_name"], spec["config"]
            keys = INITIALIZER_KEYS.get(kind, _OTHER_INITIALIZER_KEYS.get(kind))
            if keys is None or not set(values) <= keys:
                problem = f"{kind} with the keys {sorted(values)}"
            if kind == "Constant" and "value" not in values:
                problem = "Constant without a value"
            bad = [k for k, v in values.items() if not _INITIALIZER_VALUES.get(k, _int64)(v)]
            problem = problem or (f"{kind} with {bad[0]} {values[bad[0]]!r}" if bad else None)
        if problem:
            return f"{key} {problem} of layer {cfg.get('name')!r}"
    return None


_MODEL_KEYS = {"name", "trainable", "dtype", "layers", "build_input_shape", "input_layers", "output_layers"}


def model_problem(config: dict, upto: str | None = None) -> str | None:
    """Why the model around the layers is not one Keras reads as numpy computes it: one input layer first, then the
    chain, and nothing in the model's own config that Keras would read otherwise (None: it is). ``upto``: only the
    chain up to that layer is computed (a branch after it is left to whoever computes it: Keras)."""
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
    names = [(entry.get("config") or {}).get("name") for entry in entries]
    if upto is not None and upto not in names[1:]:
        return f"a model without the layer {upto!r} of its own"
    chain = entries if upto is None else entries[: names.index(upto) + 1]
    batch = (entries[0].get("config") or {}).get("batch_shape")
    ends = [[names[0], 0, 0]], [[names[-1], 0, 0]]
    problems = {
        f"the keys {sorted(set(config) - outer)}": not set(config) <= outer,
        f"registered as {config.get('registered_name')!r}": config.get("registered_name") not in (None, kind),
        f"the model keys {sorted(set(inner) - _MODEL_KEYS)}": not set(inner) <= _MODEL_KEYS,
        f"trainable {inner.get('trainable')!r}": not is_bool(inner.get("trainable", True)),
        f"dtype {inner.get('dtype')!r}": not _float32(inner.get("dtype")),
        f"build_config {config.get('build_config')!r}": not one_of(None, {"input_shape": batch}, {"input_shape": None})(
            config.get("build_config")
        ),
        f"build_input_shape {inner.get('build_input_shape')!r}": not one_of(None, batch)(
            inner.get("build_input_shape")
        ),
        "inputs or outputs other than the chain's ends": config["class_name"] == "Functional"
        and not (
            one_of(ends[0], ends[0][0])(inner.get("input_layers"))
            and (
                one_of(ends[1], ends[1][0])(inner.get("output_layers"))
                or (upto is not None and _feeds(entries, inner.get("output_layers"), upto))
            )
        ),
    }
    found = [what for what, bad in problems.items() if bad]
    if found:
        return f"a {config['class_name']} model with {found[0]}"
    for before, entry in itertools.pairwise(chain):
        if kind == "Functional" and not follows(
            entry.get("inbound_nodes"), before["config"]["name"], entry.get("class_name")
        ):
            return f"layer {entry['config']['name']!r}, which does not simply follow {before['config']['name']!r}"
    return None


def _sources(value: object) -> list[object]:
    """The layers whose outputs a layer's ``inbound_nodes`` (or any part of them) name, at any depth."""
    if isinstance(value, list):
        return [name for item in value for name in _sources(item)]
    if not isinstance(value, dict):
        return []
    history = value.get("config", {}).get("keras_history") if isinstance(value.get("config"), dict) else None
    if value.get("class_name") == "__keras_tensor__" and isinstance(history, list) and history:
        return [history[0]]
    return [name for item in value.values() for name in _sources(item)]


def _feeds(entries: Sequence[dict], outputs: object, layer: str) -> bool:
    """Whether the Functional model's one output (``output_layers``) is computed from layer ``layer``'s output: Keras
    keeps only the layers its outputs are computed from, and the forward pass then computes a layer Keras keeps."""
    if isinstance(outputs, list) and len(outputs) == 1:  # [[name, 0, 0]]
        outputs = outputs[0]
    if not (isinstance(outputs, list) and len(outputs) == 3 and one_of([outputs[0], 0, 0])(outputs)):
        return False
    nodes = {entry["config"]["name"]: entry.get("inbound_nodes") for entry in entries}
    stack, seen = [outputs[0]], set()
    while stack:
        name = stack.pop()
        if name == layer:
            return True
        if isinstance(name, str) and name in nodes and name not in seen:
            seen.add(name)
            stack.extend(_sources(nodes[name]))
    return False


# The kinds of LAYER_KEYS whose ``call`` takes a ``mask`` argument in Keras 3.15 (test_functional_mask.py asks Keras):
# their Functional calls are saved with ``"kwargs": {"mask": null}``; any other kind given a mask is refused by Keras.
MASK_KINDS = frozenset({"BatchNormalization", "Softmax"})


def _no_mask(kwargs: object, kind: object) -> object:
    """A call's ``kwargs`` without ``"mask": null`` where the layer's kind takes a mask (``MASK_KINDS``): what Keras
    3.15 saves when none was given. It is no mask here: the chain's layers make none (Masking, Embedding are not
    among LAYER_KEYS), so Keras finds none to pass either. Any other mask value, or a mask for another kind, stays
    (and is refused)."""
    if kind in MASK_KINDS and isinstance(kwargs, dict) and "mask" in kwargs and kwargs["mask"] is None:
        return {key: value for key, value in kwargs.items() if key != "mask"}
    return kwargs


def follows(nodes: object, previous: object, kind: object = None) -> bool:
    """A Functional layer's ``inbound_nodes``: one call, on the output of the layer ``previous``, nothing else (a
    ``training`` flag; ``mask`` null for a layer of ``kind`` in ``MASK_KINDS``)."""
    tensor = {"class_name": "__keras_tensor__", "config": {"keras_history": [previous, 0, 0]}}
    if type(nodes) is not list or len(nodes) != 1 or not isinstance(nodes[0], dict):
        return False
    node = nodes[0]
    args = node.get("args")
    calls = one_of({}, {"training": False}, {"training": True})  # a dropout's training flag: no variable of it
    if (
        set(node) != {"args", "kwargs"}
        or not calls(_no_mask(node["kwargs"], kind))
        or type(args) is not list
        or len(args) != 1
    ):
        return False
    arg = args[0]
    if not isinstance(arg, dict) or not isinstance(arg.get("config"), dict) or set(arg) != {"class_name", "config"}:
        return False
    kept = {"class_name": arg["class_name"], "config": {"keras_history": arg["config"].get("keras_history")}}
    return one_of(tensor)(kept)


def _window(size: int, k: int, s: int, padding: str) -> int:
    return (size + s - 1) // s if padding == "same" else (size - k) // s + 1


def _normalization_variables(cfg: dict, shape: tuple[int, ...]) -> list[tuple[int, ...]] | None:
    """The variables Keras builds for a ``Normalization`` on inputs of ``shape`` (batch axis left out): a mean and
    variance over the kept axes and a count when adapted, none when the config gives them; None where Keras refuses
    it or lines the statistics up otherwise than ``ops.normalization`` (kept axes outside the input or repeated, the
    batch axis kept, a list of statistics that is not one value or one per position of the last kept axis)."""
    axis = cfg.get("axis", -1)
    axes = [] if axis is None else [axis] if isinstance(axis, int) else list(axis)
    ndim = len(shape) + 1
    keep = sorted(a % ndim for a in axes if -ndim <= a < ndim)
    if len(keep) != len(axes) or len(set(keep)) != len(keep) or 0 in keep:
        return None
    kept = tuple(shape[a - 1] for a in keep)
    given = cfg.get("mean"), cfg.get("variance")
    if given == (None, None):
        return [kept, kept, ()]
    lengths = {len(v) if isinstance(v, list) else None for v in given}  # both numbers, or lists of one length
    if None in given or len(lengths) != 1 or (lengths - {None} and (not kept or lengths - {1, kept[-1]})):
        return None
    return []


def built(entry: dict, shape: tuple[int, ...]) -> tuple[tuple[int, ...] | None, list[tuple[int, ...]]]:
    """The output shape (batch axis left out; None where Keras refuses the input's rank or axes, or a Reshape's size)
    of the checked layer ``entry`` on inputs of ``shape``, and the variables Keras builds for it: Keras's build and
    ``compute_output_shape`` in short. A size may be 0 or negative (a window larger than its input)."""
    kind, cfg = entry["class_name"], entry["config"]
    image = len(shape) == 3
    channels = shape[-1]
    out: tuple[int, ...] | None = shape
    variables: list[tuple[int, ...]] = []
    if kind == "Conv2D":
        (kh, kw), (sh, sw) = pair(cfg["kernel_size"]), pair(cfg["strides"])
        span, groups = effective_kernel((kh, kw), pair(cfg.get("dilation_rate", 1))), cfg.get("groups", 1)
        padding = cfg.get("padding", "valid")
        out = (
            (_window(shape[0], span[0], sh, padding), _window(shape[1], span[1], sw, padding), cfg["filters"])
            if image and channels % groups == 0  # Keras's build refuses channels the groups do not divide
            else None
        )
        variables = [(kh, kw, channels // groups, cfg["filters"])] + [(cfg["filters"],)] * (cfg.get("use_bias", True))
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
    elif kind == "Softmax":
        out = shape if -len(shape) - 1 <= cfg.get("axis", -1) <= len(shape) else None
    elif kind == "Normalization":
        found = _normalization_variables(cfg, shape)
        out, variables = (None, []) if found is None else (shape, found)
    return out, variables


def output_shape(entry: dict, shape: tuple[int, ...], stored: Sequence[tuple[int, ...]]) -> tuple[int, ...] | str:
    """The output shape (batch axis left out) of the checked layer ``entry`` on inputs of ``shape``, Keras's build
    and ``compute_output_shape`` in short (:func:`built`), given its stored variables' shapes; or why Keras would not
    build it so."""
    kind, cfg = entry["class_name"], entry["config"]
    if kind not in LAYER_KEYS:  # not replayed here: the numpy forward pass does not compute it either
        return f"layer {cfg['name']!r} of class {kind}"
    out, variables = built(entry, shape)
    if out is None or not all(d > 0 for d in out):
        return f"layer {cfg['name']!r} ({kind}) on inputs of shape {shape}"
    if [tuple(v) for v in stored] != variables:
        return (
            f"layer {cfg['name']!r} ({kind}), which stores {[tuple(v) for v in stored]} where Keras builds {variables}"
        )
    return out


def chain_problem(
    entries: Sequence[dict], trained: Mapping[str, Sequence[np.ndarray]], sample: Sequence[int] | None = None
) -> str | None:
    """Why Keras would not build the checked chain ``entries`` (an InputLayer, then one layer after another) with
    the variables ``trained`` holds as it stands (None: it would): each layer's input shape follows from the one
    before, as Keras computes it, and must be the one its ``build_config`` says, its variables the ones it builds.
    ``sample``: the input shape to walk it at (no batch axis), the images' size for a model of open input size,
    whose chain is not walked without it."""
    shape = tuple(entries[0]["config"]["batch_shape"][1:]) if sample is None else tuple(sample)
    if None in shape:
        return f"an input of open size {shape} and no images to size it"
    for entry in entries[1:]:
        build = entry.get("build_config")
        built = build.get("input_shape") if isinstance(build, dict) and set(build) == {"input_shape"} else None
        batch = isinstance(built, list) and len(built) >= 1 and (built[0] is None or positive(built[0]))
        if build is not None and not (batch and _fits(built[1:], shape)):  # the batch axis as adapt() saw it
            return f"layer {entry['config']['name']!r}, built for inputs {build!r} where the chain gives {shape}"
        found = output_shape(entry, shape, [np.shape(v) for v in trained.get(entry["config"]["name"], [])])
        if isinstance(found, str):
            return found
        shape = found
    return None


# --- Images too small for a model of open input size ---------------------------------------------------------------
_SHAPE_KEYS = {  # the keys a layer's output shape depends on (:func:`built`); every other key may be anything here
    "Conv2D": ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "groups"),
    "MaxPooling2D": tuple(_POOLING),
    "AveragePooling2D": tuple(_POOLING),
    "Flatten": ("data_format",),
    "Reshape": ("target_shape",),
    "Dense": ("units",),
    "GlobalMaxPooling2D": ("data_format", "keepdims"),
    "GlobalAveragePooling2D": ("data_format", "keepdims"),
    "SpatialDropout2D": ("data_format",),
    "Softmax": ("axis",),
    "Normalization": ("axis", "mean", "variance"),
}
SHAPE_TABLES: dict[str, dict[str, Check]] = {
    kind: {
        **{key: check if key in _SHAPE_KEYS.get(kind, ()) else _any for key, check in keys.items()},
        "dtype": _any,
        "trainable": _any,
    }
    for kind, keys in LAYER_KEYS.items()
    if kind != "InputLayer"
}
LARGEST_IMAGE = 4096  # the largest side :func:`smallest_image` tries


def empty_output(config: dict, sample: tuple[int, ...]) -> tuple[str, str, tuple[int, ...], tuple[int, ...]] | None:
    """The first layer of the model's chain whose output on samples of shape ``sample`` (H, W, C, as the model's
    input takes them) would be empty, a window larger than its input: ``(name, class, its input shape, its output
    shape)``, batch axis left out; None when no layer's is. Walked from the input layer with :func:`built` through
    the layers whose shape-giving keys :data:`SHAPE_TABLES` knows, on a model of one chain (:func:`model_problem`);
    the walk stops, deciding nothing further, at the first layer it does not know (another kind, a branch, a nested
    model, a Reshape the size does not fit): Keras computes those, and ``forward.open_network`` checks its outputs."""
    if model_problem(config) is not None:
        return None
    entries = config["config"]["layers"]
    shape = tuple(sample)
    for entry in entries[1:]:
        if layer_problem(entry, SHAPE_TABLES) is not None:
            return None
        out, _ = built(entry, shape)
        if out is None:
            return None
        if not all(d > 0 for d in out):
            return entry["config"]["name"], entry["class_name"], shape, out
        shape = out
    return None


def smallest_image(config: dict, sample: tuple[int, ...], open_axes: Sequence[bool]) -> tuple[int, int] | None:
    """The smallest (H, W) no smaller than ``sample``'s, growing both open sides to at least the same ``n``, on which
    no layer's output is empty (:func:`empty_output`); None when none up to :data:`LARGEST_IMAGE` is."""
    for n in range(1, LARGEST_IMAGE + 1):
        size = tuple(max(d, n) if grow else d for d, grow in zip(sample[:2], open_axes, strict=True))
        if empty_output(config, (*size, *sample[2:])) is None:
            return size  # type: ignore[return-value]
    return None


def _hw(shape: Sequence[int]) -> str:
    return "×".join(map(str, shape[:2]))


def too_small(config: dict, sample: tuple[int, ...], source: str) -> str | None:
    """The one line refusing images of shape ``sample`` (H, W, C) that are too small for the model of ``config``
    (``source``: its file): the layer whose output would be empty, and the smallest size the model takes; None when
    they are not (as far as :func:`empty_output` decides)."""
    found = empty_output(config, sample)
    if found is None:
        return None
    name, kind, shape, out = found
    batch = config["config"]["layers"][0]["config"]["batch_shape"]
    size = smallest_image(config, sample, [d is None for d in batch[1:3]])
    fix = (
        f"resize them to at least {_hw(size)} (-S data.resize=[{size[0]},{size[1]}])"
        if size
        else "no image size fits it"
    )
    empty = "×".join(str(max(d, 0)) for d in out)
    return (
        f"{source}: images of {_hw(sample)} are too small for this model: its layer {name!r} ({kind}) gets inputs "
        f"of {_hw(shape)} and its output would be empty ({empty}); {fix} or use another model"
    )
