"""What docs/pipeline.md says of ``dvc.lock`` after an experiment that dropped stages, and of a ``foreach`` group
the config leaves empty, checked against DVC itself in a small repository of two stages (no convlens stage)."""

from __future__ import annotations

import os
import sys

import pytest
import yaml

from tests.support.dvc_repo import commit, dvc, repo_env, sh
from tests.support.helpers import PROJECT

pytestmark = pytest.mark.slow

DVC_YAML = """\
stages:
  climb:
    foreach: ${models}
    do:
      cmd: mkdir -p outputs/climb/${item} && echo x > outputs/climb/${item}/out.txt
      outs:
        - outputs/climb/${item}
  chapter:
    cmd: mkdir -p outputs/chapter && echo y > outputs/chapter/out.txt
    outs:
      - outputs/chapter
"""


@pytest.fixture
def dropped(tmp_path):
    """A repository whose dvc.lock has ``climb@trained`` after ``models`` went back to ``[]`` (a full run, then the
    default config), and whose outputs are up to date."""
    root, env = tmp_path / "r", repo_env()
    root.mkdir()
    sh(root, "git", "init", "-q", "-b", "main", env=env)
    dvc(root, env, "init", "-q")
    (root / "dvc.yaml").write_text(DVC_YAML, encoding="utf-8")
    (root / "params.yaml").write_text("models: [trained]\n", encoding="utf-8")
    dvc(root, env, "repro", "-q")
    (root / "params.yaml").write_text("models: []\n", encoding="utf-8")
    dvc(root, env, "repro", "-q")
    commit(root, env, "full, then light")
    return root, env


def locked(root) -> set[str]:
    return set(yaml.safe_load((root / "dvc.lock").read_text(encoding="utf-8"))["stages"])


def test_dvc_never_prunes_a_dropped_stage_and_rm_lock_then_commit_does(dropped):
    root, env = dropped
    assert locked(root) == {"climb@trained", "chapter"}
    for command in (("repro",), ("repro", "--force"), ("commit", "--force")):
        dvc(root, env, *command, "-q")
        assert "climb@trained" in locked(root), command
    before = yaml.safe_load((root / "dvc.lock").read_text(encoding="utf-8"))["stages"]["chapter"]
    (root / "dvc.lock").unlink()
    dvc(root, env, "commit", "--force", "-q")
    assert yaml.safe_load((root / "dvc.lock").read_text(encoding="utf-8"))["stages"] == {"chapter": before}
    assert "Data and pipelines are up to date" in dvc(root, env, "status")


def test_tidy_drops_what_rm_lock_then_commit_drops_and_leaves_the_rest_byte_equal(dropped):
    root, env = dropped
    (root / "conf").mkdir()  # a convlens project: conf/ beside dvc.yaml
    env = {**env, "PYTHONPATH": os.pathsep.join([str(PROJECT), env.get("PYTHONPATH", "")])}
    out = sh(root, sys.executable, "-m", "convlens", "tidy", env=env)
    assert "dropped climb@trained from dvc.lock: no such stage in dvc.yaml now" in out
    tidied = (root / "dvc.lock").read_bytes()
    (root / "dvc.lock").unlink()
    dvc(root, env, "commit", "--force", "-q")
    assert (root / "dvc.lock").read_bytes() == tidied
    assert "Data and pipelines are up to date" in dvc(root, env, "status")


def test_dvc_repro_of_a_group_the_config_leaves_empty_runs_every_stage(dropped):
    root, env = dropped
    (root / "outputs" / "chapter" / "out.txt").write_text("edited", encoding="utf-8")
    dvc(root, env, "repro", "climb")  # no climb@… now: DVC takes it as no target
    assert (root / "outputs" / "chapter" / "out.txt").read_text(encoding="utf-8") == "y\n"  # chapter rerun
