"""Checks of single config values: each ``check(key, value)`` raises one ``ConvlensError`` line naming the key,
the value and a valid example. ``schema.SCHEMA`` assigns one to every key; a few (``is_plain_name``,
``layer_item``, ``model_file``) are also used where a value becomes a path.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from convlens.errors import ConvlensError

Check = Callable[[str, Any], None]


# A name that becomes one path component under outputs/ (a layer) or the download cache (a file):
# letters (any script), digits, "_", ".", "-", not starting with "." or "-": never "", ".", "..", "~" or a path;
# at most MAX_NAME characters (most file systems hold 255 bytes in a file name, and prefixes are added to it).
NAME = re.compile(r"\w[\w.\-]*")
MAX_NAME = 128


SHA256 = re.compile(r"[0-9a-f]{64}")

# Hydra's mark of a value conf/ leaves to the user (``model.path: ???`` in conf/model/local.yaml).
MISSING = "???"
MODEL_PATH_UNSET = "model=local reads model.path, which is not set; set it: -S model=local -S model.path=FILE"


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


def _bound(x: float) -> str:
    """A bound as written in a config: ``1000000`` for 1e6, ``0.9`` for 0.9."""
    return str(int(x)) if float(x).is_integer() else repr(x)


def number_range(low: float, high: float, low_open: bool = False, high_open: bool = False) -> str:
    """``in 0..1``, ``above 0 and at most 0.9``, ``at least 0 and below 1``, ``above 0 and below 1``: both bounds,
    each said as open or closed."""
    if not low_open and not high_open:
        return f"in {_bound(low)}..{_bound(high)}"
    lower = f"above {_bound(low)}" if low_open else f"at least {_bound(low)}"
    upper = f"below {_bound(high)}" if high_open else f"at most {_bound(high)}"
    return f"{lower} and {upper}"


def number(
    low: float, high: float, example: str | None = None, low_open: bool = False, high_open: bool = False
) -> Check:
    """A finite number in [low, high] (``low_open``: above ``low``; ``high_open``: below ``high``)."""

    def check(key: str, value: Any) -> None:
        ok = _is_number(value) and math.isfinite(value) and (value > low if low_open else value >= low)
        if not ok or (value >= high if high_open else value > high):
            raise _fail(key, value, f"a finite number {number_range(low, high, low_open, high_open)}", example)

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
    """A name that can become one file or folder name: never a path, ``..``, ``~``, empty or too long."""
    return too_long(value) is None and _is_plain(value)


def _is_plain(value: object) -> bool:
    return isinstance(value, str) and NAME.fullmatch(value) is not None and ".." not in value


def too_long(value: object) -> int | None:
    """The length of a name that would be plain but for being over :data:`MAX_NAME` characters (else None)."""
    return len(value) if isinstance(value, str) and len(value) > MAX_NAME and _is_plain(value) else None


def too_long_reason(subject: str, length: int, what: str = "name") -> str:
    """``<subject> is N characters long, over the 128 a <what> may have``: the real reason, not "a path"."""
    return (
        f"{subject} is {length} characters long, over the {MAX_NAME} a {what} may have "
        "(it becomes a file or folder name)"
    )


def safe_name(key: str, value: Any) -> None:
    """A name that becomes one file or folder name (:func:`is_plain_name`)."""
    if (length := too_long(value)) is not None:
        raise ConvlensError(f"{too_long_reason(key, length)}; shorten it")
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
    parts = value.split("/") if isinstance(value, str) else []
    if all(map(_is_plain, parts)) and (lengths := [n for n in map(too_long, parts) if n is not None]):
        subject = key if len(parts) == 1 else f"a layer name in {key}"
        raise ConvlensError(
            f"{too_long_reason(subject, max(lengths), 'layer name')}; name one of the model's layers, e.g. {key}=conv2d"
        )
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


def items(
    inner: Check, example: str, min_len: int = 1, unique: bool = True, max_len: tuple[int, str] | None = None
) -> Check:
    """A list of ``inner`` values, at least ``min_len`` long, without repeats (``unique``); ``max_len``: the most
    it may hold and why."""

    def check(key: str, value: Any) -> None:
        if not isinstance(value, list | tuple) or len(value) < min_len:
            raise _fail(key, value, f"a list of at least {min_len}", f"'{example}'")
        if max_len is not None and len(value) > max_len[0]:
            raise ConvlensError(
                f"{key} must be a list of at most {max_len[0]} ({max_len[1]}), got {len(value)} entries; "
                f"e.g. {key}='{example}'"
            )
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
    if value == MISSING:
        raise ConvlensError(MODEL_PATH_UNSET)
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise _fail(key, value, "null (the book's model) or the path of your .keras file")
    if value.startswith("~"):
        raise _fail(key, value, "a path without ~ (DVC does not expand it)", "/home/you/model.keras")


# Colormaps known without importing matplotlib (0.1 s in DVC's process while it composes conf/): the presets' and the
# docs' own; any other name is looked up in matplotlib (a test keeps each of these a matplotlib colormap).
COMMON_COLORMAPS = frozenset(
    f"{name}{tail}"
    for name in ("gray", "viridis", "magma", "plasma", "inferno", "cividis", "jet", "coolwarm", "RdBu", "bwr", "hot")
    for tail in ("", "_r")
)


def colormap(key: str, value: Any) -> None:
    if isinstance(value, str) and value in COMMON_COLORMAPS:
        return
    import matplotlib as mpl

    if not isinstance(value, str) or value not in mpl.colormaps:
        raise _fail(key, value, "a matplotlib colormap name, e.g. viridis, gray_r, magma (see matplotlib.colormaps)")


def data_files(key: str, value: Any) -> None:
    """``data.files``: role → ``{name, sha256}`` (which roles a ``data.format`` needs: ``schema._cross_checks``)."""
    if not isinstance(value, Mapping) or not all(_is_plain(part) for part in value):
        raise _fail(key, value, "a mapping of file roles (e.g. train_images, archive) to {name, sha256}")
    for part, spec in value.items():
        if not isinstance(spec, Mapping) or set(spec) - {"name", "sha256"}:
            raise _fail(f"{key}.{part}", spec, "a mapping with name and sha256")
        safe_name(f"{key}.{part}.name", spec.get("name"))
        text(SHA256, "64 lowercase hex digits (the file's sha256)")(f"{key}.{part}.sha256", spec.get("sha256"))


# Where DVC runs a queued (or --temp) experiment: a clone of the commit with the DVC-tracked files checked out, so a
# file that neither git nor DVC tracks is not there, however plainly it sits in the workspace.
EXPERIMENT_COPY = (".dvc", "tmp", "exps")


def in_experiment_copy(path: Path) -> bool:
    """Whether ``path`` lies in DVC's copy of the project for a queued experiment (under ``.dvc/tmp/exps/``)."""
    parts = Path(os.path.abspath(path)).parts
    n = len(EXPERIMENT_COPY)
    return any(parts[i : i + n] == EXPERIMENT_COPY for i in range(len(parts) - n + 1))


