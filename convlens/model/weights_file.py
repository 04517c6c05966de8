"""A ``.keras`` archive's ``model.weights.h5``, read with h5py and checked before any data is used.

Keras stores a layer's variables as ``layers/<class in snake case, numbered>/vars/<i>`` (e.g.
``layers/conv2d_1/vars/0``; a nested model's under its own group): for Conv2D and Dense, var 0 is the
kernel and var 1 the bias.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from convlens.errors import ConvlensError, size_text
from convlens.model.layers import SAVE_AGAIN, LayerInfo

if TYPE_CHECKING:  # numpy (and h5py) only where weights are read: the resolvers import this module in DVC's process
    import numpy as np

WEIGHTS_CAP = 2 << 30  # what model.weights.h5 may hold uncompressed (archive.MEMBER_CAPS), so any one variable too


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


def declared_size_problem(
    datasets: Sequence[tuple[str, tuple[int, ...] | None, np.dtype]], owners: Mapping[str, str], cap: int
) -> str | None:
    """What makes the ``(path, shape, dtype)`` datasets of a weights file declare more than ``cap`` bytes, the
    largest one alone or all of them together (None: they fit); ``owners`` names the layer of each variables group
    (``layers/conv2d`` → ``conv2d``). Keras writes every variable uncompressed inside ``model.weights.h5``, so a real
    file's variables never declare more than the file holds: chunked and compressed, or never written, such datasets
    take a few bytes of the file and terabytes of memory once read."""
    sizes = [
        (0 if shape is None else math.prod(shape) * dtype.itemsize, name, shape, dtype)
        for name, shape, dtype in datasets
    ]
    if not sizes:
        return None
    size, name, shape, dtype = max(sizes, key=lambda item: item[0])
    owner = owners.get(name.rsplit("/vars/", 1)[0])
    largest = f"{name}{'' if owner is None else f' (layer {owner!r})'} as {shape} {dtype}, {size_text(size)}"
    if size > cap:
        return f"declares {largest}, over the {size_text(cap)} limit"
    total = sum(item[0] for item in sizes)
    if total > cap:
        return (
            f"declares {size_text(total)} of variables in all (the largest: {largest}), over the {size_text(cap)} limit"
        )
    return None


def size_problem(h5: object, owners: Mapping[str, str], cap: int = WEIGHTS_CAP) -> str | None:
    """:func:`declared_size_problem` of every dataset in the HDF5 file ``h5``, from their headers alone."""
    import h5py

    datasets: list[tuple[str, tuple[int, ...] | None, np.dtype]] = []
    h5.visititems(
        lambda name, node: datasets.append((name, node.shape, node.dtype)) if isinstance(node, h5py.Dataset) else None
    )
    return declared_size_problem(datasets, owners, cap)


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


def read_weights(
    raw: bytes, path: Path, layers: Sequence[tuple[LayerInfo, dict, str]], names: Sequence[str]
) -> dict[str, list[np.ndarray]]:
    """Each named layer's variables, in Keras order (kernel, bias, …), read with h5py from ``raw``, the
    ``model.weights.h5`` of the archive at ``path`` whose config walks to ``layers``
    (``layers.walk_layers``); use ``Archive.weights``.

    The whole weights file is checked first, before any data is read: nothing in it may point
    outside it (:func:`storage_problem`), no variable nor all of them together may declare more than
    ``WEIGHTS_CAP`` (:func:`size_problem`), and every conv, Dense and BatchNormalization layer's
    stored shapes must be the ones its config says (:func:`shape_problem`).
    """
    import h5py
    import numpy as np

    entries = {info.name: entry for info, entry, _ in layers}
    groups = {info.name: group for info, _, group in layers}
    try:
        with h5py.File(io.BytesIO(raw), "r") as h5:
            problem = storage_problem(h5)
            if problem:
                raise ConvlensError(
                    f"{path}: model.weights.h5 {problem}; refused (it could read other files): {SAVE_AGAIN}"
                )
            problem = size_problem(h5, {group: name for name, group in groups.items()})
            if problem:
                raise ConvlensError(f"{path}: model.weights.h5 {problem}; refused: {SAVE_AGAIN}")
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
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise unreadable_weights(path, e) from e
    return out


def unreadable_weights(path: Path, error: Exception) -> ConvlensError:
    return ConvlensError(f"{path}: model.weights.h5 is unreadable ({error}); save the model again")
