"""Read a ``.keras`` archive without TensorFlow: its layer list and its weights.

A ``.keras`` file is a zip holding ``config.json`` (the architecture) and ``model.weights.h5``
(``layers/<class in snake case, numbered>/vars/<i>``, e.g. ``layers/conv2d_1/vars/0``: for Conv2D
and Dense, var 0 is the kernel and var 1 the bias).
"""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import os
import re
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

import numpy as np

from .errors import ConvlensError
from .schema import is_plain_name

UNSAFE_LAYERS = frozenset({"Lambda", "TFOpLambda"})


# --- Keras built-ins, read from the installed Keras without importing it ----------------------------------
# fetch_model must not start TensorFlow, and importing ``keras`` does. Keras's public API is a set of
# generated files (``keras/layers/__init__.py``, …) holding only ``from keras.src… import X as X`` lines;
# their names are exactly what Keras's own loader resolves as built-ins (``keras.layers.Conv2D``), so
# parsing them with :mod:`ast` gives an allow-list that follows the installed Keras version, with no
# hand-kept list to go stale, and that cannot include anything Keras itself does not ship.

# The public Keras modules a model config may name, e.g. ``{"module": "keras.layers", "class_name": "Conv2D"}``.
MODULES = (
    "keras",
    "keras.layers",
    "keras.models",
    "keras.initializers",
    "keras.regularizers",
    "keras.constraints",
    "keras.activations",
    "keras.dtype_policies",
    "keras.optimizers",
    "keras.optimizers.schedules",
    "keras.losses",
    "keras.metrics",
)
# Model classes Keras saves under their source module, not a public one.
SOURCE_CLASSES = frozenset(
    {
        ("keras.src.models.functional", "Functional"),
        ("keras.src.models.sequential", "Sequential"),
        ("keras.src.models.model", "Model"),
    }
)


def _keras_dir() -> Path:
    spec = importlib.util.find_spec("keras")  # finds the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise ConvlensError("Keras is not installed, and models are checked against it; install it (make run does)")
    return Path(next(iter(spec.submodule_search_locations)))


@cache
def public_names(module: str) -> frozenset[str]:
    """The names ``module`` (one of :data:`MODULES`) exports, e.g. ``Conv2D`` for ``keras.layers``."""
    if module not in MODULES:
        return frozenset()
    path = _keras_dir().joinpath(*module.split(".")[1:], "__init__.py")
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError) as e:
        raise ConvlensError(f"cannot read Keras's API list {path} ({e}); reinstall keras") from e
    return frozenset(
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    )


def is_builtin_class(module: str | None, class_name: str) -> bool:
    """Keras would resolve ``module.class_name`` to one of its own classes (capitalised public names).

    No module (hand-written or Keras 2 style configs) is resolved by Keras from its layer, initializer, …
    tables; it passes when the name is a public class of any :data:`MODULES`.
    """
    if (module, class_name) in SOURCE_CLASSES:
        return True
    if not class_name[:1].isupper():
        return False
    if module is None:
        return any(class_name in public_names(m) for m in MODULES)
    return class_name in public_names(module)


NOT_FUNCTIONS = frozenset({"deserialize", "get", "serialize"})  # the modules' own helpers, not activations etc.


def is_builtin_function(name: str, modules: tuple[str, ...]) -> bool:
    """``name`` is a function or alias Keras ships in one of ``modules`` (e.g. ``relu`` in keras.activations)."""
    return name not in NOT_FUNCTIONS and any(name in public_names(m) for m in modules)


@dataclass(frozen=True)
class LayerInfo:
    """One layer: its position in ``model.layers`` (``None`` inside a nested model), its address (the layer's
    name; ``outer/inner`` for a layer of the nested model ``outer``) and its class."""

    index: int | None
    name: str
    kind: str


# Layers whose first variable is a kernel of spatial filters: what "every conv layer" means.
CONV_KINDS = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D")


MiB = 1 << 20
# The most each archive member may hold uncompressed: a model's config is a few kB, the book's weights 4 MB.
MEMBER_CAPS = {"config.json": 16 * MiB, "metadata.json": 1 * MiB, "model.weights.h5": 2048 * MiB}
OTHER_MEMBER_CAP = 16 * MiB
MAX_CONFIG_DEPTH = 100  # nesting levels of config.json; a model nested 20 deep needs ~85
SAVE_AGAIN = "save the model with model.save('name.keras')"


