"""Read a ``.keras`` archive without TensorFlow: its layer list and its weights.

A ``.keras`` file is a zip holding ``config.json`` (the architecture) and ``model.weights.h5``
(``layers/<class in snake case, numbered>/vars/<i>``, e.g. ``layers/conv2d_1/vars/0``: for Conv2D
and Dense, var 0 is the kernel and var 1 the bias).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConvlensError

UNSAFE_LAYERS = frozenset({"Lambda", "TFOpLambda"})


@dataclass(frozen=True)
class LayerInfo:
    """One layer as ``model.layers`` lists it: position, name and class."""

    index: int
    name: str
    kind: str


def read_config(path: Path) -> dict:
    """The archive's ``config.json``, after checking the file is a Keras v3 archive."""
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            if not {"config.json", "model.weights.h5"} <= names:
                raise ConvlensError(
                    f"{path} is a zip but not a Keras archive (no config.json / model.weights.h5); "
                    "save the model with model.save('name.keras')"
                )
            return json.loads(z.read("config.json"))
    except (zipfile.BadZipFile, OSError, json.JSONDecodeError) as e:
        raise ConvlensError(
            f"{path} is not a Keras .keras archive ({e}); save the model with model.save('name.keras')"
        ) from e


def _walk_layers(config: dict) -> list[dict]:
    layers = config.get("config", {}).get("layers")
    if not isinstance(layers, list):
        raise ConvlensError(
            f"the archive holds a {config.get('class_name')} with no layer list; "
            "convlens reads Sequential and Functional models"
        )
    return layers


def layer_infos(config: dict) -> list[LayerInfo]:
    """The model's layers in ``model.layers`` order, input layers left out."""
    entries = [e for e in _walk_layers(config) if e.get("class_name") != "InputLayer"]
    return [LayerInfo(i, e["config"]["name"], e["class_name"]) for i, e in enumerate(entries)]


def unsafe_places(node: object, where: str = "") -> list[str]:
    """Where a config holds code Keras's safe mode refuses: Lambda layers (by name), at any depth (nested
    models too), and serialized Python lambdas (``__lambda__``, e.g. an activation) as ``layer.key``."""
    if isinstance(node, list):
        return [place for item in node for place in unsafe_places(item, where)]
    if not isinstance(node, dict):
        return []
    kind, inner = node.get("class_name"), node.get("config")
    name = inner.get("name") if isinstance(inner, dict) and isinstance(inner.get("name"), str) else None
    if kind in UNSAFE_LAYERS:
        return [name or where or str(kind)]
    if kind == "__lambda__":
        return [where or "a lambda"]
    if kind is not None:
        return unsafe_places(inner, name or where)
    return [place for key, value in node.items() for place in unsafe_places(value, f"{where}.{key}" if where else key)]


def check_model_config(config: dict, source: str) -> list[LayerInfo]:
    """Refuse configs that would run arbitrary code or have nothing to look at; return the layers."""
    layers = layer_infos(config)
    unsafe = unsafe_places(config)
    if unsafe:
        raise ConvlensError(
            f"{source} contains Lambda layers or Python lambdas ({', '.join(unsafe)}) that would run arbitrary "
            "code; refused (Keras safe mode): rebuild the model without them"
        )
    if not any(layer.kind == "Conv2D" for layer in layers):
        kinds = ", ".join(f"{layer.name} ({layer.kind})" for layer in layers)
        raise ConvlensError(f"{source} has no Conv2D layer (layers: {kinds}); convlens needs a convolutional model")
    return layers


def input_shape(config: dict) -> tuple[int | None, ...]:
    """The model's input shape without the batch axis, e.g. ``(28, 28, 1)``, read from ``config.json``:
    the first InputLayer's ``batch_shape`` (Keras 3) or ``batch_input_shape`` (Keras 2), else the first
    layer's ``batch_input_shape`` or built input shape, else the Sequential's ``build_input_shape``."""
    layers = _walk_layers(config)
    entries = [e for e in layers if e.get("class_name") == "InputLayer"] + layers[:1]
    candidates = [
        shape
        for e in entries
        for shape in (
            (e.get("config") or {}).get("batch_shape"),
            (e.get("config") or {}).get("batch_input_shape"),
            (e.get("build_config") or {}).get("input_shape"),
        )
    ]
    candidates.append((config.get("config") or {}).get("build_input_shape"))
    for shape in candidates:
        if isinstance(shape, list) and len(shape) >= 2:
            return tuple(shape[1:])
    raise ConvlensError(
        "the model's config.json does not say its input shape; build it with keras.Input((28, 28, 1)) and save again"
    )


