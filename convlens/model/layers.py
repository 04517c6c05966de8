"""A model's layers as its ``config.json`` describes them: checked, listed (nested models' layers as
``outer/inner``), their input shape, and the layers a configured list names."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from convlens.checks import is_plain_name, too_long, too_long_reason
from convlens.errors import ConvlensError
from convlens.model.allowlist import MODEL_CLASSES, foreign_places, unsafe_places


@dataclass(frozen=True)
class LayerInfo:
    """One layer: its index in Keras's ``model.layers`` (``None`` inside a nested model; a Functional model's
    list starts with its InputLayer, a Sequential's leaves it out: :func:`keras_positions`), its address (the
    layer's name; ``outer/inner`` for a layer of the nested model ``outer``) and its class."""

    index: int | None
    name: str
    kind: str


# Layers whose first variable is a kernel of spatial filters: what "every conv layer" means.
CONV_KINDS = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D")
DEPTHWISE_KINDS = ("DepthwiseConv2D", "SeparableConv2D")  # a kernel kh × kw × C × m of C·m filters (the depthwise one)


MAX_CONFIG_DEPTH = 100  # nesting levels of config.json; a model nested 20 deep needs ~85


SAVE_AGAIN = "save the model with model.save('name.keras')"


def _kind(value: object) -> str:
    """How a JSON value reads in a message: ``a list``, ``null``, ``5``."""
    if isinstance(value, dict | list | str):
        return {dict: "an object", list: "a list", str: "a string"}[type(value)]
    return json.dumps(value)[:40]


