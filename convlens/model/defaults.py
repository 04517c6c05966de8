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
from convlens.model.archive import Archive, is_hdf5, read_h5_config
from convlens.model.layers import CONV_KINDS, check_model_config, resolve_layers, walk_layers
from convlens.schema import SCHEMA

RESOLVER = "convlens_layers"  # ${convlens_layers:} in conf/config.yaml's feature_maps.each
EACH_KEY = "feature_maps.each"


def model_conv_layers(path: Path) -> list[str]:
    """The conv layers of a ``.keras`` or legacy ``.h5`` model file, nested ones as ``outer/inner``, in order."""
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


def register_resolver(root: Path | None = None) -> None:
    """Make ``${convlens_layers:}`` resolve to :func:`feature_map_layers` of the config being composed, a
    relative ``model.path`` read from ``root`` (default: the working directory, where DVC composes)."""
    from omegaconf import OmegaConf

    def each(_root_: Any) -> Any:
        config = OmegaConf.to_container(_root_, resolve=False)
        layers = feature_map_layers(config, Path.cwd() if root is None else root)
        key = EACH_KEY if config["feature_maps"]["layers"] is None else "feature_maps.layers"
        SCHEMA[key](key, layers)  # folder names: checked here, in DVC's process, before any checkout
        return OmegaConf.create(layers)  # a container: DVC resolves the config in place (OmegaConf.resolve)

    OmegaConf.register_new_resolver(RESOLVER, each, replace=True)
