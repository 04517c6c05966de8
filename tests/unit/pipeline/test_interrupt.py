"""Ctrl-C during a stage: one line and exit 130, the outputs as they were (before: a 28-line KeyboardInterrupt
traceback; outside tester, finding 18)."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from convlens.pipeline.config import run_stage
from convlens.pipeline.files import staged_dir
from tests.support.helpers import PROJECT, hidden, snapshot, staging_areas

LINE = "samples: interrupted; no output was written, rerun dvc repro\n"


def test_under_dvc_exp_run_the_line_says_to_rerun_the_experiment(tmp_path):
    """outside tester 5: under `dvc exp run`, `dvc repro` would run the experiment's params outside it."""
    from convlens.pipeline.interrupt import interrupted_line

    assert interrupted_line("samples", {}, tmp_path) + "\n" == LINE
    env = {"DVC_STAGE": "samples", "DVC_ROOT": str(tmp_path), "DVC_EXP_NAME": "exp-1"}
    assert "rerun dvc exp run with the same -S options" in interrupted_line("samples", env, tmp_path)


def test_under_dvc_the_line_says_dvc_deleted_the_old_outputs_and_how_to_get_the_commits_back(tmp_path):
    """outside tester: DVC deletes a stage's outputs before running it, and a git-tracked one (``cache: false``)
    comes back from git only: "no output was written" read as if the old outputs were there."""
    from convlens.pipeline.interrupt import interrupted_line

    env = {"DVC_STAGE": "dataset@untrained", "DVC_ROOT": str(tmp_path)}
    assert interrupted_line("dataset@untrained", env, tmp_path) == (
        "dataset@untrained: interrupted; DVC had deleted this stage's outputs before running it (all but those "
        "dvc.yaml marks persist): rerun dvc repro, or go back to the last commit: git checkout HEAD -- params.yaml "
        "dvc.lock outputs, then dvc checkout"
    )


def test_in_a_queued_experiments_copy_the_line_says_the_workspace_is_untouched_and_to_queue_it_again(tmp_path):
    """``dvc queue kill``: the stage ran in the experiment's copy under ``.dvc/tmp/exps/``, where ``DVC_ROOT``
    names the repository it came from."""
    from convlens.pipeline.interrupt import interrupted_line

    copy = tmp_path / ".dvc" / "tmp" / "exps" / "tmpabc"
    copy.mkdir(parents=True)
    env = {"DVC_STAGE": "samples", "DVC_ROOT": str(tmp_path), "DVC_EXP_NAME": "exp-1"}
    assert interrupted_line("samples", env, copy) == (
        "samples: interrupted in a queued experiment's own copy of the project; the workspace is untouched: "
        "queue it again with dvc exp run --queue and the same -S options, then dvc queue start"
    )


def old_output(project):
    folder = project / "outputs" / "samples"
    folder.mkdir(parents=True)
    (folder / "old.txt").write_text("the last run's", encoding="utf-8")
    return snapshot(project / "outputs")


def test_an_interrupt_inside_a_run_is_one_line_and_exit_130(project, monkeypatch, capsys):
    before = old_output(project)
    monkeypatch.chdir(project)

    def run(cfg, root):
        with staged_dir(root / "outputs" / "samples") as tmp:
            (tmp / "half.txt").write_text("half", encoding="utf-8")
            raise KeyboardInterrupt

    try:
        run_stage("samples", run, [])
    except KeyboardInterrupt:  # not left to pytest, which would stop the whole session
        pytest.fail("KeyboardInterrupt escaped run_stage")
    except SystemExit as exit_:
        assert exit_.code == 130
    else:
        pytest.fail("run_stage returned after an interrupt")
    out, err = capsys.readouterr()
    assert err == LINE and "Traceback" not in out
    assert snapshot(project / "outputs") == before
    assert not hidden(project / "outputs") and not staging_areas(project)


SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from convlens.pipeline.config import run_stage
    from convlens.pipeline.files import staged_dir

    def run(cfg, root):
        with staged_dir(root / "outputs" / "samples") as tmp:
            (tmp / "half.txt").write_text("half", encoding="utf-8")
            Path(sys.argv[1]).touch()
            time.sleep(60)

    run_stage("samples", run, [])
    """
)


def test_sigint_to_a_running_stage_is_one_line_and_exit_130(project, tmp_path):
    before = old_output(project)
    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(ready)],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    deadline = time.monotonic() + 60
    while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ready.exists(), proc.communicate(timeout=10)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert err == LINE and "Traceback" not in out
    assert snapshot(project / "outputs") == before
    assert not hidden(project / "outputs") and not staging_areas(project)


# Ctrl-C while a stage still imports its libraries (before run_stage): an import of omegaconf interrupted, as if
# SIGINT came then. sitecustomize runs at start-up, before ``python -m stages.<name>`` imports anything.
INTERRUPT_AN_IMPORT = textwrap.dedent(
    """
    import sys

    class Interrupt:
        def find_spec(self, name, path=None, target=None):
            if name == "omegaconf":
                raise KeyboardInterrupt

    sys.meta_path.insert(0, Interrupt())
    """
)


def interrupted_at_import(tmp_path, *command: str) -> subprocess.CompletedProcess:
    (tmp_path / "sitecustomize.py").write_text(INTERRUPT_AN_IMPORT, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(PROJECT)])}
    return subprocess.run(
        [sys.executable, *command], cwd=PROJECT, env=env, capture_output=True, text=True, encoding="utf-8", timeout=60
    )


def test_an_interrupt_while_a_stage_imports_is_one_line_and_exit_by_sigint(tmp_path):
    done = interrupted_at_import(tmp_path, "-m", "stages.feature_maps", "conv2d", "feature_maps.batch_size=8")
    assert done.stderr == "feature_maps@conv2d: interrupted; no output was written, rerun dvc repro\n", done.stderr
    assert done.returncode == -signal.SIGINT and not done.stdout  # Python's exit after an unhandled Ctrl-C


def test_other_processes_that_import_the_stages_keep_pythons_traceback(tmp_path):
    """The hook is for the stages' own processes: a script or a test importing ``stages`` prints what Python does."""
    done = interrupted_at_import(tmp_path, "-c", "import stages; import omegaconf")
    assert "Traceback" in done.stderr and "KeyboardInterrupt" in done.stderr
    assert "interrupted; no output was written" not in done.stderr