def _size(n: int) -> str:
    """``n`` bytes, readable: ``16 MiB``, ``1.0 GiB``, ``300 bytes``."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", MiB), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n // scale} {unit}" if n % scale == 0 else f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _too_big(path: Path, name: str, size: str, cap: int) -> ConvlensError:
    return ConvlensError(
        f"{path}: {name} is {size} uncompressed, over the {_size(cap)} limit (a zip bomb?); refused: {SAVE_AGAIN}"
    )


def read_member(z: zipfile.ZipFile, name: str, path: Path) -> bytes:
    """Archive member ``name``, refused when its header or its actual content exceeds the member's cap."""
    cap = MEMBER_CAPS.get(name, OTHER_MEMBER_CAP)
    info = z.getinfo(name)
    if info.file_size > cap:
        raise _too_big(path, name, _size(info.file_size), cap)
    with z.open(info) as member:
        data = member.read(cap + 1)  # the header can lie: never inflate more than the cap
    if len(data) > cap:
        raise _too_big(path, name, f"more than {_size(cap)}", cap)
    return data


def _check_member_sizes(z: zipfile.ZipFile, path: Path) -> None:
    for info in z.infolist():
        cap = MEMBER_CAPS.get(info.filename, OTHER_MEMBER_CAP)
        if info.file_size > cap:
            raise _too_big(path, info.filename, _size(info.file_size), cap)


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
        if not is_plain_name(name):  # layer names become file names under outputs/
            return f"layer {where}{i} is named {name!r}, which is not a plain name (it would be a path)"
        names.add(name)
        if is_nested_model(entry) and (problem := config_problem(entry, f"{where}{name}/")):
            return problem
    return None


def _not_a_config(source: object, problem: str, member: str = "config.json") -> ConvlensError:
    return ConvlensError(f"{source}: {member} is not a Keras model config ({problem}); {SAVE_AGAIN}")


def parse_config(raw: bytes, source: object, member: str = "config.json") -> dict:
    """``config.json``'s bytes (or a legacy ``.h5``'s ``model_config``) as a checked model config
    (see :func:`config_problem`)."""
    try:
        config = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise _not_a_config(source, f"not UTF-8: {e.reason} at byte {e.start}", member) from e
    except RecursionError as e:
        raise _not_a_config(source, "nested too deeply to parse", member) from e
    except ValueError as e:  # json.JSONDecodeError, and integers longer than Python converts
        raise _not_a_config(source, f"not JSON: {e}", member) from e
    problem = config_problem(config)
    if problem:
        raise _not_a_config(source, problem, member)
    return config


def read_config(path: Path) -> dict:
    """The archive's ``config.json``, after checking the file is a Keras v3 archive of sane size."""
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            if not {"config.json", "model.weights.h5"} <= names:
                raise ConvlensError(
                    f"{path} is a zip but not a Keras archive (no config.json / model.weights.h5); {SAVE_AGAIN}"
                )
            _check_member_sizes(z, path)
            raw = read_member(z, "config.json", path)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError, zlib.error) as e:
        raise ConvlensError(f"{path} is not a Keras .keras archive ({e}); {SAVE_AGAIN}") from e
    return parse_config(raw, path)


# --- Legacy HDF5 models (Keras 2's ``model.save('name.h5')``, the book's earlier editions) ----------------
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
H5_CONFIG_CAP = MEMBER_CAPS["config.json"]
RESAVE_KERAS2 = (
    "in Keras 2 (TensorFlow ≤ 2.15), load it and save it as .h5 (model.save('name.h5')), which convlens converts"
)


