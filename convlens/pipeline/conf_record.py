"""``conf/`` as ``params.yaml`` was last composed from it, so that ``dvc repro`` after a ``conf/`` edit without
``make params`` is refused, not run stale.

``dvc repro`` reads ``params.yaml`` and never recomposes ``conf/``. Every composition that writes ``params.yaml``
(``make params``, a stage run on its own with overrides, ``dvc exp run`` by way of ``check_config``) keeps a
record, ``outputs/composed_conf.yaml`` (git-tracked): the digest of ``conf/``'s files and its settings as composed
without overrides. ``check_config`` depends on ``conf/``: when the files differ from the record's, each setting the
edit changed must hold its new value in ``params.yaml``. Values set with ``-S`` or by hand at keys the edit left
alone stay the user's.
"""

from __future__ import annotations

import hashlib
import logging
import shlex
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from convlens.errors import ConvlensError
from convlens.pipeline import paths
from convlens.pipeline.files import atomic_path, parse_yaml
from convlens.schema import flatten, short

HEADER = (
    "# conf/ as params.yaml was last composed from it (convlens/pipeline/conf_record.py): how dvc repro tells a\n"
    "# conf/ edit that params.yaml lacks. Written by make params, a stage run on its own with overrides, and\n"
    "# check_config (after dvc exp run): commit it with params.yaml and dvc.lock.\n"
)
ABSENT = "(absent)"
CHUNK = 1 << 20

log = logging.getLogger(__name__)


class Record(NamedTuple):
    """The digest of ``conf/``'s files and its settings (flat keys)."""

    digest: str
    settings: dict[str, Any]


def conf_files(conf_dir: Path) -> list[Path]:
    """``conf/``'s YAML files, as Hydra may read them (no editors' swap or backup files, only regular files)."""
    return sorted(p for p in conf_dir.rglob("*.yaml") if p.is_file() and not p.name.startswith("."))


def conf_digest(conf_dir: Path) -> str:
    """sha256 over ``conf/``'s YAML files, names and bytes, read in chunks."""
    sha = hashlib.sha256()
    for path in conf_files(conf_dir):
        rel = path.relative_to(conf_dir).as_posix().encode("utf-8")
        sha.update(len(rel).to_bytes(8, "big") + rel + path.stat().st_size.to_bytes(8, "big"))
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                sha.update(chunk)
    return sha.hexdigest()


def hydra_message(message: str) -> str:
    """Hydra's multi-line error as one line: the problem, the options it lists, not its search path."""
    lines = [line.strip() for line in message.split("Config search path:")[0].splitlines() if line.strip()]
    if lines and lines[0].startswith("Could not override"):  # Hydra suggests +key=…, which no stage would read
        return f"{lines[0]} It is not a key of conf/; params.yaml lists the keys"
    parts: list[str] = []
    for line in lines:
        if parts and parts[-1].endswith(":"):
            parts[-1] += f" {line}"
        elif parts and parts[-1].startswith("Available options") and not line.endswith(":"):
            parts[-1] += f", {line}"
        else:
            parts.append(line)
    return " ".join(p if p.endswith((".", ":")) else f"{p}." for p in parts).rstrip(".")


def unreadable_yaml(conf_dir: Path) -> str | None:
    """The first of ``conf/``'s files that is not UTF-8 YAML of one mapping with unique keys, and why; else None."""

    class Strict(yaml.SafeLoader):
        pass

    def unique(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict:
        keys = [loader.construct_object(k) for k, _ in node.value]
        if len(keys) != len(set(map(repr, keys))):
            raise yaml.constructor.ConstructorError(None, None, "a key appears twice", node.start_mark)
        return loader.construct_mapping(node)

    Strict.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, unique)
    for path in conf_files(conf_dir):
        rel = path.relative_to(conf_dir.parent).as_posix()
        try:
            yaml.load(path.read_text(encoding="utf-8"), Loader=Strict)
        except UnicodeDecodeError as e:
            return f"{rel} is not UTF-8 ({e.reason} at byte {e.start})"
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark is not None else ""
            return f"{rel} is not readable YAML ({where}{getattr(e, 'problem', None) or str(e).splitlines()[0]})"
    return None


