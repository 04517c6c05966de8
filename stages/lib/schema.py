"""The whole config described once: every key of ``params.yaml``, its type and its range.

One table (:data:`SCHEMA`) says what each key may hold; :func:`check_config` checks a config against it
and raises one :class:`ConvlensError` line naming the key, the value and a valid example. It runs when
``conf/`` is composed (``make params``, a standalone stage's overrides), in the ``check_config`` stage
that heads the DVC pipeline (so a bad value stops ``dvc repro`` / ``dvc exp run`` before DVC deletes any
stage's outputs), and at the start of every stage for the keys it reads.

Checks that need the model or the data (a layer name the model lacks, a sample index beyond the split)
are made by the stage that has them, with the same kind of line.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import ConvlensError

Check = Callable[[str, Any], None]

SPLITS = ("train", "test")
INPUT_CHANNEL_MODES = ("first", "mean", "all")
# A name that becomes one path component under outputs/ (a layer) or the download cache (a file):
# letters (any script), digits, "_", ".", "-", not starting with "." or "-": never "", ".", "..", "~" or a path.
NAME = re.compile(r"\w[\w.\-]{0,127}")
SHA256 = re.compile(r"[0-9a-f]{64}")
RESOLVER = "convlens_checked"  # ${convlens_checked:} in conf/config.yaml, see register_resolver
CHECKED = "conf/ passed stages/lib/schema.py"
MAX_BATCH = 100_000
MAX_DPI = 600
MAX_COLUMNS = 1024
MAX_BINS = 10_000


def _fail(key: str, value: Any, want: str, example: str | None = None) -> ConvlensError:
    """``key must be <want>, got <value>; e.g. key=<example>``: what is wrong, then what to write."""
    hint = f"; e.g. {key}={example}" if example is not None else ""
    return ConvlensError(f"{key} must be {want}, got {value!r}{hint}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def integer(low: int, high: int, example: str | None = None) -> Check:
    def check(key: str, value: Any) -> None:
        if not _is_int(value) or not low <= value <= high:
            raise _fail(key, value, f"an integer in {low}..{high}", example)

    return check


def number(low: float, high: float, example: str | None = None, low_open: bool = False) -> Check:
    """A finite number in [low, high] (``low_open``: above ``low``)."""

    def check(key: str, value: Any) -> None:
        ok = _is_number(value) and math.isfinite(value) and (value > low if low_open else value >= low)
        if not ok or value > high:
            bound = f"above {low}" if low_open else f"in {low}..{high}"
            raise _fail(key, value, f"a finite number {bound}", example)

    return check


def choice(options: Sequence[str]) -> Check:
    def check(key: str, value: Any) -> None:
        if value not in options:
            raise _fail(key, value, f"one of {', '.join(options)}")

    return check


def text(pattern: re.Pattern[str] | None = None, want: str = "a non-empty string") -> Check:
    def check(key: str, value: Any) -> None:
        if not isinstance(value, str) or not value.strip() or (pattern is not None and not pattern.fullmatch(value)):
            raise _fail(key, value, want)

    return check


def optional(inner: Check) -> Check:
    def check(key: str, value: Any) -> None:
        if value is not None:
            inner(key, value)

    return check


def url(key: str, value: Any) -> None:
    if not isinstance(value, str) or not re.fullmatch(r"https?://[^\s]+", value):
        raise _fail(key, value, "an http(s) URL")


def is_plain_name(value: object) -> bool:
    """A name that can become one file or folder name: never a path, ``..``, ``~`` or empty."""
    return isinstance(value, str) and NAME.fullmatch(value) is not None and ".." not in value


def safe_name(key: str, value: Any) -> None:
    """A name that becomes one file or folder name (:func:`is_plain_name`)."""
    if not is_plain_name(value):
        raise _fail(key, value, "a plain name (letters, digits, _ . -; not a path, '..' or empty)")


def is_layer_address(value: object) -> bool:
    """A layer name, or ``outer/inner`` for a nested model's layer: plain names joined by ``/`` (Keras forbids
    ``/`` in a layer's name), never absolute, ``..`` or empty."""
    return isinstance(value, str) and all(is_plain_name(part) for part in value.split("/"))


def layer_spec(key: str, value: Any) -> None:
    """A layer by index into ``model.layers`` or by address; it names a folder under ``outputs/``."""
    if _is_int(value):
        if value < 0:
            raise _fail(key, value, "a layer index ≥ 0 or a layer name")
        return
    if not is_layer_address(value):
        raise _fail(
            key, value, "a layer name (letters, digits, _ . -), outer/inner for a nested model's layer, or an index ≥ 0"
        )


