"""Outside tester 2 #5: `dvc exp run --dry` fails for every run ("failed to reproduce 'fetch_data': [Errno 2] No such
file or directory: '…/.dvc/tmp/exps/standalone/…/outputs/checked_config.txt'"). It is DVC's (3.67), met by any
pipeline whose stage reads an earlier stage's output, so docs/experiments.md ("Previewing a run") says so and names
what to use instead. This guards that page: on a two-stage pipeline of no convlens code, `dvc exp run --dry` fails
the same way and `dvc repro --dry` in the workspace names the stage to rerun. When a DVC release fixes it, this
fails: then the page's advice can go."""

from __future__ import annotations

import pytest

from tests.support.dvc_repo import dvc, repo_env, sh

pytestmark = pytest.mark.slow

PIPELINE = """\
stages:
  one:
    cmd: python -c "import pathlib; pathlib.Path('one.txt').write_text(pathlib.Path('seed.txt').read_text())"
    deps: [seed.txt]
    outs: [one.txt]
  two:
    cmd: python -c "import pathlib; pathlib.Path('two.txt').write_text(pathlib.Path('one.txt').read_text())"
    deps: [one.txt]
    outs: [two.txt]
"""


def test_dvc_exp_run_dry_fails_on_any_pipeline_whose_stage_reads_an_earlier_output(tmp_path):
    env = repo_env()
    sh(tmp_path, "git", "init", "-q", env=env)
    dvc(tmp_path, env, "init", "-q")
    (tmp_path / "dvc.yaml").write_text(PIPELINE, encoding="utf-8")
    (tmp_path / "seed.txt").write_text("1\n", encoding="utf-8")
    dvc(tmp_path, env, "repro", "-q")
    sh(tmp_path, "git", "add", "-A", env=env)
    sh(tmp_path, "git", "commit", "-qm", "two stages", env=env)
    (tmp_path / "seed.txt").write_text("2\n", encoding="utf-8")
    dry = dvc(tmp_path, env, "exp", "run", "--dry", check=False)
    assert "failed to reproduce 'two': [Errno 2] No such file or directory" in dry
    assert "/.dvc/tmp/exps/standalone/" in dry and "one.txt" in dry
    preview = dvc(tmp_path, env, "repro", "--dry")
    assert "Running stage 'one'" in preview and "ERROR" not in preview
    assert (tmp_path / "two.txt").read_text(encoding="utf-8") == "1\n"  # a dry run runs nothing