def is_hdf5(path: Path) -> bool:
    """``path`` starts with the HDF5 signature (a legacy ``.h5`` model; Keras writes the superblock at byte 0)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE
    except OSError as e:
        raise ConvlensError(f"cannot read {path} ({e.strerror or e}); check the file and its permissions") from e


def read_h5_config(path: Path, source: object = None) -> dict:
    """A legacy ``.h5`` model's ``model_config`` attribute, checked as :func:`read_config` checks ``config.json``.

    Read with h5py only, before any Keras code opens the file: nothing in it may point outside it
    (:func:`storage_problem`: external or soft links, external storage, virtual datasets), and the config
    must be a sane size and a model config. Messages name ``source`` (default: ``path``). Keras 2 configs carry
    no ``module`` keys; the allow-list
    (:func:`is_builtin_class`) resolves such names in Keras's public modules, as Keras's loader does.
    """
    import h5py

    source = path if source is None else source
    try:
        with h5py.File(path, "r") as h5:
            problem = storage_problem(h5)
            if problem:
                raise ConvlensError(f"{source} {problem}; refused (it could read other files): {SAVE_AGAIN}")
            if "model_config" not in h5.attrs:
                raise ConvlensError(
                    f"{source} is an HDF5 file with no model_config (weights only, from save_weights?); "
                    "save the whole model with model.save('name.keras')"
                )
            size = h5.attrs.get_id("model_config").get_storage_size()
            if size > H5_CONFIG_CAP:
                raise _too_big(source, "model_config", _size(size), H5_CONFIG_CAP)
            raw = h5.attrs["model_config"]
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
        raise ConvlensError(f"{source} is not a readable Keras .h5 model ({e}); {SAVE_AGAIN}") from e
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    if not isinstance(raw, bytes):
        raise _not_a_config(source, f"it holds {type(raw).__name__}, not text", "model_config")
    return parse_config(raw, source, "model_config")


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
        entries = [e for e in _walk_layers(model) if e.get("class_name") != "InputLayer"]
        for i, entry in enumerate(entries):
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


def unsafe_places(node: object, where: str = "") -> list[str]:
    """Where a config holds code Keras's safe mode refuses: Lambda layers (by name), at any depth (nested
    models too), and serialized Python lambdas (``__lambda__``, e.g. an activation) as ``layer.key``."""
    if isinstance(node, list):
        return [place for item in node for place in unsafe_places(item, where)]
    if not isinstance(node, dict):
        return []
    kind, inner = node.get("class_name"), node.get("config")
    name = inner.get("name") if isinstance(inner, dict) and isinstance(inner.get("name"), str) else None
    if isinstance(kind, str) and kind in UNSAFE_LAYERS:
        return [name or where or str(kind)]
    if kind == "__lambda__":
        return [where or "a lambda"]
    if kind is not None:
        return unsafe_places(inner, name or where)
    return [place for key, value in node.items() for place in unsafe_places(value, f"{where}.{key}" if where else key)]


# Built-in layers that run code from outside the archive; refused by name, with the reason.
FOREIGN_CODE_LAYERS = {
    "TFSMLayer": "loads a TensorFlow SavedModel from outside the archive",
    "TorchModuleWrapper": "unpickles a PyTorch module",
    "JaxLayer": "calls arbitrary JAX functions",
    "FlaxLayer": "calls an arbitrary Flax module",
    **dict.fromkeys(UNSAFE_LAYERS, "runs arbitrary Python code"),  # also where unsafe_places does not look
}
# Plain data Keras writes as objects (a functional model's tensors, arrays, slices): no class is looked up.
DATA_MARKERS = frozenset({"__keras_tensor__", "__tensor__", "__numpy__", "__bytes__", "__ellipsis__", "__slice__"})
FUNCTION_MODULES = ("keras.activations", "keras.losses", "keras.metrics")
MODEL_CLASSES = frozenset({"Sequential", "Functional", "Model"})
# Config keys whose string values Keras looks up as built-ins, and where it looks.
STRING_LOOKUPS = (
    ("activation", "activation", ("keras.activations",)),
    ("_initializer", "initializer", ("keras.initializers",)),
    ("_regularizer", "regularizer", ("keras.regularizers",)),
    ("_constraint", "constraint", ("keras.constraints",)),
)


def _foreign_object(node: dict, in_layer_list: bool) -> str | None:
    """What in one serialized object (``class_name``, ``module``, ``registered_name``) is not a Keras built-in."""
    kind, module, registered = node.get("class_name"), node.get("module"), node.get("registered_name")
    if not isinstance(kind, str) or not (module is None or isinstance(module, str)):
        return f"class {kind!r} from module {module!r}"
    label = f"{module}.{kind}" if module else kind
    if kind in DATA_MARKERS:
        return None
    if kind == "function":
        name = node.get("config")
        ok = module in (None, "builtins", *FUNCTION_MODULES) and isinstance(name, str)
        if ok and is_builtin_function(name, FUNCTION_MODULES) and registered in (None, name):
            return None
        return f"function {module}.{name}" if module else f"function {name!r}"
    if registered not in (None, kind):
        return f"{label} registered as {registered!r} (a custom object)"
    if not is_builtin_class(module, kind):
        return label
    if in_layer_list and kind not in MODEL_CLASSES and kind not in public_names("keras.layers"):
        return f"{label} as a layer"
    return None


def _foreign_string(key: str, value: str) -> str | None:
    for suffix, what, modules in STRING_LOOKUPS:
        builtin = is_builtin_function(value, modules) or (what != "activation" and is_builtin_class(modules[0], value))
        if key.endswith(suffix) and not builtin:
            return f"{what} {value!r}"
    return None


def foreign_places(config: object) -> list[tuple[str, str]]:
    """``(layer, what)`` for everything in a config that is not a Keras built-in, so that loading it
    could run code from outside Keras: classes from other modules (``os.system``), registered custom
    objects, non-Keras functions, activation or initializer names Keras does not have, and the layers
    of :data:`FOREIGN_CODE_LAYERS`. An allow-list (see :func:`public_names`): anything Keras does not ship
    is refused, so no deny-list of tricks has to be complete. ``layer`` is the enclosing layer's name."""
    found: list[tuple[str, str]] = []
    stack: list[tuple[object, str, str]] = [(config, "", "")]
    while stack:
        node, where, key = stack.pop()
        if isinstance(node, list):
            stack.extend((item, where, key) for item in reversed(node))
            continue
        if not isinstance(node, dict):
            continue
        if "class_name" in node:
            inner = node.get("config")
            name = inner.get("name") if isinstance(inner, dict) else None
            where = name if isinstance(name, str) else where
            kind = node["class_name"]
            if isinstance(kind, str) and kind in FOREIGN_CODE_LAYERS:
                found.append((where, f"a {kind}, which {FOREIGN_CODE_LAYERS[kind]}"))
            problem = _foreign_object(node, key == "layers")
            if problem:
                found.append((where, f"{problem}, which is not a Keras built-in"))
        for child_key, value in node.items():
            problem = _foreign_string(child_key, value) if isinstance(value, str) else None
            if problem:
                found.append((where, f"{problem}, which is not a Keras built-in"))
        stack.extend((value, where, str(child_key)) for child_key, value in reversed(node.items()))
    return found