def not_composed(conf_dir: Path, why: str) -> ConvlensError:
    """The one line for a ``conf/`` that does not compose: the file that is not YAML where one is, else ``why``."""
    why = unreadable_yaml(conf_dir) or why
    return ConvlensError(f"conf/ does not compose: {why}; mend it (git diff conf/ shows your edits)")


def choices(conf_dir: Path, params: Mapping[str, Any]) -> list[str]:
    """The presets ``params`` was composed with, as Hydra overrides (``analyses=full``): each config group of
    ``conf/`` whose ``name`` in ``params`` is one of its files (groups of one preset have no ``name``)."""
    found = []
    for group in sorted(p.name for p in conf_dir.iterdir() if p.is_dir()):
        name = params.get(group, {}).get("name") if isinstance(params.get(group), Mapping) else None
        if isinstance(name, str) and (conf_dir / group / f"{name}.yaml").is_file():
            found.append(f"{group}={name}")
    return found


def compose_conf(conf_dir: Path, params: Mapping[str, Any]) -> Any:
    """``conf/`` composed by Hydra for the presets ``params`` chose (``-S analyses=full`` among them), without other
    overrides and unresolved; one line where it does not compose."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(str(conf_dir), version_base="1.3"):
            return compose("config", overrides=choices(conf_dir, params))
    except (yaml.YAMLError, UnicodeDecodeError, HydraException, OmegaConfBaseException) as e:
        raise not_composed(conf_dir, hydra_message(str(e))) from None


def settings_of(cfg: Any) -> dict[str, Any]:
    """A composed ``conf/``'s settings: flat keys; interpolations between settings resolved (``${model.path}``),
    what convlens's resolvers derive (``${convlens_layers:}``: read from files, checked) left out, and a mandatory
    value left unset ``???``."""
    from omegaconf import DictConfig, ListConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    raw = flatten(OmegaConf.to_container(cfg, resolve=False))
    settings: dict[str, Any] = {}
    for key, value in raw.items():
        text = interpolation_text(value)
        if "${convlens_" in text:
            continue
        if "${" in text:
            with suppress(OmegaConfBaseException):  # an interpolation of a value left unset, or of a derived one
                value = OmegaConf.select(cfg, key, throw_on_missing=True)
            if isinstance(value, DictConfig | ListConfig):
                value = OmegaConf.to_container(value, resolve=True)
        settings[key] = value
    return settings


def interpolation_text(value: Any) -> str:
    """A setting as written in ``conf/``, where an interpolation (``${…}``) shows."""
    return yaml.safe_dump(value) if isinstance(value, Mapping | list) else str(value)


def conf_settings(conf_dir: Path, params: Mapping[str, Any]) -> dict[str, Any]:
    """``conf/``'s settings (:func:`settings_of`) for the presets ``params`` chose, as Hydra composes them without
    other overrides."""
    return settings_of(compose_conf(conf_dir, params))


def preset_defaults(conf_dir: Path) -> dict[str, str]:
    """The preset ``conf/config.yaml``'s defaults list chooses for each config group (``model: book``)."""
    listed = parse_yaml((conf_dir / "config.yaml").read_text(encoding="utf-8")).get("defaults") or []
    return {group: name for entry in listed if isinstance(entry, Mapping) for group, name in entry.items()}


def override(key: str, value: Any) -> str:
    """``key=value`` as Hydra reads it (a list in flow style), quoted for the shell where it needs it."""
    text = value if isinstance(value, str) else yaml.safe_dump(value, default_flow_style=True, width=10**6)
    return shlex.quote(f"{key}={text.removesuffix(chr(10) + '...' + chr(10)).strip()}")


