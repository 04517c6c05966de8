"""What a ``dvc repro`` / ``dvc exp run`` should run, derived from the repository, never from a list of stages.

The rule (``expected``), for a run with targets T (none: the whole pipeline), from the ``dvc.lock`` before the run,
the ``dvc.lock`` and ``params.yaml`` after it, and which outputs were on disk before it: a stage instance should run
when it is in T's upstream closure and

1. it is new (in the lock after the run, not before: a stage or ``foreach`` instance the change added), or
2. one of its outputs in the lock was missing before the run (a fresh clone has none of the DVC-cached ones), or
3. its inputs changed: its command, a declared param's value or a dependency's hash differ between the two locks
   (a dependency's hash changes when the stage upstream wrote different bytes), or
4. its params are stale: a param the lock after the run recorded differs from ``params.yaml``'s value (it should
   have run and did not).

Stage names are what DVC prints (``name`` or ``name@item``), so the rule holds for any set of stages in
``dvc.yaml``: before and after ``dataset_stats``/``evaluate`` became ``dataset@<model>``, or any other change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

Lock = dict[str, dict[str, Any]]


def read_lock(root: Path) -> Lock:
    """The stages of ``ROOT/dvc.lock`` that ``ROOT/dvc.yaml`` still defines (empty when there is none): DVC keeps
    the entries of stages since removed or turned into ``foreach`` groups, and never runs them."""
    path = root / "dvc.lock"
    if not path.is_file():
        return {}
    stages = dict((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("stages") or {})
    return {name: entry for name, entry in stages.items() if defined(root, name)}


def defined(root: Path, stage: str) -> bool:
    """Whether ``dvc.yaml`` defines ``stage``: a plain stage by its name, an instance of a ``foreach`` or ``matrix``
    group as ``group@item``."""
    specs = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    name, at, _ = stage.partition("@")
    if name not in specs:
        return False
    grouped = isinstance(specs[name], dict) and ("foreach" in specs[name] or "matrix" in specs[name])
    return grouped == bool(at)


def read_params(root: Path) -> dict[str, Any]:
    return yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8")) or {}


def base(stage: str) -> str:
    """``render_maps@conv2d`` → ``render_maps``."""
    return stage.split("@", 1)[0]


def yaml_stages(root: Path) -> list[str]:
    """The stage names of ``dvc.yaml``, in file order (``foreach`` groups by their group name)."""
    return list(yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"])


def in_yaml_order(stages: list[str] | set[str], root: Path) -> list[str]:
    """``stages`` sorted as ``dvc.yaml`` lists them (instances of one group in name order)."""
    order = {name: i for i, name in enumerate(yaml_stages(root))}
    return sorted(stages, key=lambda s: (order.get(base(s), len(order)), s))


def outs(entry: dict[str, Any]) -> list[str]:
    return [o["path"] for o in entry.get("outs") or []]


def _hashes(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {i["path"]: i.get("md5") or i.get("hash") for i in items or []}


def _inputs(entry: dict[str, Any]) -> tuple[Any, ...]:
    return (entry.get("cmd"), entry.get("params"), _hashes(entry.get("deps")))


def _lookup(params: dict[str, Any], dotted: str) -> Any:
    node: Any = params
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return _MISSING
        node = node[key]
    return node


_MISSING = object()


def stale_params(entry: dict[str, Any], params: dict[str, Any]) -> bool:
    """Rule 4: a ``params.yaml`` value the lock entry recorded differs from the file's now."""
    recorded = (entry.get("params") or {}).get("params.yaml") or {}
    return any(_lookup(params, key) != value for key, value in recorded.items())


def missing_outputs(root: Path, lock: Lock) -> set[str]:
    """Rule 2, read before the run: the stages with an output path that is not on disk."""
    return {stage for stage, entry in lock.items() if any(not (root / p).exists() for p in outs(entry))}


def _feeds(out: str, dep: str) -> bool:
    return out == dep or out.startswith(dep.rstrip("/") + "/") or dep.startswith(out.rstrip("/") + "/")


def upstream(lock: Lock, targets: list[str]) -> set[str]:
    """The instances of ``targets`` (stage or group names) and every stage they depend on, through the lock's
    outputs and dependencies."""
    todo = [s for s in lock if s in targets or base(s) in targets]
    found: set[str] = set()
    while todo:
        stage = todo.pop()
        if stage in found:
            continue
        found.add(stage)
        deps = [d["path"] for d in lock[stage].get("deps") or []]
        todo += [s for s, e in lock.items() if any(_feeds(o, d) for o in outs(e) for d in deps)]
    return found


def expected(
    before: Lock, after: Lock, params: dict[str, Any], missing: set[str], targets: list[str] | None = None
) -> set[str]:
    """The stages the run should have run (the module's rule)."""
    scope = upstream(after, targets) if targets else set(after)
    found = set()
    for stage in scope:
        entry = after[stage]
        if (
            stage not in before
            or stage in missing
            or _inputs(before[stage]) != _inputs(entry)
            or stale_params(entry, params)
        ):
            found.add(stage)
    return found


RULE = (
    "a stage should run when it is new, when one of its outputs was missing before the run, when its command, a "
    "declared param or a dependency's hash differs between `dvc.lock` before and after the run, or when `params.yaml` "
    "no longer matches the params its lock entry recorded; with targets, only their upstream closure counts "
    "(`bench/expected.py`)"
)
