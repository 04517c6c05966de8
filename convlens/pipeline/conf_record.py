"""``conf/`` as last composed, so that ``dvc repro`` after a ``conf/`` edit without ``make params`` is refused.

``dvc repro`` reads ``params.yaml`` and never recomposes ``conf/``. ``check_config`` depends on ``conf/`` and
keeps a record, ``outputs/composed_conf.yaml`` (git-tracked): the digest of ``conf/``'s files and what they
composed to, without overrides. When the files change, the keys whose composed value changed are compared
with ``params.yaml``: a key that still holds the earlier value was not recomposed. Values set with ``-S`` or
by hand at other keys are left alone: only what the ``conf/`` edit changed is asked of ``params.yaml``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from omegaconf import OmegaConf

from convlens.errors import ConvlensError
from convlens.pipeline import paths
from convlens.pipeline.config import compose, short
from convlens.pipeline.files import atomic_path
from convlens.schema import flatten

HEADER = (
    "# conf/ as composed without overrides when check_config last ran (convlens/pipeline/conf_record.py):\n"
    "# how dvc repro tells a conf/ edit that params.yaml lacks. Written by the pipeline; commit it with dvc.lock.\n"
)
ABSENT = "(absent)"


class Record(NamedTuple):
    """The digest of ``conf/``'s files and their composition."""

    digest: str
    composed: dict[str, Any]


def conf_digest(conf_dir: Path) -> str:
    """sha256 over ``conf/``'s YAML files, names and bytes (not editors' swap or backup files)."""
    sha = hashlib.sha256()
    for path in sorted(p for p in conf_dir.rglob("*.yaml") if p.is_file() and not p.name.startswith(".")):
        rel = path.relative_to(conf_dir).as_posix().encode("utf-8")
        data = path.read_bytes()
        sha.update(len(rel).to_bytes(8, "big") + rel + len(data).to_bytes(8, "big") + data)
    return sha.hexdigest()


def read_record(path: Path) -> Record | None:
    """The record, or ``None`` where it is missing or not one (then nothing can be compared: it is written anew)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(data, Mapping) or not isinstance(data.get("conf_sha256"), str):
        return None
    if not isinstance(data.get("composed"), Mapping):
        return None
    return Record(data["conf_sha256"], dict(data["composed"]))


def write_record(path: Path, record: Record) -> None:
    """The record, replaced atomically."""
    body = yaml.safe_dump(
        {"conf_sha256": record.digest, "composed": record.composed}, sort_keys=False, allow_unicode=True
    )
    with atomic_path(path) as tmp:
        tmp.write_text(HEADER + body, encoding="utf-8")


def stale_keys(params: Mapping[str, Any], before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """The flat keys whose composed value changed from ``before`` to ``after`` while ``params`` still holds the
    ``before`` one (a key ``conf/`` added and ``params`` lacks counts: it too was not recomposed)."""
    now, old, new = flatten(params), flatten(before), flatten(after)
    changed = (k for k in sorted(old.keys() | new.keys()) if old.get(k, ABSENT) != new.get(k, ABSENT))
    return [k for k in changed if now.get(k, ABSENT) == old.get(k, ABSENT)]


def stale_line(keys: list[str], before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """One line naming the keys ``params.yaml`` did not take from a ``conf/`` edit, and the fix."""
    old, new = flatten(before), flatten(after)
    shown = ", ".join(f"{k} ({short(old.get(k, ABSENT))}, conf/ now {short(new.get(k, ABSENT))})" for k in keys[:3])
    more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
    return (
        f"conf/ changed, but params.yaml still holds its earlier {shown}{more}: dvc repro never recomposes conf/; "
        "run `make params` (or `dvc exp run`, which composes it), then dvc repro"
    )


def refuse_stale(params: Mapping[str, Any], record: Record | None, digest: str, composed: Mapping[str, Any]) -> None:
    """Refuse ``params`` when the ``conf/`` edit from ``record`` to ``composed`` (``digest``) did not reach it."""
    if record is None or record.digest == digest:
        return
    keys = stale_keys(params, record.composed, composed)
    if keys:
        raise ConvlensError(stale_line(keys, record.composed, composed))


def check_recomposed(root: Path, params: Mapping[str, Any], composed_by_dvc: bool = False) -> None:
    """``check_config``'s step: when ``conf/``'s files changed since the record, compose them (Hydra, once),
    refuse ``params`` if it lacks the edit (unless ``composed_by_dvc``: ``dvc exp run`` composed it just now),
    and record the new composition."""
    path = paths.composed_conf_path(root)
    record = read_record(path)
    digest = conf_digest(root / "conf")
    if record is not None and record.digest == digest:
        return
    try:
        composed = OmegaConf.to_container(compose(root), resolve=True)
    except ConvlensError as e:
        raise ConvlensError(f"conf/ does not compose: {e}") from None
    if not composed_by_dvc:
        refuse_stale(params, record, digest, composed)
    write_record(path, Record(digest, composed))
