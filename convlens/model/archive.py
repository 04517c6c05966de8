"""Read a ``.keras`` archive without TensorFlow: a zip of ``config.json`` (the architecture, see
``layers``) and ``model.weights.h5`` (the variables, see ``weights_file``), each member read with a size cap.
``Archive`` is the one object the stages use: config read and checked once, weights on demand.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from convlens.errors import ConvlensError, size_text
from convlens.model.layers import (
    CONV_KINDS,
    SAVE_AGAIN,
    LayerInfo,
    check_input_shape,
    check_model_config,
    config_problem,
    input_layers,
    input_shape,
    not_a_config,
    resolve_layers,
    too_many_layers,
    walk_layers,
)
from convlens.model.weights_file import WEIGHTS_CAP, read_weights, storage_problem, unreadable_weights
from convlens.pipeline import paths

MiB = 1 << 20

if TYPE_CHECKING:  # numpy only in a hint: the resolvers import this module in DVC's own process
    import numpy as np


# The most each archive member may hold uncompressed: a model's config is a few kB, the book's weights 4 MB.
MEMBER_CAPS = {"config.json": 16 * MiB, "metadata.json": 1 * MiB, "model.weights.h5": WEIGHTS_CAP}


OTHER_MEMBER_CAP = 16 * MiB


_size = size_text  # ``n`` bytes, readable: ``16 MiB``, ``1.5 GiB``, ``300 bytes``


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


def parse_config(raw: bytes, source: object, member: str = "config.json") -> dict:
    """``config.json``'s bytes (or a legacy ``.h5``'s ``model_config``) as a checked model config
    (see :func:`config_problem`)."""
    try:
        config = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise not_a_config(source, f"not UTF-8: {e.reason} at byte {e.start}", member) from e
    except RecursionError as e:
        raise not_a_config(source, "nested too deeply to parse", member) from e
    except ValueError as e:  # json.JSONDecodeError, and integers longer than Python converts
        raise not_a_config(source, f"not JSON: {e}", member) from e
    problem = config_problem(config)
    if problem:
        raise not_a_config(source, problem, member)
    if (error := too_many_layers(source, config)) is not None:
        raise error
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
            _check_h5_config_size(h5.attrs.get_id("model_config").get_storage_size(), source)  # before reading it
            raw = h5.attrs["model_config"]
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
        raise ConvlensError(f"{source} is not a readable Keras .h5 model ({e}); {SAVE_AGAIN}") from e
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    if not isinstance(raw, bytes):
        raise not_a_config(source, f"it holds {type(raw).__name__}, not text", "model_config")
    _check_h5_config_size(len(raw), source)  # Keras writes a variable-length string: stored as a 16-byte reference
    return parse_config(raw, source, "model_config")


def _check_h5_config_size(size: int, source: object) -> None:
    """Refuse a ``model_config`` of more than ``H5_CONFIG_CAP`` bytes before JSON parses it."""
    if size > H5_CONFIG_CAP:
        raise _too_big(source, "model_config", _size(size), H5_CONFIG_CAP)


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
    def read(cls, path: Path, source: str | None = None) -> Archive:
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
        """The data's samples must fit the model's input (:func:`check_input_shape`), and be large enough for its
        layers where its input size is open (``layer_config.too_small``: no layer's output empty)."""
        from convlens.model.layer_config import too_small  # numpy: not for the resolvers DVC runs (hydra_plugins)

        want = check_input_shape(self.config, sample_shape, self.source)
        sample = tuple(sample_shape) if len(sample_shape) == len(want) else (*sample_shape, 1)
        problem = too_small(self.config, sample, self.source)
        if problem:
            raise ConvlensError(problem)
        return want

    def resolve(self, specs: Sequence[str | int] | None, key: str, default_kinds: Sequence[str] = CONV_KINDS):
        """Layer addresses for a configured layer list (:func:`resolve_layers`)."""
        return resolve_layers(specs, self.layers, default_kinds, key, input_layers(self.config))

    def weights(self, names: Sequence[str]) -> dict[str, list[np.ndarray]]:
        """Each named layer's variables, after checking the whole weights file (``weights_file.read_weights``)."""
        try:
            with zipfile.ZipFile(self.path) as z:
                raw = read_member(z, "model.weights.h5", self.path)
        except (OSError, KeyError, ValueError, zipfile.BadZipFile, zlib.error) as e:
            raise unreadable_weights(self.path, e) from e
        return read_weights(raw, self.path, self.walked, names)


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


def write_archive(source: Archive, variables: Mapping[str, Sequence[np.ndarray]], dst: Path) -> None:
    """``source``'s architecture with ``variables`` (by layer name) as its weights, saved as Keras saves an uncompiled
    model (no optimizer state, no compile config) by :func:`write_reproducible`'s rules: the same weights give the
    same bytes. Loads in Keras and in :class:`Archive` alike."""
    import io
    from importlib.metadata import version

    import h5py

    config = dict(source.config)
    config.pop("compile_config", None)
    weights = io.BytesIO()
    with h5py.File(weights, "w") as h5:
        for info, _, group in source.walked:
            stored = h5.create_group(f"{group}/vars")
            for i, value in enumerate(variables.get(info.name, ())):
                stored.create_dataset(str(i), data=value)
        h5.create_group("vars")
    members = {
        "config.json": json.dumps(config).encode(),
        "metadata.json": json.dumps({"keras_version": version("keras")}, sort_keys=True).encode(),
        "model.weights.h5": weights.getvalue(),
    }
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in sorted(members.items()):
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)


def open_model(root: Path, role: str) -> Archive:
    """The ``role`` model's archive, checked; errors name it by its path in the project."""
    path = paths.model_path(root, role)
    return Archive.read(path, str(path.relative_to(root)))
