"""Delete what other runs left under ``outputs/`` after ``dvc exp apply REV``: ``python -m convlens tidy [REV]``.

``dvc exp apply`` writes REV's outputs and deletes the DVC-cached ones REV lacks, but keeps the git-tracked
(``cache: false``) files of the run before: the per-layer tables of layers REV does not look at, the ``.gitignore``
files DVC wrote for outputs REV does not have. This deletes every file under ``outputs/`` that git does not ignore
and REV's commit lacks (REV: a git revision or an experiment name, ``HEAD`` by default; the one just applied), so
that ``dvc status`` is clean again, and the folders that leaves without a file; ``--dry-run`` lists them instead.
Files git lists that are gone already (``dvc exp apply`` deleted them: ``git status`` `` D``) are only counted
apart. Ignored files (DVC's outputs, the comparison pages) are never touched. It also drops the entries of
``dvc.lock`` that name no stage of ``dvc.yaml`` under the current params (an experiment's, which DVC never drops).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from convlens.errors import ConvlensError
from convlens.pipeline.config import project_root
from convlens.pipeline.repo_lock import repository_lock

OUTPUTS = "outputs"
LOCK = "dvc.lock"


def git_paths(root: Path, *args: str) -> set[str]:
    """The NUL-separated paths a git command prints, run in ``root``."""
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, check=False)
    if done.returncode:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        raise ConvlensError(f"git {args[0]} failed ({said[-1] if said else done.returncode}); run inside a git clone")
    return {p for p in done.stdout.decode(errors="surrogateescape").split("\0") if p}


def revision(root: Path, rev: str) -> str:
    """``rev`` (a git revision or an experiment name, as ``dvc exp apply`` takes it) as a commit."""
    from dvc.repo import Repo
    from dvc.scm import RevError, resolve_rev

    try:
        return resolve_rev(Repo(str(root)).scm, rev)
    except RevError as e:
        raise ConvlensError(f"{e}; name a git revision or an experiment (dvc exp show), the one you applied") from e


def not_ignored(root: Path) -> set[str]:
    """The workspace's files under ``outputs/`` that git does not ignore: tracked at HEAD, or untracked."""
    present = git_paths(root, "ls-files", "-z", "--", OUTPUTS)
    return present | git_paths(root, "ls-files", "-z", "--others", "--exclude-standard", "--", OUTPUTS)


def leftovers(listed: set[str], kept: set[str]) -> list[str]:
    """The paths of ``listed`` (the workspace's files under ``outputs/`` that git does not ignore) that the applied
    commit lacks (``kept``: its files there), in order."""
    return sorted(listed - kept)


def on_disk(root: Path, paths: list[str]) -> list[str]:
    """Those of ``paths`` that are there (a link counts, whatever it points to): git's index still lists the
    tracked files ``dvc exp apply`` deleted (``git status``: `` D``)."""
    return [p for p in paths if (root / p).is_symlink() or (root / p).exists()]


def empty_tree(folder: Path) -> bool:
    """``folder`` holds no file, however deep (only empty folders, which DVC leaves when it deletes outputs)."""
    return all(entry.is_dir() and not entry.is_symlink() and empty_tree(entry) for entry in folder.iterdir())


def remove_empty_tree(folder: Path) -> None:
    """Delete ``folder``, an :func:`empty_tree`, and the empty folders in it."""
    for entry in folder.iterdir():
        remove_empty_tree(entry)
    folder.rmdir()


def remove(root: Path, found: list[str]) -> None:
    """Delete ``found`` (paths under ``outputs/``, some perhaps gone already) and the folders holding them that are
    left without a file (empty, or only empty folders inside), up to ``outputs/``."""
    top = (root / OUTPUTS).resolve()
    folders = set()
    for relative in found:
        path = root / relative
        if not path.parent.resolve().is_relative_to(top):  # git lists no such path; never outside outputs/
            raise ConvlensError(f"{relative} is not under {OUTPUTS}/; nothing deleted after it")
        path.unlink(missing_ok=True)  # a link itself, never its target
        folders.update(p for p in path.parents if p.resolve().is_relative_to(top) and p.resolve() != top)
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and not folder.is_symlink() and empty_tree(folder):
            remove_empty_tree(folder)


def stale_entries(locked: Iterable[str], current: Iterable[str]) -> list[str]:
    """The stages ``dvc.lock`` holds (``locked``) that ``dvc.yaml`` has no more under the current params
    (``current``): an experiment's that the config now leaves out (``activation_max@trained`` after a ``full``
    run), which DVC never drops, in order."""
    return sorted(set(locked) - set(current))


def current_stages(root: Path) -> set[str]:
    """The names of the stages of ``root``'s ``dvc.yaml`` (the one beside ``dvc.lock``) under the current params."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            return {s.name for s in repo.index.stages if Path(s.path).resolve() == root / "dvc.yaml"}
    except DvcException as e:
        raise ConvlensError(f"DVC cannot list dvc.yaml's stages ({e}); fix that, then run tidy again") from e


def drop_stale(root: Path, current: set[str], dry_run: bool) -> list[str]:
    """Drop (``dry_run``: only find) the :func:`stale_entries` of ``root``'s ``dvc.lock``, written back as DVC
    writes it; the file is not touched where there are none."""
    from dvc.utils.serialize import load_yaml, modify_yaml

    lock = root / LOCK
    if not lock.is_file():
        return []
    stale = stale_entries(load_yaml(lock).get("stages") or {}, current)
    if stale and not dry_run:
        with modify_yaml(lock) as data:
            for name in stale:
                del data["stages"][name]
    return stale


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m convlens tidy", description=__doc__.splitlines()[0])
    parser.add_argument("rev", nargs="?", default="HEAD", help="the run applied last: git revision or experiment name")
    parser.add_argument("-n", "--dry-run", action="store_true", help="list the files instead of deleting them")
    args = parser.parse_args(argv)
    try:
        root = project_root()
        commit = revision(root, args.rev)
        kept = git_paths(root, "ls-tree", "-r", "-z", "--name-only", commit, "--", OUTPUTS)
        current = current_stages(root)
        with repository_lock(root):  # not while a stage writes outputs/
            listed = batch = leftovers(not_ignored(root), kept)
            found = on_disk(root, listed)
            while batch and not args.dry_run:
                remove(root, batch)
                hid = any(Path(p).name == ".gitignore" for p in batch)  # another run's: what it hid shows now
                batch = [p for p in leftovers(not_ignored(root), kept) if p not in listed] if hid else []
                listed, found = listed + batch, found + on_disk(root, batch)
            stale = drop_stale(root, current, args.dry_run)
    except ConvlensError as e:
        sys.exit(f"tidy: error: {e}")
    for path in found:
        print(f"{'would delete' if args.dry_run else 'deleted'} {path}")
    if args.dry_run and any(Path(p).name == ".gitignore" for p in found):
        print("tidy: deleting those .gitignore files shows the files they hid, which tidy then deletes too")
    for name in stale:
        print(f"{'would drop' if args.dry_run else 'dropped'} {name} from {LOCK}: no such stage in dvc.yaml now")
    if gone := len(listed) - len(found):
        print(f"tidy: {gone} more file(s) {args.rev} lacks were gone already (git status: deleted)")
    print(f"tidy: {len(found)} file(s) {args.rev} lacks {'found' if args.dry_run else 'deleted'} under {OUTPUTS}/")
