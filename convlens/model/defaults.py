"""``feature_maps.layers: null`` made concrete while ``conf/`` is composed: every conv layer of the model.

DVC's ``foreach`` needs a list when it reads ``dvc.yaml``, before any stage runs, so the list is filled in at
composition (``dvc exp run``, ``make params``) into ``feature_maps.each`` by the ``${convlens_layers:}``
resolver: ``feature_maps.layers`` as given, or, when it is ``null``, the conv layers of ``model.path`` (its
config read without TensorFlow, as ``fetch_model`` reads it) or those the model's preset declares
(``model.conv_layers``: the book's model is downloaded later, by ``fetch_model``, which checks them).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from convlens.checks import model_file
from convlens.errors import ConvlensError
from convlens.pipeline.paths import check_inputs_outside_outputs
from convlens.schema import SCHEMA

RESOLVER = "convlens_layers"  # ${convlens_layers:} in conf/config.yaml's feature_maps.each
EACH_KEY = "feature_maps.each"


def model_conv_layers(path: Path) -> list[str]:
    """The conv layers of a ``.keras`` or legacy ``.h5`` model file, nested ones as ``outer/inner``, in order.
    Imported here, where a file is read: ``check_config`` imports this module on every run."""
    from convlens.model.archive import Archive, is_hdf5, read_h5_config
    from convlens.model.layers import CONV_KINDS, check_model_config, resolve_layers, walk_layers

    if is_hdf5(path):
        config = read_h5_config(path)
        check_model_config(config, str(path))
        layers = [info for info, _, _ in walk_layers(config)]
    else:
        layers = Archive.read(path).layers
    return resolve_layers(None, layers, CONV_KINDS)  # at least one: check_model_config refuses a model without


def feature_map_layers(config: Mapping[str, Any], root: Path) -> list[str | int]:
    """``feature_maps.each``: ``feature_maps.layers`` when it is a list, else every conv layer of the model."""
    layers = config["feature_maps"]["layers"]
    if layers is not None:
        return list(layers)
    model = config["model"]
    if model.get("conv_layers") is not None:
        return list(model["conv_layers"])
    if model.get("path") is None:
        raise ConvlensError(
            "feature_maps.layers=null needs the model's conv layers: set model.conv_layers in the model's preset, "
            "or name the layers (feature_maps.layers=[name,…])"
        )
    return list(model_conv_layers(model_file(root, str(model["path"]))))


def derived_from(config: Mapping[str, Any]) -> tuple[str, str]:
    """What :func:`feature_map_layers` read for ``config``, and the words that introduce what it gives now."""
    for key in ("feature_maps.layers", "model.conv_layers"):
        section, leaf = key.split(".")
        if config[section].get(leaf) is not None:
            return key, f"{key} is now"
    return "the model's conv layers (feature_maps.layers: null)", "the model changed since: its conv layers are now"


def recompose_hint(root: Path) -> str:
    """How to recompose ``params.yaml`` as it was composed: the overrides that give all its settings from ``conf/``
    (a stage sees only the keys it declares, so the file is read here). Imported here: an error's path only."""
    from convlens.pipeline.conf_record import overrides_of
    from convlens.pipeline.config import read_params

    try:
        params = read_params(root)
        given = overrides_of(root / "conf", params) if isinstance(params, Mapping) else None
    except ConvlensError:  # unreadable, or conf/ does not compose now: name the way, not the overrides
        given = None
    if given == []:
        return "recompose it: `make params` (conf/ gives every setting it holds)"
    if given is None:
        return (
            "recompose it with the overrides it was composed with (`python -m convlens params KEY=VALUE …` or "
            "`dvc exp run -S KEY=VALUE …` again; `make params` drops -S values)"
        )
    return (
        f"recompose it with the same overrides: `python -m convlens params {' '.join(given)}` or "
        f"`dvc exp run {' '.join(f'-S {o}' for o in given)}` (`make params` drops -S values)"
    )


def check_derived(config: Mapping[str, Any], root: Path) -> None:
    """``feature_maps.each`` is what ``${convlens_layers:}`` gives for ``config`` now, its model file as it is now:
    ``dvc repro`` never recomposes, so a model replaced (``dvc add``) after ``params.yaml`` was composed from the
    old one leaves the old one's layers there. Refused naming the key, what it came from and how to recompose."""
    each, now = config["feature_maps"].get("each"), feature_map_layers(config, root)
    if each is None or list(each) == now:
        return
    source, changed = derived_from(config)
    where = f"{config['model']['path']}: " if source.startswith("the model's") else ""
    raise ConvlensError(
        f"{where}{EACH_KEY} {list(each)} was derived from {source} when params.yaml was composed, and {changed} "
        f"{now}; dvc repro never recomposes params.yaml: {recompose_hint(root)}, then dvc repro"
    )


def register_resolver(root: Path | None = None) -> None:
    """Make ``${convlens_layers:}`` resolve to :func:`feature_map_layers` of the config being composed, a
    relative ``model.path`` read from ``root`` (default: the working directory, where DVC composes). The first of
    ``conf/``'s resolvers, it first refuses a ``model.path`` or ``data.path`` inside ``outputs/`` for what it is,
    before DVC builds its graph (and before a missing file there is called missing)."""
    from omegaconf import OmegaConf

    def each(_root_: Any) -> Any:
        config = OmegaConf.to_container(_root_, resolve=False)
        project = Path.cwd() if root is None else root
        check_inputs_outside_outputs(config, project)
        layers = feature_map_layers(config, project)
        key = EACH_KEY if config["feature_maps"]["layers"] is None else "feature_maps.layers"
        SCHEMA[key](key, layers)  # folder names: checked here, in DVC's process, before any checkout
        return OmegaConf.create(layers)  # a container: DVC resolves the config in place (OmegaConf.resolve)

    OmegaConf.register_new_resolver(RESOLVER, each, replace=True)