def overrides_of(conf_dir: Path, params: Mapping[str, Any]) -> list[str]:
    """The Hydra overrides that compose ``params`` from ``conf/`` as it is now: each preset it chose other than
    ``conf/config.yaml``'s, then each setting it holds otherwise than ``conf/`` gives it. What convlens's resolvers
    derive is left out (composing derives it afresh), and so are interpolations (``model.source``)."""
    from omegaconf import OmegaConf

    default = preset_defaults(conf_dir)
    groups = [c for c in choices(conf_dir, params) if default.get(c.split("=", 1)[0]) != c.split("=", 1)[1]]
    cfg = compose_conf(conf_dir, params)
    raw, settings = flatten(OmegaConf.to_container(cfg, resolve=False)), settings_of(cfg)
    given = (
        (k, v)
        for k, v in flatten(params).items()
        if k in settings and "${" not in interpolation_text(raw[k]) and v != settings[k]
    )
    return groups + [override(k, v) for k, v in given]


def read_record(path: Path) -> Record | None:
    """The record, or ``None`` where it is missing or not one."""
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"))  # libyaml: every check_config run reads it
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(data, Mapping) or not isinstance(data.get("conf_sha256"), str):
        return None
    if not isinstance(data.get("settings"), Mapping):
        return None
    return Record(data["conf_sha256"], dict(data["settings"]))


def write_record(path: Path, record: Record) -> None:
    """The record, replaced atomically."""
    body = yaml.safe_dump(
        {"conf_sha256": record.digest, "settings": record.settings}, sort_keys=False, allow_unicode=True
    )
    with atomic_path(path) as tmp:
        tmp.write_text(HEADER + body, encoding="utf-8")


def current_record(root: Path, params: Mapping[str, Any]) -> Record:
    """``conf/`` as it is now, for the presets ``params`` chose: what a composition that writes ``params.yaml``
    records (computed before it writes, so that a ``conf/`` that does not compose changes nothing)."""
    return Record(conf_digest(root / "conf"), conf_settings(root / "conf", params))


def stale_keys(params: Mapping[str, Any], before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """The settings whose value changed from ``before`` to ``after`` (flat) that ``params`` does not hold as
    ``after`` gives it (a setting ``conf/`` added and ``params`` lacks counts)."""
    now = flatten(params)
    changed = (k for k in sorted(before.keys() | after.keys()) if before.get(k, ABSENT) != after.get(k, ABSENT))
    return [k for k in changed if now.get(k, ABSENT) != after.get(k, ABSENT)]


def stale_line(keys: list[str], params: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """One line naming the settings ``params.yaml`` did not take from a ``conf/`` edit, and the fixes."""
    now = flatten(params)
    shown = ", ".join(
        f"{k} {short(now.get(k, ABSENT))} where conf/ now has {short(after.get(k, ABSENT))}" for k in keys[:3]
    )
    more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
    return (
        f"conf/ changed after params.yaml was composed from it: params.yaml has {shown}{more}; dvc repro never "
        "recomposes conf/: run `make params` (it drops values set with -S; keep one with "
        "`python -m convlens params KEY=VALUE`), then dvc repro"
    )


def check_recomposed(
    root: Path, params: Mapping[str, Any], composed_by_dvc: bool = False, record_it: bool = True
) -> None:
    """``check_config``'s step: when ``conf/``'s files differ from the record's, refuse ``params`` if a setting the
    edit changed does not hold its new value (unless ``composed_by_dvc``: ``dvc exp run`` composed it just now),
    then record ``conf/`` (unless not ``record_it``: a stage run on its own only asks). A missing or unreadable
    record is written afresh, with nothing to compare."""
    path = paths.composed_conf_path(root)
    record = read_record(path)
    digest = conf_digest(root / "conf")
    if (record is not None and record.digest == digest) or (record is None and not record_it):
        return
    settings = conf_settings(root / "conf", params)
    if record is None:
        log.warning("%s was missing or unreadable: written anew, so earlier conf/ edits are not checked", path.name)
    elif not composed_by_dvc and (keys := stale_keys(params, record.settings, settings)):
        raise ConvlensError(stale_line(keys, params, settings))
    if record_it:
        write_record(path, Record(digest, settings))
