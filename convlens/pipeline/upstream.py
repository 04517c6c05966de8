"""What a stage run on its own reads without rerunning: the upstream stages DVC finds out of date.

``python -m stages.<stage>`` reruns that stage only. Where ``params.yaml`` (or a dependency) changed for a stage
upstream of it that has not run since, this stage reads that stage's old outputs: a Korean page with English figures,
a page whose class names are not its tables'. :func:`stale_upstream` names those stages from ``dvc status``, so the
run can say so (and the report can say so on its page) rather than mix two configurations without a word.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from convlens.pipeline import paths

SHOWN = 4  # stages a line names before "and N more"
GUARD = "check_config"  # its output records that params.yaml passed the schema, no result read downstream
# A stage that reads params and data only to refuse bad values early: its output is the same whatever they are
# (dvc.yaml says so), so only a change of these params, or of a file no stage makes, makes that output old.
CHECKS_ONLY = {"fetch_model": "model"}
RECORDS = Path(".dvc") / "tmp" / "convlens-alone"  # what each stage run on its own last ran with (git ignores it)


def changed_items(changes: Sequence[Any], kind: str) -> list[str]:
    """The params (``samples.indices``) and files (``outputs/data``) of one kind of change in ``dvc status``'s
    entry of a stage (``changed deps``: ``{"params.yaml": {key: …} | "modified", path: "modified"}``)."""
    items: list[str] = []
    for change in changes:
        for path, what in (change.get(kind, {}) if isinstance(change, Mapping) else {}).items():
            items.extend(what if isinstance(what, Mapping) else [path])
    return items


def inputs_make_it_old(stage: str, changes: Sequence[Any]) -> bool:
    """Whether the changed dependencies of ``stage`` change what it makes: any, but for a stage of
    :data:`CHECKS_ONLY` only its own params or a file no stage makes (its code, the user's model)."""
    if stage not in CHECKS_ONLY:
        return bool(changed_items(changes, "changed deps"))
    own, made = CHECKS_ONLY[stage], f"{paths.outputs_dir(Path()).as_posix()}/"  # what stages make lies under it
    for change in changes:
        for path, what in (change.get("changed deps", {}) if isinstance(change, Mapping) else {}).items():
            if not isinstance(what, Mapping):  # a file, or a params file changed as a whole
                if not path.startswith(made):
                    return True
            elif any(key == own or key.startswith(f"{own}.") for key in what):
                return True
    return False


def stale_stages(
    status: Mapping[str, Sequence[Any]], target: str, made_alone_for_now: Callable[[str], bool] = lambda stage: False
) -> list[str]:
    """The stages of ``dvc status``'s answer (``{stage: [change, …]}``) other than ``target`` and the guard whose
    outputs may not be what ``params.yaml`` and their inputs make now:

    - outputs ``dvc.lock`` records, made before a change of what they depend on (:func:`inputs_make_it_old`);
    - outputs that are not ``dvc.lock``'s (a stage run on its own, an edit, a deletion), unless
      ``made_alone_for_now(stage)``: that stage's last run on its own read the params ``params.yaml`` holds now."""
    stale = []
    for stage, changes in status.items():
        if stage in (target, GUARD):
            continue
        if changed_items(changes, "changed outs") or any(isinstance(c, str) for c in changes):
            if not made_alone_for_now(stage):
                stale.append(stage)
        elif inputs_make_it_old(stage, changes):
            stale.append(stage)
    return sorted(stale)


def record_path(root: Path, label: str) -> Path:
    return root / RECORDS / f"{label}.json"


def record_alone(root: Path, label: str, params: Any) -> None:
    """Keep the params a stage run on its own read (``params``: its declared ones); under DVC (``dvc.lock`` records
    the run) drop the record instead."""
    path = record_path(root, label)
    if os.environ.get("DVC_STAGE"):
        path.unlink(missing_ok=True)
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(params, sort_keys=True, default=str), encoding="utf-8")
    except OSError:  # no .dvc/tmp to write to: that stage's outputs count as old to the next one
        pass


def made_alone_with(root: Path, label: str, params: Any) -> bool:
    """Whether ``label``'s last run on its own read ``params``."""
    try:
        kept = json.loads(record_path(root, label).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return kept == json.loads(json.dumps(params, sort_keys=True, default=str))


def pipeline_status(root: Path, target: str | None = None, lock_held: bool = False) -> dict[str, list] | None:
    """``dvc status`` of the DVC project at ``root`` (``target`` and its upstream, else every stage) as
    ``{stage: [change, …]}``; ``None`` where DVC cannot tell (not a DVC project, a stage unknown to it).
    ``lock_held``: the caller holds the repository's lock (:func:`~convlens.pipeline.repo_lock.repository_lock`, a
    stage's whole run), so DVC must not wait for it."""
    from dvc.exceptions import DvcException
    from dvc.lock import LockNoop
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            if lock_held:
                repo.lock = LockNoop()  # ours, held: DVC's own would wait 3 s for it, then fail
            targets = [f"{root / 'dvc.yaml'}:{target}"] if target else None
            status = repo.status(targets=targets, with_deps=bool(target))
    except DvcException:
        return None
    return {name.rsplit(":", 1)[-1]: changes for name, changes in status.items()}  # a target's are path:stage


def stale_upstream(root: Path, target: str, params_of: Callable[[str], Any] = lambda stage: None) -> list[str]:
    """:func:`stale_stages` of ``target``'s upstream, asked while the stage holds the repository's lock (``[]``
    where DVC cannot tell); ``params_of(stage)``: the params ``params.yaml`` gives that stage now."""
    status = pipeline_status(root, target, lock_held=True) or {}
    return stale_stages(status, target, lambda stage: made_alone_with(root, stage, params_of(stage)))


def unreproduced(root: Path) -> list[str] | None:
    """The stages ``dvc status`` finds changed in the workspace, the guard and ``.dvc`` files aside: its results are
    not all of its ``params.yaml`` (changed params, deleted outputs); ``None`` where DVC cannot tell."""
    status = pipeline_status(root)  # a .dvc file no stage reads is no result (a stage that reads one lists it)
    return None if status is None else sorted(s for s in status if s != GUARD and not s.endswith(".dvc"))


STALE: dict[tuple[Path, str], tuple[str, ...]] = {}  # what this process's stage found (its log line, the report's page)


def standalone_stale(root: Path, target: str, params_of: Callable[[str], Any] = lambda stage: None) -> tuple[str, ...]:
    """:func:`stale_upstream` for a stage run on its own, ``()`` under DVC (which sets ``DVC_STAGE`` and has rerun
    every upstream stage first); asked once per process (the stage's log line and the report's page share it)."""
    if (root, target) not in STALE:
        stale = () if os.environ.get("DVC_STAGE") else tuple(stale_upstream(root, target, params_of))
        STALE[(root, target)] = stale
    return STALE[(root, target)]


def stage_list(stages: Sequence[str]) -> str:
    """Stages as a line names them: the first :data:`SHOWN`, then how many more."""
    return ", ".join(stages[:SHOWN]) + (f" and {len(stages) - SHOWN} more" if len(stages) > SHOWN else "")


def stale_line(stages: Sequence[str], target: str) -> str:
    """The warning of a stage run on its own over upstream stages whose outputs may be old (:func:`stale_stages`)."""
    their, them = ("their", "them") if len(stages) > 1 else ("its", "it")
    return (
        f"{stage_list(stages)} not rerun for params.yaml and {their} inputs as they are (dvc status): this run reads "
        f"{their} outputs as they are; `dvc repro {target}` reruns {them} first"
    )