def missing_path(key: str, path: Path, value: str, want: str) -> ConvlensError:
    """``key`` (``model.path``, ``data.path``) names no file: where that is a queued experiment's copy, the line
    says why the file the workspace has is not there, and the fix."""
    if not in_experiment_copy(path):
        return ConvlensError(f"{key} {path} does not exist; point it at {want}")
    if Path(os.path.normpath(value)).parts[:1] == ("..",):  # outside the project: DVC cannot track it there
        return ConvlensError(
            f"{key} {value} lies outside the project, which a queued experiment's copy does not hold: give an "
            f"absolute {key}, or move the file into the project, track it with dvc add and queue again"
        )
    return ConvlensError(
        f"{key} {path} does not exist in this queued experiment's copy of the project: a queued run sees only "
        f"git- and DVC-tracked files; track it with dvc add {value} and queue again, or give an absolute {key}"
    )


def model_file(root: Path, value: str) -> Path:
    """``model.path`` (relative to the project root, as DVC reads it as a dependency) as a regular file.

    Checked with ``os.stat`` before anything opens it: a FIFO would block, ``/dev/zero`` never ends.
    """
    if value == MISSING:  # DVC resolves conf/ without Hydra's check of mandatory values
        raise ConvlensError(MODEL_PATH_UNSET)
    path = root / value
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise missing_path("model.path", path, value, "a .keras file") from e
    if stat.S_ISREG(mode):
        return path
    if stat.S_ISDIR(mode):
        raise ConvlensError(f"model.path {path} is a directory; point it at a .keras file")
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
    kind = next((text for test, text in (*kinds, (stat.S_ISSOCK, "a socket")) if test(mode)), "not a regular file")
    raise ConvlensError(f"model.path {path} is {kind}, not a regular file; point it at a .keras file")


def data_path(key: str, value: Any) -> None:
    """``data.path`` and ``data.source``: a file or folder the user hands us (read and checked by ``fetch_data``,
    never written); also a DVC dependency, and DVC does not expand ``~``."""
    if value is None:
        return
    if not isinstance(value, str) or not value.strip() or "\0" in value or value == "???":
        raise _fail(key, value, "null or the path of your data file or folder")
    if value.startswith("~"):
        raise _fail(key, value, "a path without ~ (DVC does not expand it)", "/home/you/data.npz")


def data_location(root: Path, value: str, directory: bool) -> Path:
    """``data.path`` (relative to the project root, as DVC reads it) as a regular file, or a folder when
    ``directory``; checked with ``os.stat`` before anything opens it (a FIFO would block)."""
    path = root / value
    want = "a folder of class folders" if directory else "an .npz or .tar.gz file"
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise missing_path("data.path", path, value, want) from e
    if stat.S_ISDIR(mode) if directory else stat.S_ISREG(mode):
        return path
    if stat.S_ISDIR(mode):
        raise ConvlensError(
            f"data.path {path} is a folder, not a file; point it at the .npz or .tar.gz file itself "
            "(-S data.path=DIR/FILE.npz), or read a folder of class folders with -S data=folder"
        )
    kind = "a directory" if stat.S_ISDIR(mode) else "a regular file" if stat.S_ISREG(mode) else "not a regular file"
    raise ConvlensError(f"data.path {path} is {kind}; point it at {want}")


def image_size(high: int) -> Check:
    """``[H, W]``: two integers in 1..``high`` (``data.resize``)."""

    def check(key: str, value: Any) -> None:
        if (
            not isinstance(value, list | tuple)
            or len(value) != 2
            or not all(_is_int(v) and 1 <= v <= high for v in value)
        ):
            raise _fail(key, value, f"[H, W], two integers in 1..{high}", "[32,32]")

    return check