def check_model_config(config: dict, source: str) -> list[LayerInfo]:
    """Refuse configs that are malformed, would run arbitrary code, name anything that is not a Keras
    built-in, or have nothing to look at; return the layers."""
    problem = config_problem(config)
    if problem:
        raise _not_a_config(source, problem)
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


def resolve_layers(
    specs: Sequence[str | int] | None,
    layers: Sequence[LayerInfo],
    default_kinds: Sequence[str] = CONV_KINDS,
    key: str = "the layer list",
) -> list[str]:
    """Layer addresses for ``specs`` (names, ``outer/inner`` for a nested model's layer, or indices into
    ``model.layers``); ``None`` means every layer of ``default_kinds``, nested ones included."""
    if specs is None:
        return [layer.name for layer in layers if layer.kind in default_kinds]
    listing = ", ".join(layer.name if layer.index is None else f"{layer.index}:{layer.name}" for layer in layers)
    top = [layer for layer in layers if layer.index is not None]  # what an index counts: model.layers
    if len(specs) == 0:
        raise ConvlensError(f"the layer list is empty; name at least one layer (this model has {listing})")
    by_name = {layer.name: layer for layer in layers}
    names: list[str] = []
    for spec in specs:
        if isinstance(spec, bool) or not isinstance(spec, int | str):
            raise ConvlensError(f"layer {spec!r} is neither a name nor an index; this model has {listing}")
        if isinstance(spec, int):
            if not 0 <= spec < len(top):
                raise ConvlensError(f"layer index {spec} is out of range 0..{len(top) - 1}; this model has {listing}")
            name = top[spec].name
        elif spec in by_name:
            name = spec
        else:
            raise ConvlensError(f"unknown layer {spec!r}; this model has {listing}")
        if name in names:
            raise ConvlensError(f"{key} names layer {name!r} twice (as {spec!r} and another entry); list it once")
        names.append(name)
    return names


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def expected_shapes(entry: dict) -> list[tuple[int | None, ...]] | None:
    """The variable shapes a conv (``CONV_KINDS``), Dense or BatchNormalization layer's config implies, in Keras's
    order (``None``: a size the config leaves open); None for other layers, and for quantized ones.

    Input channels come from the layer's ``build_config`` (Keras saves each layer's input shape there).
    """
    kind, cfg = entry["class_name"], entry["config"]
    dtype = cfg.get("dtype")
    if isinstance(dtype, dict) and dtype.get("class_name") not in ("DTypePolicy", "FloatDTypePolicy"):
        return None
    build = entry.get("build_config")
    shape = build.get("input_shape") if isinstance(build, dict) else None

    def dim(axis: object) -> int | None:
        ok = isinstance(shape, list) and isinstance(axis, int) and -len(shape) <= axis < len(shape)
        return _int(shape[axis]) if ok else None

    bias = cfg.get("use_bias", True) is not False
    size = cfg.get("kernel_size")
    size = [size, size] if _int(size) else size if isinstance(size, list) and len(size) == 2 else [None, None]
    channels = dim(1 if cfg.get("data_format") == "channels_first" else -1)
    filters = _int(cfg.get("filters"))
    if kind == "Conv2D":
        groups = _int(cfg.get("groups", 1))
        per_group = channels // groups if channels and groups and channels % groups == 0 else None
        return [(_int(size[0]), _int(size[1]), per_group, filters)] + [(filters,)] * bias
    if kind in ("DepthwiseConv2D", "SeparableConv2D"):
        multiplier = _int(cfg.get("depth_multiplier", 1))
        depthwise = (_int(size[0]), _int(size[1]), channels, multiplier)
        spread = channels * multiplier if channels and multiplier else None
        if kind == "DepthwiseConv2D":
            return [depthwise] + [(spread,)] * bias
        return [depthwise, (1, 1, spread, filters)] + [(filters,)] * bias
    if kind == "Dense":
        units = _int(cfg.get("units"))
        return [(dim(-1), units)] + [(units,)] * bias
    if kind == "BatchNormalization":
        axis = cfg.get("axis", -1)
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        count = 2 + (cfg.get("scale", True) is not False) + (cfg.get("center", True) is not False)
        return [(dim(axis),)] * count
    return None