def folder_layers(key: str, value: Any) -> None:
    """``feature_maps.layers``: each entry is a folder ``outputs/feature_maps/<entry>``, so no entry may be a
    nested model that another entry looks inside (DVC refuses overlapping outputs)."""
    items(layer_spec, "[conv2d,conv2d_1]")(key, value)
    names = {str(item) for item in value}
    for item in names:
        parts = item.split("/")
        outer = next(("/".join(parts[:i]) for i in range(1, len(parts)) if "/".join(parts[:i]) in names), None)
        if outer is not None:
            raise ConvlensError(
                f"{key} lists both {outer!r} and {item!r}, a layer inside it; their folders would overlap: "
                "list the nested model's layers without the model"
            )


def layer_item(item: str) -> str | int:
    """A ``feature_maps.layers`` entry as DVC passes it on the command line: an index (``"0"``) or a name."""
    return int(item) if item.isdigit() else item


def items(inner: Check, example: str, min_len: int = 1, unique: bool = True) -> Check:
    """A list of ``inner`` values, at least ``min_len`` long, without repeats (``unique``)."""

    def check(key: str, value: Any) -> None:
        if not isinstance(value, list | tuple) or len(value) < min_len:
            raise _fail(key, value, f"a list of at least {min_len}", f"'{example}'")
        for i, item in enumerate(value):
            inner(f"{key}[{i}]", item)
        if unique:
            seen: set[str] = set()
            for item in value:
                if str(item) in seen:
                    raise ConvlensError(f"{key} lists {item!r} twice; list each once, e.g. {key}='{example}'")
                seen.add(str(item))

    return check


def model_path(key: str, value: Any) -> None:
    """``model.path``: a file the user hands us; read (and checked) by ``fetch_model``, never written.

    It is also a DVC dependency, and DVC does not expand ``~``.
    """
    if value is None:
        return
    if not isinstance(value, str) or not value.strip() or "\0" in value or value == "???":
        raise _fail(key, value, "null (the book's model) or the path of your .keras file")
    if value.startswith("~"):
        raise _fail(key, value, "a path without ~ (DVC does not expand it)", "/home/you/model.keras")


def colormap(key: str, value: Any) -> None:
    import matplotlib as mpl

    if not isinstance(value, str) or value not in mpl.colormaps:
        raise _fail(key, value, "a matplotlib colormap name, e.g. viridis, gray_r, magma (see matplotlib.colormaps)")


def data_files(key: str, value: Any) -> None:
    want = {"train_images", "train_labels", "test_images", "test_labels"}
    if not isinstance(value, Mapping) or set(value) != want:
        raise _fail(key, value, f"a mapping with exactly {', '.join(sorted(want))}")
    for part, spec in value.items():
        if not isinstance(spec, Mapping) or set(spec) - {"name", "sha256"}:
            raise _fail(f"{key}.{part}", spec, "a mapping with name and sha256")
        safe_name(f"{key}.{part}.name", spec.get("name"))
        text(SHA256, "64 lowercase hex digits (the file's sha256)")(f"{key}.{part}.sha256", spec.get("sha256"))


