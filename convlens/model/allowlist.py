"""What a model config may name: Keras built-ins only, and no code.

Read from the installed Keras without importing it (importing ``keras`` starts TensorFlow). A config that
names a class or function from outside Keras, a ``Lambda`` layer, a serialized Python lambda or a built-in
layer that runs foreign code (``TFSMLayer`` …) is refused before anything loads it.
"""

from __future__ import annotations

import ast
import importlib.util
from functools import cache
from pathlib import Path

from convlens.errors import ConvlensError

UNSAFE_LAYERS = frozenset({"Lambda", "TFOpLambda"})


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