def check_input_shape(config: dict, sample_shape: tuple[int, ...], source: str) -> tuple[int | None, ...]:
    """The data's samples, (H, W) or (H, W, C), must fit the model's input (``None`` fits any size);
    return the model's input shape."""
    want = input_shape(config)
    got = tuple(sample_shape) if len(sample_shape) == len(want) else (*sample_shape, 1)
    if len(got) != len(want) or any(w is not None and w != g for w, g in zip(want, got, strict=True)):
        shape = "×".join("?" if w is None else str(w) for w in want)
        raise ConvlensError(
            f"{source} expects inputs of shape {shape} but the data's samples are "
            f"{'×'.join(map(str, got))}; use a model built for this data (keras.Input({tuple(got)}))"
        )
    return want


def resolve_layers(specs: Sequence[str | int] | None, layers: Sequence[LayerInfo], default_kind: str) -> list[str]:
    """Layer names for ``specs`` (names or indices into ``model.layers``); ``None`` means every ``default_kind``."""
    if specs is None:
        return [layer.name for layer in layers if layer.kind == default_kind]
    listing = ", ".join(f"{layer.index}:{layer.name}" for layer in layers)
    if len(specs) == 0:
        raise ConvlensError(f"the layer list is empty; name at least one layer (this model has {listing})")
    by_name = {layer.name: layer for layer in layers}
    names: list[str] = []
    for spec in specs:
        if isinstance(spec, bool) or not isinstance(spec, int | str):
            raise ConvlensError(f"layer {spec!r} is neither a name nor an index; this model has {listing}")
        if isinstance(spec, int):
            if not 0 <= spec < len(layers):
                raise ConvlensError(
                    f"layer index {spec} is out of range 0..{len(layers) - 1}; this model has {listing}"
                )
            name = layers[spec].name
        elif spec in by_name:
            name = spec
        else:
            raise ConvlensError(f"unknown layer {spec!r}; this model has {listing}")
        if name not in names:
            names.append(name)
    return names


def weight_groups(layers: Sequence[LayerInfo]) -> dict[str, str]:
    """Where Keras stores each layer's variables: named after its class, not the layer's own name.

    Keras numbers repeated classes in ``model.layers`` order (``conv2d``, ``conv2d_1``, …), as
    ``keras.src.saving.saving_lib`` does when it saves.
    """
    used: dict[str, int] = {}
    groups = {}
    for layer in layers:
        base = re.sub(r"\W+", "", layer.kind)
        base = re.sub("([a-z])([A-Z])", r"\1_\2", re.sub("(.)([A-Z][a-z]+)", r"\1_\2", base)).lower()
        used[base] = used[base] + 1 if base in used else 0
        groups[layer.name] = f"layers/{base}_{used[base]}" if used[base] else f"layers/{base}"
    return groups


def read_weights(path: Path, names: Sequence[str]) -> dict[str, list[np.ndarray]]:
    """Each named layer's variables, in Keras order (kernel, bias, …), read with h5py."""
    import h5py

    groups = weight_groups(layer_infos(read_config(path)))
    try:
        with zipfile.ZipFile(path) as z, h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as h5:
            out = {}
            for name in names:
                group = h5.get(f"{groups[name]}/vars")
                if group is None:
                    raise ConvlensError(f"{path}: no weights stored for layer {name!r}; is the archive complete?")
                out[name] = [np.asarray(group[k]) for k in sorted(group, key=int)]
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        raise ConvlensError(f"{path}: model.weights.h5 is unreadable ({e}); save the model again") from e
    return out


def write_reproducible(src: Path, dst: Path) -> None:
    """Copy a ``.keras`` archive with its save date and zip timestamps removed.

    The same weights then give the same bytes, so DVC sees an unchanged model and skips the stages
    downstream of it.
    """
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for name in sorted(zin.namelist()):
            data = zin.read(name)
            if name == "metadata.json":
                meta = json.loads(data)
                meta.pop("date_saved", None)
                data = json.dumps(meta, sort_keys=True).encode()
            zout.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