SCHEMA: dict[str, Check] = {
    "model.name": safe_name,
    "model.file": optional(safe_name),
    "model.url": optional(url),
    "model.sha256": optional(text(SHA256, "64 lowercase hex digits (the file's sha256)")),
    "model.path": model_path,
    "model.source": model_path,
    "data.subdir": safe_name,
    "data.urls": items(url, "[https://host/path/]", min_len=0),
    "data.files": data_files,
    "data.classes": items(text(), "[T-shirt/top, Trouser]"),
    "untrained.seed": integer(0, 2**32 - 1, "42"),
    "input.scale": number(0, 1e9, "255", low_open=True),
    "samples.split": choice(SPLITS),
    "samples.indices": items(integer(0, 2**31 - 1), "[0,1]"),
    "weights.layers": optional(items(layer_spec, "[conv2d,conv2d_1]")),
    "weights.percentiles": items(number(0, 100), "[5,50,95]"),
    "feature_maps.layers": folder_layers,
    "feature_maps.batch_size": integer(1, MAX_BATCH, "256"),
    "dataset.split": choice(SPLITS),
    "dataset.limit": optional(integer(1, 2**31 - 1, "1000")),
    "dataset.layers": optional(items(layer_spec, "[conv2d,max_pooling2d]")),
    "dataset.batch_size": integer(1, MAX_BATCH, "500"),
    "render.dpi": integer(10, MAX_DPI, "100"),
    "render.hist_bins": integer(1, MAX_BINS, "10"),
    "render.filter_cmap": colormap,
    "render.filter_vmin": number(-1e6, 1e6, "-0.5"),
    "render.filter_vmax": number(-1e6, 1e6, "0.5"),
    "render.filter_columns": integer(1, MAX_COLUMNS, "16"),
    "render.input_channels": choice(INPUT_CHANNEL_MODES),
    "render.map_cmap": colormap,
    "render.map_columns": optional(integer(1, MAX_COLUMNS, "8")),
    "render.sample_cmap": colormap,
    "render.heatmap_cmap": colormap,
    "checked": choice([CHECKED]),
}


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``, stopping at keys the schema describes as a whole."""
    flat: dict[str, Any] = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and key not in SCHEMA:
            flat.update(flatten(v, f"{key}."))
        else:
            flat[key] = v
    return flat


def _cross_checks(flat: Mapping[str, Any]) -> None:
    if flat.get("model.path") is not None and "model.source" in flat and flat["model.source"] != flat["model.path"]:
        raise ConvlensError(
            f"model.source ({flat['model.source']}) must be model.path ({flat['model.path']}): it is the file "
            "fetch_model depends on; leave it as conf/model/local.yaml sets it (${model.path})"
        )
    if flat.get("model.path") is None and flat.get("model.url") is None and "model.url" in flat:
        raise ConvlensError("the model has neither model.path nor model.url; use -S model=book or model.path=FILE")
    if "render.filter_vmin" in flat and "render.filter_vmax" in flat:
        vmin, vmax = flat["render.filter_vmin"], flat["render.filter_vmax"]
        if vmin >= vmax:
            raise ConvlensError(f"render.filter_vmin ({vmin}) must be below render.filter_vmax ({vmax})")


def check_config(cfg: Mapping[str, Any], complete: bool = True) -> None:
    """Check ``cfg`` against :data:`SCHEMA`: unknown keys, wrong types, ranges, names that would be paths.

    ``complete``: every key of the schema must be present (the whole ``params.yaml``); a stage's own cut
    of the config passes ``False``. Values still holding an interpolation (``${…}``, while Hydra composes)
    are checked once resolved.
    """
    if not isinstance(cfg, Mapping):
        raise ConvlensError(f"the config must be a mapping of keys, got {type(cfg).__name__}; see params.yaml")
    every = flatten(cfg)
    flat = {k: v for k, v in every.items() if not (isinstance(v, str) and "${" in v)}
    unknown = [k for k in every if k not in SCHEMA]
    if unknown:
        raise ConvlensError(
            f"unknown config key {unknown[0]}; the keys are those of conf/ (see README 'Changing the config')"
        )
    if complete:
        missing = [k for k in SCHEMA if k not in every]
        if missing:
            raise ConvlensError(f"config key {missing[0]} is missing; recompose params.yaml with `make params`")
    for key, value in flat.items():
        SCHEMA[key](key, value)
    _cross_checks(flat)


def model_file(root: Path, value: str) -> Path:
    """``model.path`` (relative to the project root, as DVC reads it as a dependency) as a regular file.

    Checked with ``os.stat`` before anything opens it: a FIFO would block, ``/dev/zero`` never ends.
    """
    path = root / value
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise ConvlensError(f"model.path {path} does not exist; point it at a .keras file") from e
    if stat.S_ISREG(mode):
        return path
    if stat.S_ISDIR(mode):
        raise ConvlensError(f"model.path {path} is a directory; point it at a .keras file")
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
    kind = next((text for test, text in (*kinds, (stat.S_ISSOCK, "a socket")) if test(mode)), "not a regular file")
    raise ConvlensError(f"model.path {path} is {kind}, not a regular file; point it at a .keras file")


def register_resolver() -> None:
    """Make ``${convlens_checked:}`` (``checked`` in ``conf/config.yaml``) check the whole config while Hydra
    composes it. DVC composes ``conf/`` on every ``dvc exp run`` and, right after, checks out every stage's
    outputs with force, deleting those it has no hash for: a layer named ``../../x`` would be gone before
    any stage runs. Hydra's plugin scan imports ``hydra_plugins/convlens.py`` in DVC's own process (DVC's
    ``hydra.plugins_path`` is the project root), which calls this, so a bad value fails the composition.
    """
    from omegaconf import OmegaConf

    def checked(_root_: Any) -> str:
        check_config(OmegaConf.to_container(_root_, resolve=False))
        return CHECKED

    OmegaConf.register_new_resolver(RESOLVER, checked, replace=True)