VARIABLE_NAMES = {
    "Conv2D": ("kernel", "bias"),
    "DepthwiseConv2D": ("depthwise kernel", "bias"),
    "SeparableConv2D": ("depthwise kernel", "pointwise kernel", "bias"),
    "Dense": ("kernel", "bias"),
    "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance"),
}


def _shape_text(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def shape_problem(entry: dict, stored: Sequence[tuple[int, ...]]) -> str | None:
    """How the stored variable shapes of one layer differ from what its config says (None: they agree)."""
    want = expected_shapes(entry)
    if want is None:
        return None
    name, kind = entry["config"]["name"], entry["class_name"]
    if len(stored) != len(want):
        return f"layer {name!r} stores {len(stored)} variables but its config says {len(want)}"
    labels = VARIABLE_NAMES[kind]
    if kind == "BatchNormalization" and len(want) < 4:
        labels = ("variable",) * 4
    for label, got, expected in zip(labels, stored, want, strict=False):
        if len(got) != len(expected) or any(e is not None and e != g for g, e in zip(got, expected, strict=False)):
            return f"layer {name!r} stores its {label} as {tuple(got)} but its config says {_shape_text(expected)}"
    return None


def storage_problem(h5: object) -> str | None:
    """Why an HDF5 weights file could read data from outside itself (None: it cannot).

    Every link is visited (``visititems_links`` also reports soft and external links, which
    ``visititems`` skips): external and soft links, datasets with external storage, virtual datasets
    and non-numeric datasets are refused. Keras writes none of them.
    """
    import h5py

    links: list[tuple[str, object]] = []
    h5.visititems_links(lambda name, link: links.append((name, link)))  # an exception in here would be lost
    for name, link in links:
        if isinstance(link, h5py.ExternalLink):
            return f"links {name} to {link.filename}:{link.path} (an external link)"
        if isinstance(link, h5py.SoftLink):
            return f"links {name} to {link.path} (a soft link)"
        if not isinstance(link, h5py.HardLink):
            return f"holds {name} as a {type(link).__name__}"
        node = h5[name]
        if isinstance(node, h5py.Dataset):
            if node.external:
                target = node.external[0][0]
                return f"keeps {name} in the external file {os.fsdecode(target)}"
            if node.is_virtual:
                return f"holds {name} as a virtual dataset (data read from other files)"
            if node.dtype.kind not in "biuf":
                return f"holds {name} as {node.dtype}, not numbers"
    return None


def _variables(h5: object, group_path: str) -> list | None:
    """The datasets ``<group>/vars/0, 1, …`` in order; None when the layer stores no variables group."""
    group = h5.get(f"{group_path}/vars")
    if group is None:
        return None
    keys = list(group)
    if sorted(keys) != sorted(str(i) for i in range(len(keys))):
        raise KeyError(f"{group_path}/vars holds {sorted(keys)[:5]}, not variables 0..{len(keys) - 1}")
    variables = [group[str(i)] for i in range(len(keys))]
    if not all(hasattr(v, "shape") for v in variables):
        raise KeyError(f"{group_path}/vars holds a group where a variable belongs")
    return variables


def read_weights(path: Path, layers: Sequence[tuple[LayerInfo, dict, str]], names: Sequence[str]) -> dict:
    """Each named layer's variables, in Keras order (kernel, bias, …), read with h5py from the archive at
    ``path`` whose config walks to ``layers`` (:func:`walk_layers`); use :meth:`Archive.weights`.

    The whole weights file is checked first, before any data is read: nothing in it may point
    outside it (:func:`storage_problem`), and every conv, Dense and BatchNormalization layer's
    stored shapes must be the ones its config says (:func:`shape_problem`).
    """
    import h5py

    entries = {info.name: entry for info, entry, _ in layers}
    groups = {info.name: group for info, _, group in layers}
    try:
        with zipfile.ZipFile(path) as z:
            raw = read_member(z, "model.weights.h5", path)
        with h5py.File(io.BytesIO(raw), "r") as h5:
            problem = storage_problem(h5)
            if problem:
                raise ConvlensError(
                    f"{path}: model.weights.h5 {problem}; refused (it could read other files): {SAVE_AGAIN}"
                )
            stored = {name: _variables(h5, groups[name]) for name in entries}
            for name, entry in entries.items():
                want = expected_shapes(entry)
                if stored[name] is None and want:
                    raise ConvlensError(f"{path}: no weights stored for layer {name!r}; is the archive complete?")
                problem = shape_problem(entry, [v.shape for v in stored[name] or []])
                if problem:
                    raise ConvlensError(
                        f"{path}: {problem}; the weights do not fit the architecture: {SAVE_AGAIN} again"
                    )
            out = {}
            for name in names:
                if stored[name] is None:
                    raise ConvlensError(f"{path}: no weights stored for layer {name!r}; is the archive complete?")
                out[name] = [np.asarray(v) for v in stored[name]]
    except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile, zlib.error) as e:
        raise ConvlensError(f"{path}: model.weights.h5 is unreadable ({e}); save the model again") from e
    return out


