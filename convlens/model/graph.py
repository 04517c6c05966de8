"""A saved model's graph from its config, without TensorFlow: each layer and the layers it takes its inputs from,
and whether its output can go below 0 by its config (:func:`signed_layers`)."""

from __future__ import annotations

from collections.abc import Sequence

Graph = tuple[list[tuple[str, dict, list[str]]], list[str]]  # model_graph's layers (kind, config, inputs), inputs


def _inbound(entry: dict) -> list[str]:
    """The names of the layers a Functional config ``entry`` takes its inputs from (Keras 3's ``keras_history``)."""
    names: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            history = value.get("keras_history") if isinstance(value.get("keras_history"), list) else None
            if history:
                names.append(str(history[0]))
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(entry.get("inbound_nodes", []))
    return names


def model_graph(config: dict) -> Graph:
    """A saved model's ``config`` as its layers (class name, config, the layers it takes its inputs from), in
    Keras's order, and its input layers' names: a Sequential's layers each take the one before."""
    entries = config["config"]["layers"]
    inputs = [e["config"]["name"] for e in entries if e["class_name"] == "InputLayer"] or ["input"]
    sequential = config.get("class_name") == "Sequential"
    layers, previous = [], inputs[0]
    for entry in entries:
        if entry["class_name"] == "InputLayer":
            continue
        layers.append((entry["class_name"], entry["config"], [previous] if sequential else _inbound(entry)))
        previous = entry["config"]["name"]
    return layers, inputs


# Activations whose output is never below 0, as Keras names them (keras.activations); every other is signed.
UNSIGNED_ACTIVATIONS = frozenset(
    {
        "relu",
        "relu6",
        "sigmoid",
        "hard_sigmoid",
        "softmax",
        "softplus",
        "exponential",
        "sparse_sigmoid",
        "sparse_plus",
        "squareplus",
        "sparsemax",
    }
)

# Layers whose output is below 0 only where an input is: they select, average, multiply, move or repeat values
# (bilinear or nearest upsampling), or, as Dropout and the noise layers, pass them as they are when the model is
# called with ``training=False``, as every convlens pass calls it.
SIGN_KEEPING = frozenset(
    {
        *(f"{pool}Pooling{d}D" for pool in ("Max", "Average", "GlobalMax", "GlobalAverage") for d in (1, 2, 3)),
        *(f"{kind}{d}D" for kind in ("Cropping", "ZeroPadding", "SpatialDropout") for d in (1, 2, 3)),
        *("UpSampling1D", "UpSampling3D", "Flatten", "Reshape", "Permute", "RepeatVector", "Identity"),
        *("Dropout", "GaussianDropout", "AlphaDropout", "GaussianNoise"),
        *("Concatenate", "Add", "Maximum", "Minimum", "Multiply", "Average"),
    }
)

SIGN_KEEPING_UPSAMPLING = ("nearest", "bilinear")  # UpSampling2D's interpolations without overshoot


def activation_name(spec: object) -> object:
    """The name of a Keras activation as a layer's config holds it: ``"relu"``, a serialized function
    (``{"class_name": "function", "config": "relu", …}``) or ``None`` (``"linear"``)."""
    name = spec.get("config", spec.get("class_name")) if isinstance(spec, dict) else spec
    return "linear" if name is None else name


def _numbers(value: object) -> list[float] | None:
    """The numbers of a config value: a number, a (nested) list of them or a serialized array (``__numpy__``);
    ``None`` for anything else."""
    if isinstance(value, dict) and value.get("class_name") == "__numpy__" and isinstance(value.get("config"), dict):
        return _numbers(value["config"].get("value"))
    if isinstance(value, list):
        parts = [_numbers(item) for item in value]
        return None if any(p is None for p in parts) else [n for p in parts for n in p or []]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [float(value)]
    return None


def _at_least(value: object, floor: float) -> bool:
    numbers = _numbers(value)
    return numbers is not None and all(n >= floor for n in numbers)


def layer_signed(kind: str, config: dict, inputs_signed: Sequence[bool]) -> bool:
    """Whether a layer's output may go below 0 by its class name ``kind`` and ``config``, given whether each of its
    inputs may (``inputs_signed``; empty: not known). An activation (a layer's ``activation``, ReLU, Softmax)
    decides alone; a sign-keeping layer (:data:`SIGN_KEEPING`, Rescaling by a scale and offset ≥ 0) is signed where
    an input is or its inputs are not known; every other kind is signed (BatchNormalization, Subtract, …)."""
    if kind == "Softmax":
        return False
    if kind == "ReLU":
        slope, top = _numbers(config.get("negative_slope", 0.0)), config.get("max_value")
        return not (
            slope == [0.0] and _at_least(config.get("threshold", 0.0), 0.0) and (top is None or _at_least(top, 0.0))
        )
    if "activation" in config:
        return activation_name(config["activation"]) not in UNSIGNED_ACTIVATIONS
    if not inputs_signed:
        return True
    if kind == "Rescaling":
        offset = config.get("offset", 0.0)
        return any(inputs_signed) or not (_at_least(config.get("scale", 1.0), 0.0) and _at_least(offset, 0.0))
    if kind in SIGN_KEEPING or (kind == "UpSampling2D" and config.get("interpolation") in SIGN_KEEPING_UPSAMPLING):
        return any(inputs_signed)
    return True


def signed_layers(layers: Sequence[tuple[str, dict, Sequence[str]]], inputs: Sequence[str]) -> dict[str, bool]:
    """Each layer of :func:`model_graph`'s ``layers`` and ``inputs``: True where its output may go below 0 by its
    config (:func:`layer_signed`). The inputs are images scaled to ≥ 0; a layer that takes an input not known here
    is signed. Nested models' layers (``outer/inner``) are not in the graph, nor in the result."""
    known = dict.fromkeys(inputs, False)
    for kind, config, inbound in layers:
        ins = [known[i] for i in inbound] if inbound and all(i in known for i in inbound) else []
        known[config["name"]] = layer_signed(kind, config, ins)
    return {config["name"]: known[config["name"]] for _, config, _ in layers}
