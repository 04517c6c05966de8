"""The forward pass in numpy: feature maps without TensorFlow.

A ``.keras`` archive's layer chain (config + weights, read once by ``archive.Archive``) becomes a list of
numpy functions, one per layer (``ops``), so the stages that compute activations start in a fraction of
a second instead of importing TensorFlow. What it does not compute (a branch, a nested model, other layer
kinds) raises ``ops.Unsupported``, and :func:`open_network` hands the model to Keras instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from convlens.model.archive import Archive
from convlens.model.layers import input_shape
from convlens.model.ops import Op, Unsupported, layer_op


class Activations(Protocol):
    """What computes layer outputs: :class:`Network` (numpy), ``keras_models.KerasNetwork`` or ``KerasEngine``."""

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


def load_network(
    archive: Archive, upto: str | None = None, weights: Mapping[str, list[np.ndarray]] | None = None
) -> Network:
    """The network stored in a ``.keras`` archive (no TensorFlow), up to (and including) layer ``upto``; ``weights``:
    its layers' variables when the caller has read them already (``archive.weights``)."""
    input_shape, entries = _chain(archive.config, upto)
    names = [entry["config"]["name"] for entry in entries]
    if upto is not None:
        names = names[: names.index(upto) + 1]
    weights = archive.weights(names) if weights is None else weights
    ops = [layer_op(e["class_name"], e["config"], weights[n]) for e, n in zip(entries, names, strict=False)]
    return Network(input_shape, tuple(names), tuple(ops))


def open_network(
    archive: Archive, names: Sequence[str], log: Callable[[str], None], engine: str = "numpy"
) -> Activations:
    """What computes the ``names`` layers' outputs: with ``engine="numpy"`` the numpy forward pass where it can, else
    Keras itself (TensorFlow starts; ``log`` says why); with ``engine="keras"`` one multi-output Keras model
    (``keras_models.KerasEngine``, chosen by ``engine.choose_engine``)."""
    if engine == "keras":
        from convlens.model.keras_models import KerasEngine  # TensorFlow starts here

        return KerasEngine.load(archive, names)
    order = [layer.name for layer in archive.layers]
    try:
        return load_network(archive, upto=max(names, key=order.index))
    except Unsupported as e:
        log(f"{archive.path.name}: {e}, which the numpy forward pass does not compute; computing it with Keras")
    from convlens.model.keras_models import KerasNetwork  # TensorFlow starts here, for such models only

    return KerasNetwork.load(archive, names)