def _deeper_than(node: object, limit: int) -> bool:
    stack = [(node, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return False


def config_problem(config: object, where: str = "") -> str | None:
    """What makes ``config`` not a Keras model config (None when it is one): the parts convlens reads, nested
    models' layers included (``where``: the nested model's address and ``/``)."""
    if not isinstance(config, dict):
        return f"it holds {_kind(config)}, not an object"
    if not where and _deeper_than(config, MAX_CONFIG_DEPTH):
        return f"nested more than {MAX_CONFIG_DEPTH} levels deep"
    if not isinstance(config.get("class_name"), str):
        return "no class_name"
    if not isinstance(config.get("config"), dict):
        return "no config object"
    layers = config["config"].get("layers")
    names: set[str] = set()
    for i, entry in enumerate(layers if isinstance(layers, list) else []):
        if not isinstance(entry, dict):
            return f"layer {i} is {_kind(entry)}, not an object"
        if not isinstance(entry.get("class_name"), str):
            return f"layer {where}{i} has no class_name"
        if not isinstance(entry.get("config"), dict) or not isinstance(entry["config"].get("name"), str):
            return f"layer {where}{i} ({entry['class_name']}) has no name"
        name = entry["config"]["name"]
        if name in names:
            return f"two layers are named {where + name!r}"
        if (length := too_long(name)) is not None:
            return f"{too_long_reason(f'the name of layer {where}{i}', length, 'layer name')}: rename the layer"
        if not is_plain_name(name):  # layer names become file names under outputs/
            return f"layer {where}{i} is named {name!r}, which is not a plain name (it would be a path)"
        names.add(name)
        if is_nested_model(entry) and (problem := config_problem(entry, f"{where}{name}/")):
            return problem
    return None


MAX_LAYERS = 2000  # twice keras.applications' largest: NASNetLarge has 1041 layers, EfficientNetB7 816, ResNet-152 517


def layer_count(config: dict) -> int:
    """How many layers a checked model config holds, nested models' layers included."""
    layers = config["config"].get("layers")
    entries = [entry for entry in layers if isinstance(entry, dict)] if isinstance(layers, list) else []
    return sum(1 + (layer_count(entry) if is_nested_model(entry) else 0) for entry in entries)


def too_many_layers(source: object, config: dict) -> ConvlensError | None:
    """The error for a model of more than ``MAX_LAYERS`` layers (None: it has fewer)."""
    count = layer_count(config)
    if count <= MAX_LAYERS:
        return None
    return ConvlensError(
        f"{source}: the model has {count} layers (nested models' included), over the {MAX_LAYERS} convlens reads; "
        "look inside a part of it: keras.Model(model.inputs, model.get_layer(NAME).output).save('part.keras')"
    )


def not_a_config(source: object, problem: str, member: str = "config.json") -> ConvlensError:
    return ConvlensError(f"{source}: {member} is not a Keras model config ({problem}); {SAVE_AGAIN}")


def keras2_problem(config: dict) -> str | None:
    """What in a ``.keras`` archive's config Keras 3 cannot load because Keras 2 wrote it (None: nothing).

    Keras 2.13–2.15 saved ``.keras`` archives whose layers carry ``batch_input_shape``; Keras 3 passes it to the
    layer and stops with ``Unrecognized keyword arguments passed to Flatten: batch_input_shape``. (Keras 3's
    legacy ``.h5`` loader translates it, so the same model saved as ``.h5`` loads.)
    """
    layers = (config.get("config") or {}).get("layers")
    for entry in layers if isinstance(layers, list) else []:
        if entry.get("class_name") != "InputLayer" and "batch_input_shape" in entry.get("config", {}):
            return f"Unrecognized keyword arguments passed to {entry['class_name']}: batch_input_shape"
    return None


def _walk_layers(config: dict) -> list[dict]:
    layers = config.get("config", {}).get("layers")
    if not isinstance(layers, list):
        raise ConvlensError(
            f"the archive holds a {config.get('class_name')} with no layer list; "
            "convlens reads Sequential and Functional models"
        )
    return layers


def _snake(kind: str) -> str:
    """A class name as Keras names its weights group: ``DepthwiseConv2D`` → ``depthwise_conv2d``."""
    base = re.sub(r"\W+", "", kind)
    return re.sub("([a-z])([A-Z])", r"\1_\2", re.sub("(.)([A-Z][a-z]+)", r"\1_\2", base)).lower()


def is_nested_model(entry: dict) -> bool:
    """A layer entry that is itself a model with a layer list (a nested Sequential or Functional)."""
    return entry.get("class_name") in MODEL_CLASSES and isinstance((entry.get("config") or {}).get("layers"), list)


def keras_positions(model: dict) -> list[tuple[int, dict]]:
    """The model's layer entries, each with its index in Keras's ``model.layers``.

    ``load_model(path).layers`` of a Functional model lists its InputLayers too, in ``config.json``'s order
    (``input_layer`` is ``layers[0]``); a Sequential's leaves its InputLayer out (``Sequential.layers``).
    """
    entries = _walk_layers(model)
    if model.get("class_name") == "Sequential":
        entries = [entry for entry in entries if entry.get("class_name") != "InputLayer"]
    return list(enumerate(entries))


def input_layers(config: dict) -> dict[int, str]:
    """The model's InputLayers by their index in ``model.layers`` (none for a Sequential: Keras leaves it out)."""
    return {i: e["config"]["name"] for i, e in keras_positions(config) if e.get("class_name") == "InputLayer"}


def walk_layers(config: dict) -> list[tuple[LayerInfo, dict, str]]:
    """Every layer, a nested model's own layers right after it (input layers left out), with its config entry
    and the HDF5 group its variables are stored in.

    Keras names a layer's group after its class, numbering repeated classes in ``model.layers`` order
    (``conv2d``, ``conv2d_1``, …) within each model, and keeps a nested model's layers under its group
    (``layers/sequential/layers/conv2d``), as ``keras.src.saving.saving_lib`` does when it saves.
    """
    found: list[tuple[LayerInfo, dict, str]] = []

    def visit(model: dict, prefix: str, group: str) -> None:
        used: dict[str, int] = {}
        for i, entry in keras_positions(model):
            if entry.get("class_name") == "InputLayer":
                continue
            base = _snake(entry["class_name"])
            used[base] = used[base] + 1 if base in used else 0
            where = f"{group}layers/{base}_{used[base]}" if used[base] else f"{group}layers/{base}"
            name = prefix + entry["config"]["name"]
            found.append((LayerInfo(None if prefix else i, name, entry["class_name"]), entry, where))
            if is_nested_model(entry):
                visit(entry, f"{name}/", f"{where}/")

    visit(config, "", "")
    return found


def layer_infos(config: dict) -> list[LayerInfo]:
    """The model's layers in ``model.layers`` order, each nested model's layers right after it (``outer/inner``)."""
    return [info for info, _, _ in walk_layers(config)]


def check_model_config(config: dict, source: str) -> list[LayerInfo]:
    """Refuse configs that are malformed, would run arbitrary code, name anything that is not a Keras
    built-in, or have nothing to look at; return the layers."""
    problem = config_problem(config)
    if problem:
        raise not_a_config(source, problem)
    layers = layer_infos(config)
    unsafe = unsafe_places(config)
    if unsafe:
        raise ConvlensError(
            f"{source} contains Lambda layers or Python lambdas ({', '.join(unsafe)}) that would run arbitrary "
            "code; refused (Keras safe mode): rebuild the model without them"
        )
    foreign = foreign_places(config)
    if foreign:
        where, what = foreign[0]
        raise ConvlensError(
            f"{source}: layer {where or '?'!r} uses {what}; refused (loading it could run code from outside the "
            "archive): rebuild the model from built-in keras.layers"
        )
    if not any(layer.kind in CONV_KINDS for layer in layers):
        kinds = ", ".join(f"{layer.name} ({layer.kind})" for layer in layers)
        raise ConvlensError(
            f"{source} has no convolutional layer (layers: {kinds}); convlens needs a model with a "
            f"{', '.join(CONV_KINDS[:-1])} or {CONV_KINDS[-1]} layer"
        )
    return layers


def output_layer(layers: Sequence[LayerInfo]) -> str:
    """The model's last top-level layer: what ``model.predict`` returns for a Sequential classifier."""
    return [info for info in layers if info.index is not None][-1].name


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
        fit = data_fit(want, got)
        raise ConvlensError(
            f"{source} expects inputs of shape {shape} but the data's samples are {'×'.join(map(str, got))}; "
            f"{f'make the data fit it ({fit}) or ' if fit else ''}use a model built for this data "
            f"(keras.Input({tuple(got)}))"
        )
    return want


def data_fit(want: tuple[int | None, ...], got: tuple[int, ...]) -> str:
    """The ``data.resize`` / ``data.color`` overrides that turn images of shape ``got`` (H, W, C) into the model's
    input ``want``; empty when no such setting can (not an image input, or an unusual channel count)."""
    if len(want) != 3 or len(got) != 3 or want[2] not in (1, 3, None):
        return ""
    fixes = []
    if any(w is not None and w != g for w, g in zip(want[:2], got[:2], strict=True)):
        height, width = (w if w is not None else g for w, g in zip(want[:2], got[:2], strict=True))
        fixes.append(f"-S data.resize=[{height},{width}]")
    if want[2] is not None and want[2] != got[2]:
        fixes.append(f"-S data.color={'rgb' if want[2] == 3 else 'gray'}")
    return " ".join(fixes)


def resolve_layers(
    specs: Sequence[str | int] | None,
    layers: Sequence[LayerInfo],
    default_kinds: Sequence[str] = CONV_KINDS,
    key: str = "the layer list",
    inputs: Mapping[int, str] | None = None,
) -> list[str]:
    """Layer addresses for ``specs`` (names, ``outer/inner`` for a nested model's layer, or indices into Keras's
    ``model.layers``, whose InputLayers ``inputs`` names by index); ``None`` means every layer of
    ``default_kinds``, nested ones included."""
    if specs is None:
        return [layer.name for layer in layers if layer.kind in default_kinds]
    listing = ", ".join(layer.name if layer.index is None else f"{layer.index}:{layer.name}" for layer in layers)
    top = {layer.index: layer for layer in layers if layer.index is not None}  # what an index counts: model.layers
    inputs = inputs or {}
    last = max([*top, *inputs], default=-1)
    if len(specs) == 0:
        raise ConvlensError(f"the layer list is empty; name at least one layer (this model has {listing})")
    by_name = {layer.name: layer for layer in layers}
    names: list[str] = []
    for spec in specs:
        if isinstance(spec, bool) or not isinstance(spec, int | str):
            raise ConvlensError(f"layer {spec!r} is neither a name nor an index; this model has {listing}")
        if isinstance(spec, int):
            if spec in inputs:
                raise ConvlensError(
                    f"{key}: layer index {spec} is the model's InputLayer {inputs[spec]!r}, which computes nothing "
                    f"to look at (Keras counts it in a Functional model's model.layers); this model has {listing}"
                )
            if spec not in top:
                raise ConvlensError(f"layer index {spec} is out of range 0..{last}; this model has {listing}")
            name = top[spec].name
        elif spec in by_name:
            name = spec
        else:
            raise ConvlensError(f"unknown layer {spec!r}; this model has {listing}")
        if name in names:
            raise ConvlensError(f"{key} names layer {name!r} twice (as {spec!r} and another entry); list it once")
        names.append(name)
    return names