@dataclass(frozen=True)
class Archive:
    """A ``.keras`` archive, its ``config.json`` read and checked once (:func:`check_model_config`): the
    layers (nested ones as ``outer/inner``), the input shape, and the weights, read on demand.

    ``source`` is how errors name the model: the user's file when ``path`` is a converted or staged copy.
    """

    path: Path
    config: dict
    source: str

    @classmethod
    def open(cls, path: Path, source: str | None = None) -> Archive:
        return cls.of(path, read_config(path), source)

    @classmethod
    def of(cls, path: Path, config: dict, source: str | None = None) -> Archive:
        """The archive at ``path`` whose ``config.json`` was already read (e.g. to name a Keras 2 archive)."""
        check_model_config(config, source or str(path))
        return cls(path, config, source or str(path))

    @cached_property
    def walked(self) -> list[tuple[LayerInfo, dict, str]]:
        return walk_layers(self.config)

    @property
    def layers(self) -> list[LayerInfo]:
        """Every layer, in ``model.layers`` order, each nested model's layers right after it."""
        return [info for info, _, _ in self.walked]

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        return input_shape(self.config)

    def check_input(self, sample_shape: tuple[int, ...]) -> tuple[int | None, ...]:
        """The data's samples must fit the model's input (:func:`check_input_shape`)."""
        return check_input_shape(self.config, sample_shape, self.source)

    def resolve(self, specs: Sequence[str | int] | None, key: str, default_kinds: Sequence[str] = CONV_KINDS):
        """Layer addresses for a configured layer list (:func:`resolve_layers`)."""
        return resolve_layers(specs, self.layers, default_kinds, key)

    def weights(self, names: Sequence[str]) -> dict[str, list[np.ndarray]]:
        """Each named layer's variables, after checking the whole weights file (:func:`read_weights`)."""
        return read_weights(self.path, self.walked, names)


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
