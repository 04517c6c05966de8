"""What a stage run on its own reads without rerunning: the upstream stages DVC finds out of date.

``python -m stages.<stage>`` reruns that stage only. Where ``params.yaml`` (or a dependency) changed for a stage
upstream of it that has not run since, this stage reads that stage's old outputs: a Korean page with English figures,
a page whose class names are not its tables'. :func:`stale_upstream` names those stages from ``dvc status``, so the
run can say so (and the report can say so on its page) rather than mix two configurations without a word.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SHOWN = 4  # stages a line names before "and N more"
GUARD = "check_config"  # its output records that params.yaml passed the schema, no result read downstream


def stale_stages(status: Mapping[str, Sequence[Any]], target: str) -> list[str]:
    """The stages of ``dvc status``'s answer (``{stage: [change, …]}``) other than ``target`` and the guard whose
    dependencies or params changed while their outputs are still the ones ``dvc.lock`` records: not rerun since.
    A stage whose outputs changed too was rerun on its own (or edited) after the change, so its outputs are current."""
    stale = []
    for stage, changes in status.items():
        if stage in (target, GUARD):
            continue
        kinds = {kind for change in changes if isinstance(change, Mapping) for kind in change}
        if "changed deps" in kinds and "changed outs" not in kinds:
            stale.append(stage)
    return sorted(stale)


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


def stale_upstream(root: Path, target: str) -> list[str]:
    """:func:`stale_stages` of ``target``'s upstream, asked while the stage holds the repository's lock (``[]``
    where DVC cannot tell)."""
    return stale_stages(pipeline_status(root, target, lock_held=True) or {}, target)


def unreproduced(root: Path) -> list[str] | None:
    """The stages ``dvc status`` finds changed in the workspace, the guard aside: its results are not all of its
    ``params.yaml`` (changed params, deleted outputs); ``None`` where DVC cannot tell."""
    status = pipeline_status(root)
    return None if status is None else sorted(stage for stage in status if stage != GUARD)


@functools.cache
def standalone_stale(root: Path, target: str) -> tuple[str, ...]:
    """:func:`stale_upstream` for a stage run on its own, ``()`` under DVC (which sets ``DVC_STAGE`` and has rerun
    every upstream stage first); asked once per process (the stage's log line and the report's page share it)."""
    return () if os.environ.get("DVC_STAGE") else tuple(stale_upstream(root, target))


def stage_list(stages: Sequence[str]) -> str:
    """Stages as a line names them: the first :data:`SHOWN`, then how many more."""
    return ", ".join(stages[:SHOWN]) + (f" and {len(stages) - SHOWN} more" if len(stages) > SHOWN else "")


def stale_line(stages: Sequence[str], target: str) -> str:
    """The warning of a stage run on its own over out-of-date upstream stages."""
    named = stage_list(stages)
    their = "their" if len(stages) > 1 else "its"
    return (
        f"{named} not rerun since params.yaml or {their} inputs changed (dvc status): this run reads {their} old "
        f"outputs; `dvc repro {target}` reruns {'them' if len(stages) > 1 else 'it'} first"
    )
