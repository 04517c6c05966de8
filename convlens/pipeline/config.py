"""Config for a stage: always ``params.yaml``, composed from ``conf/`` (by ``dvc exp run``, ``make params``,
or a standalone stage's overrides) and checked against ``schema``.

A stage sees only the params its ``dvc.yaml`` entry declares: reading any other key fails, so
``dvc.yaml`` cannot drift from the code.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from convlens.checks import MODEL_PATH_UNSET, layer_item, layer_spec
from convlens.errors import ConvlensError
from convlens.pipeline.conf_record import (
    check_recomposed,
    current_record,
    hydra_message,
    not_composed,
    unreadable_yaml,
    write_record,
)
from convlens.pipeline.files import atomic_path, parse_yaml
from convlens.pipeline.interrupt import INTERRUPTED, interrupted_line, stage_label
from convlens.pipeline.paths import composed_conf_path
from convlens.pipeline.repo_lock import check_params_unchanged, repository_lock
from convlens.pipeline.upstream import record_alone, stale_line, standalone_stale
from convlens.schema import check_config, flatten, short

STAGE_FILE = "dvc.yaml"
PARAMS_FILE = "params.yaml"


def read_yaml(path: Path) -> Any:
    """A YAML file (``parse_yaml``: by libyaml where PyYAML has it)."""
    return parse_yaml(path.read_text(encoding="utf-8"))


def project_root() -> Path:
    """The project root: the working directory or the nearest parent holding ``conf/`` and ``dvc.yaml``.

    Not ``$DVC_ROOT``: in a queued experiment it names the original repository, while the stage runs
    (and must write) in the experiment's own workspace, its working directory.
    """
    cwd = Path.cwd().resolve()
    for root in (cwd, *cwd.parents):
        if (root / "conf").is_dir() and (root / STAGE_FILE).is_file():
            return root
    raise ConvlensError(f"{cwd} is not inside a convlens project (no conf/ and dvc.yaml); run from the project root")


def origin_root(root: Path) -> Path:
    """The repository a DVC experiment workspace was cloned from (``<repo>/.dvc/tmp/exps/…``), else ``root``.

    Queued experiments run in such a clone, without the repository's git-ignored files; inputs that
    live beside the repository (``../shared/mirror``, a local model) are looked up from the origin too.
    """
    parts = root.parts
    for i in range(len(parts) - 3):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    return root


def stage_definition(root: Path, stage: str) -> dict:
    """``dvc.yaml``'s entry for ``stage`` (a ``foreach`` stage's ``do`` block for ``name`` or ``name@item``)."""
    stages = read_yaml(root / STAGE_FILE)["stages"]
    name = stage.split("@", 1)[0]
    if name not in stages:
        raise ConvlensError(f"stage {name!r} is not in {STAGE_FILE}")
    return stages[name].get("do", stages[name])


def declared_params(root: Path, stage: str) -> list[str]:
    """The params ``dvc.yaml`` declares for ``stage``."""
    return [p for p in stage_definition(root, stage).get("params", []) if isinstance(p, str)]


def compose(root: Path, overrides: Sequence[str] = ()) -> DictConfig:
    """Compose ``conf/`` with Hydra overrides, as ``dvc exp run`` does into ``params.yaml``, and check it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from hydra_plugins.convlens import register  # the resolvers conf/ uses, as DVC's process has them

    try:
        with initialize_config_dir(str(root / "conf"), version_base="1.3"):
            register(root)  # after Hydra's plugin scan, whose import of hydra_plugins registers them for the cwd
            cfg = hydra_compose("config", overrides=list(overrides))
        params = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as e:
        if e.full_key in ("model.path", "model.source"):  # source is ${model.path}
            raise ConvlensError(MODEL_PATH_UNSET) from e
        raise ConvlensError(f"{e.full_key} must be set, e.g. {e.full_key}=VALUE") from e
    except (HydraException, OmegaConfBaseException) as e:
        cause: BaseException | None = e
        while cause is not None and not isinstance(cause, ConvlensError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:  # raised by the schema's resolver while composing
            raise ConvlensError(str(cause)) from None
        if overrides and unreadable_yaml(root / "conf") is None:
            raise ConvlensError(f"bad config override: {hydra_message(str(e))}") from e
        raise not_composed(root / "conf", hydra_message(str(e))) from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:  # a hand-edited conf/ file
        raise not_composed(root / "conf", str(e).splitlines()[0]) from None
    check_config(params)
    return OmegaConf.create(params)


def write_params(root: Path, cfg: DictConfig) -> None:
    """``params.yaml``, the config every stage reads, from a composed config."""
    text = yaml.safe_dump(OmegaConf.to_container(cfg), sort_keys=False, allow_unicode=True)
    with atomic_path(root / PARAMS_FILE) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_composed(root: Path, cfg: DictConfig) -> None:
    """``params.yaml`` from a composition of ``conf/``, and the record of the ``conf/`` it came from (what
    ``check_config`` compares a later ``conf/`` edit with); the record is made first, so a ``conf/`` it cannot read
    changes nothing."""
    record = current_record(root, OmegaConf.to_container(cfg))
    write_params(root, cfg)
    if composed_conf_path(root).parent.is_dir():  # a project that never ran has no outputs/: check_config records
        write_record(composed_conf_path(root), record)


def select(cfg: DictConfig | dict, keys: Sequence[str]) -> DictConfig:
    """A struct config holding only ``keys`` (dotted paths) of ``cfg``."""
    full = cfg if isinstance(cfg, dict) else OmegaConf.to_container(cfg, resolve=False)
    out: dict[str, Any] = {}
    for key in keys:
        node, dest, parts = full, out, key.split(".")
        for part in parts[:-1]:
            node = node[part]
            dest = dest.setdefault(part, {})
        if parts[-1] not in node:
            raise ConvlensError(f"param {key!r} is declared in {STAGE_FILE} but missing from the config")
        dest[parts[-1]] = node[parts[-1]]
    selected = OmegaConf.create(out)
    OmegaConf.set_struct(selected, True)
    OmegaConf.set_readonly(selected, True)
    return selected


def override_key(override: str) -> str:
    """The dotted key a Hydra override sets: ``samples.indices`` for ``'samples.indices=[0,5]'``."""
    return override.split("=", 1)[0].lstrip("+~")


def load_config(stage: str, overrides: Sequence[str], root: Path) -> DictConfig:
    """The stage's declared params, read from ``params.yaml`` and checked against the schema.

    Overrides (a stage run on its own) go the one route ``dvc exp run -S`` goes: ``conf/`` is composed
    with them into ``params.yaml``, which the stage then reads. An override of a key the stage does not
    read is refused rather than dropped.
    """
    declared = declared_params(root, stage)
    if overrides:
        if os.environ.get("DVC_STAGE"):
            raise ConvlensError("under DVC, change params with `dvc exp run -S key=value`, not stage arguments")
        for key in map(override_key, overrides):
            if not any(key == d or key.startswith(f"{d}.") or d.startswith(f"{key}.") for d in declared):
                raise ConvlensError(
                    f"{stage} does not read {key} (it reads {', '.join(declared)}); set it with "
                    f"dvc exp run -S '{key}=…', which reruns every stage that reads it"
                )
        apply_overrides(root, overrides)
    full = read_params(root)
    cfg = select(full if isinstance(full, dict) else {}, declared)
    check_config(OmegaConf.to_container(cfg), complete=False)
    return cfg


def read_params(root: Path, missing_ok: bool = False) -> Any:
    """``params.yaml`` as read (``None`` when it is missing and ``missing_ok``); one line when it is unreadable."""
    path = root / PARAMS_FILE
    try:
        return read_yaml(path)
    except FileNotFoundError as e:
        if missing_ok:
            return None
        raise ConvlensError(f"{path} is missing; compose it from conf/ with `make params`") from e
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConvlensError(f"{path} is not readable YAML ({str(e).splitlines()[0]}); recompose it: make params") from e


def covered(key: str, overrides: Sequence[str]) -> bool:
    """Whether flat ``key`` is, or lies under, a key an override sets (``data`` for ``data=folder``)."""
    return any(key == o or key.startswith(f"{o}.") for o in map(override_key, overrides))


def dropped(current: Any, base: Mapping[str, Any], overrides: Sequence[str]) -> list[str]:
    """The keys of ``current`` (``params.yaml``) whose values ``base`` (``conf/`` composed) does not give and no
    override sets: what recomposing ``conf/`` with ``overrides`` would silently discard (an applied experiment's
    values, an earlier standalone run's overrides)."""
    if not isinstance(current, Mapping):
        return []
    now, before = flatten(current), flatten(base)
    return [
        f"{k}={short(now.get(k, '(absent)'))}"
        for k in sorted(now.keys() | before.keys())
        if now.get(k) != before.get(k) and not covered(k, overrides)
    ]


def apply_overrides(root: Path, overrides: Sequence[str]) -> None:
    """A standalone stage's overrides: ``conf/`` composed with them into ``params.yaml``, as ``dvc exp run -S``
    does. Values of ``params.yaml`` that composition drops (an applied experiment's, an earlier standalone run's) are
    named in a warning, with the way back, rather than lost without a word."""
    composed = compose(root, overrides)
    lost = dropped(read_params(root, missing_ok=True), OmegaConf.to_container(compose(root)), overrides)
    write_composed(root, composed)
    log = logging.getLogger(__name__)
    log.info("%s recomposed from conf/ with %s", PARAMS_FILE, " ".join(overrides))
    if lost:
        shown = ", ".join(lost[:3]) + (f" and {len(lost) - 3} more" if len(lost) > 3 else "")
        log.warning(
            "%s held values conf/ does not compose (%s), now replaced by conf/'s: a stage run on its own composes "
            "conf/ with its overrides only; an applied experiment comes back with `dvc exp apply <name>`, and "
            "`dvc exp run -S key=value` changes one without losing it",
            PARAMS_FILE,
            shown,
        )


def params_of(root: Path, label: str) -> Any:
    """The params ``params.yaml`` gives the stage instance ``label`` (``feature_maps@conv2d``) now, as it reads
    them; ``None`` where they cannot be read."""
    try:
        return OmegaConf.to_container(select(read_params(root), declared_params(root, label.split("@", 1)[0])))
    except (ConvlensError, OmegaConfBaseException, KeyError, TypeError):  # a stage DVC knows and params.yaml lacks
        return None


def run_stage(
    stage: str, run: Callable[..., None], argv: Sequence[str] | None = None, skip_teardown: bool = False
) -> None:
    """Entry point of ``python -m stages.<stage> [ITEM] [overrides]``: one clear line and exit 1 on bad input,
    one line and exit 130 on Ctrl-C.

    Arguments with ``=`` are Hydra overrides; the others (a ``foreach`` stage's item, e.g. the layer)
    are passed to ``run(cfg, root, *items)``. ``skip_teardown``: after a successful run, exit at once
    instead of waiting for TensorFlow's interpreter teardown (~0.8 s); the outputs are already written,
    closed and renamed into place by then.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    items = [a for a in args if "=" not in a]
    label = stage_label(stage, args)
    for stream in (sys.stdout, sys.stderr):  # a message naming a path or "3×3" must not crash an ASCII locale
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    logging.basicConfig(level=logging.INFO, format=f"{label}: %(message)s", stream=sys.stdout, force=True)
    try:
        root = project_root()
        if len(items) > 1 or (items and "${item}" not in str(stage_definition(root, stage).get("cmd", ""))):
            raise ConvlensError(f"unexpected arguments {items}; give config overrides as key=value")
        for item in items:
            layer_spec("the layer argument", layer_item(item))
        with repository_lock(root):  # no `dvc exp run` rewrites params.yaml while the stage runs
            overrides = [a for a in args if "=" in a]
            alone = not overrides and not os.environ.get("DVC_STAGE")  # on its own (DVC sets DVC_STAGE)
            if alone and isinstance(params := read_params(root), Mapping):  # else load_config names what is wrong
                check_recomposed(root, params, composed_by_dvc=False, record_it=False)  # conf/ edited since?
            cfg = load_config(stage, overrides, root)
            if stale := standalone_stale(root, label, functools.partial(params_of, root)):  # on its own
                logging.getLogger(__name__).warning(stale_line(stale, label))
            run(cfg, root, *items)
            check_params_unchanged(OmegaConf.to_container(cfg), OmegaConf.to_container(load_config(stage, [], root)))
            record_alone(root, label, OmegaConf.to_container(cfg))  # on its own: what it ran with; under DVC: dropped
        if skip_teardown:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
    except ConvlensError as e:
        print(f"{label}: error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:  # Ctrl-C: the staged outputs were removed on the way out (files.staged_dir, …)
        print(interrupted_line(label), file=sys.stderr)
        sys.exit(INTERRUPTED)
