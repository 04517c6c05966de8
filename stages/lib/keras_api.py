"""Which classes and functions are Keras built-ins, read from the installed Keras without importing it.

``fetch_model`` must not start TensorFlow, and importing ``keras`` does. Keras's public API is a set of
generated files (``keras/layers/__init__.py``, …) holding only ``from keras.src… import X as X`` lines;
their names are exactly what Keras's own loader resolves as built-ins (``keras.layers.Conv2D``), so
parsing them with :mod:`ast` gives an allow-list that follows the installed Keras version with no
hand-kept list to go stale, and that cannot include anything Keras itself does not ship.
"""

from __future__ import annotations

import ast
import importlib.util
from functools import cache
from pathlib import Path

from .errors import ConvlensError

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
        raise ConvlensError("Keras is not installed; run `make install` (convlens checks models against it)")
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
