"""``python -m convlens tidy`` counts and names only files that are there, and removes the folders it leaves
without a file (outside tester: ``would delete`` for files ``dvc exp apply`` had deleted already, empty folders
left behind)."""

from __future__ import annotations

from pathlib import Path

import pytest

import convlens.__main__ as cli
from tests.unit.cli.test_cli import applied  # noqa: F401  (the fixture: three's outputs applied over HEAD's)

POOL = Path("outputs/metrics/channels/pool")


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


@pytest.mark.usefixtures("applied")
def test_a_file_git_lists_but_that_is_gone_is_neither_named_nor_counted(capsys):
    """``dvc exp apply`` deleted pool's tracked table (``git status``: `` D``); git's index still lists it."""
    (POOL / "trained.csv").unlink()
    cli.main(["tidy", "--dry-run", "three"])
    assert capsys.readouterr().out.splitlines() == [
        "tidy: 1 more file(s) three lacks were gone already (git status: deleted)",
        "tidy: 0 file(s) three lacks found under outputs/",
    ]
    cli.main(["tidy", "three"])
    assert capsys.readouterr().out.splitlines()[-1] == "tidy: 0 file(s) three lacks deleted under outputs/"
    assert not POOL.exists()  # the folder the deleted table left, empty


@pytest.mark.usefixtures("applied")
def test_tidy_removes_the_folders_it_leaves_without_a_file_and_no_others():
    """A full run's ``outputs/activation_max/``: its ``.gitignore`` (HEAD lacks it) beside the empty folder of an
    output DVC deleted; an empty folder tidy deletes nothing from stays."""
    left = Path("outputs/activation_max")
    (left / "trained" / "channels").mkdir(parents=True)
    (left / ".gitignore").write_text("/trained\n", encoding="utf-8")
    other = Path("outputs/metrics/channels/conv2d/empty")
    other.mkdir()
    cli.main(["tidy"])
    assert not left.exists()
    assert other.is_dir()
    assert files_under(Path("outputs/metrics/channels/conv2d")) == ["empty", "trained.csv"]


LOCK = """\
schema: '2.0'
stages:
  activation_max@trained:
    cmd: python -m stages.activation_max trained
    outs:
    - path: outputs/activation_max/trained
      hash: md5
      md5: a9bf51ea85fc1a0c119e7f77548d9439.dir
      size: 2
      nfiles: 1
  chapter:
    cmd: echo chapter
"""


@pytest.mark.usefixtures("applied")
def test_tidy_drops_the_dvc_lock_entries_of_stages_dvc_yaml_no_longer_has(capsys):
    """An ``analyses=full`` run's ``activation_max@trained`` stays in dvc.lock after a ``light`` one is applied
    (DVC never drops it; tests/project/test_lock.py refuses it in a commit); the current stage's stays."""
    Path("dvc.yaml").write_text("stages:\n  chapter:\n    cmd: echo chapter\n", encoding="utf-8")
    Path("dvc.lock").write_text(LOCK, encoding="utf-8")
    line = "activation_max@trained from dvc.lock: no such stage in dvc.yaml now"
    cli.main(["tidy", "--dry-run"])
    assert f"would drop {line}" in capsys.readouterr().out.splitlines()
    assert Path("dvc.lock").read_text(encoding="utf-8") == LOCK  # a dry run
    cli.main(["tidy"])
    assert f"dropped {line}" in capsys.readouterr().out.splitlines()
    assert Path("dvc.lock").read_text(encoding="utf-8") == "schema: '2.0'\nstages:\n  chapter:\n    cmd: echo chapter\n"
    cli.main(["tidy"])
    assert "dropped" not in capsys.readouterr().out  # nothing more to drop
