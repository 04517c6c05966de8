"""Failures under `dvc repro` (DVC 3.67), in a temp git + DVC copy of the project on tiny data.

What DVC does: before running a stage it deletes that stage's outputs (cached ones stay in .dvc/cache);
when the command fails, dvc.lock is left as it was and no other stage is touched. `dvc checkout` brings
the cached outputs back, `git checkout` the uncached (git-tracked) metrics.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from convlens.pipeline.config import compose, declared_params, select
from convlens.pipeline.files import SCRATCH
from stages import extract_weights, fetch_model
from tests.support.dvc_repo import commit, copy_repo, make_repo, ran, sh
from tests.support.helpers import (
    WEIGHT_OUTPUTS,
    copy_project,
    hidden,
    kill_shim_env,
    made_once,
    snapshot,
    staging_areas,
    tiny_overrides,
    weight_outputs,
)

pytestmark = pytest.mark.slow
DVC = [sys.executable, "-m", "dvc"]


@pytest.fixture(scope="session")
def weights_repo(tmp_path_factory, tiny_assets) -> dict:
    """``make_repo`` + ``dvc repro extract_weights`` + ``git commit``, once per test run (the tests copy it):
    ``{"template": its folder, "repro": what that dvc repro printed}``."""

    def make(base):
        with pytest.MonkeyPatch.context() as patch:  # what _isolated_env gives a test
            patch.setenv("CONVLENS_CACHE", str(base / "cache"))
            for name in ("CONVLENS_MIRROR", "DVC_STAGE", "DVC_ROOT"):
                patch.delenv(name, raising=False)
            root, env = make_repo(base, tiny_assets)
            output = sh(root, *DVC, "repro", "extract_weights", env=env)
            commit(root, env, "good run")
        return {"template": str(base), "repro": output}

    made = made_once(tmp_path_factory, "weights_repo", make)
    return {"template": Path(made["template"]), "repro": made["repro"]}


@pytest.fixture
def dvc_project(tmp_path, weights_repo):
    """A copy of ``weights_repo``: extract_weights and what it needs, reproduced and committed."""
    return copy_repo(weights_repo["template"], tmp_path / "repo")


def set_param(root, key: str, value) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    params["weights"][key] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def failing(root, *args, env) -> str:
    done = subprocess.run([*DVC, *args], cwd=root, env=env, capture_output=True, text=True, encoding="utf-8")
    assert done.returncode != 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    return done.stdout + done.stderr


def killed(stage: str, output: str) -> bool:
    """DVC reports the stage killed by SIGKILL: ``-9`` where the shell execs the command (bash), ``137`` where the
    shell stays and reports its child's signal (dash, ``/bin/sh``, when ``SHELL`` is unset). A ``foreach``
    instance (``render_dataset@trained``) runs its item as the command's argument."""
    name, _, item = stage.partition("@")
    command = rf"python -m stages\.{name}" + (f" {re.escape(item)}" if item else "")
    line = rf"ERROR: failed to reproduce '{re.escape(stage)}': failed to run: {command}, exited with (-9|137)\n"
    return re.search(line, output) is not None


def failed_stage_entry(root, lock: bytes, stage: str = "extract_weights") -> bool:
    """DVC left the failed stage's entry in dvc.lock as it was (the stages before it may have run)."""
    now = yaml.safe_load((root / "dvc.lock").read_text(encoding="utf-8"))["stages"]
    return now[stage] == yaml.safe_load(lock)["stages"][stage]


def committed_run(root) -> tuple[dict, bytes]:
    """The good run ``dvc_project`` starts from (``weights_repo``): its outputs and its dvc.lock."""
    assert not staging_areas(root)
    return snapshot(root / "outputs"), (root / "dvc.lock").read_bytes()


def test_a_failing_stage_under_dvc_keeps_the_lock_and_checkout_restores_the_good_outputs(request, weights_repo):
    assert ran(weights_repo["repro"]) == [  # the good run: `dvc repro extract_weights` in a fresh repo
        "check_config",
        "fetch_data",  # fetch_model checks the model's input against the data
        "fetch_model",
        "extract_weights",
    ]
    root, env = request.getfixturevalue("dvc_project")
    before, lock = committed_run(root)

    # a layer the model has (fetch_model resolves the names) but that has no kernel: extract_weights fails
    set_param(root, "layers", ["max_pooling2d"])
    output = failing(root, "repro", "extract_weights", env=env)
    assert (
        "extract_weights: error: layer 'max_pooling2d' has no kernel; choose layers like Conv2D or Dense in "
        "weights.layers" in output
    )
    assert "ERROR: failed to reproduce 'extract_weights': failed to run: python -m stages.extract_weights" in output
    assert "Traceback" not in output
    assert failed_stage_entry(root, lock)  # check_config ran (and passed) before it
    outputs = root / "outputs"
    assert (outputs / "models" / "trained.keras").read_bytes() == before["models/trained.keras"]  # other stage
    assert not any((outputs / name).exists() for name in WEIGHT_OUTPUTS)  # DVC deleted them before the run
    assert not hidden(outputs)

    sh(root, "git", "checkout", "--", "params.yaml", "outputs/metrics", env=env)
    sh(root, *DVC, "checkout", "extract_weights", env=env)
    assert snapshot(outputs) == before
    assert "Data and pipelines are up to date" in sh(root, *DVC, "status", "extract_weights", env=env)


def test_sigkill_under_dvc_repro_then_repro_equals_a_clean_run(request, tiny_assets, tmp_path):
    root, env = request.getfixturevalue("dvc_project")
    _, lock = committed_run(root)
    reference = copy_project(tmp_path / "clean")  # the clean run, standalone in another copy
    cfg = compose(reference, [*tiny_overrides(tiny_assets["model"], tiny_assets["sums"]), "weights.layers=[conv2d]"])
    for stage in (fetch_model, extract_weights):
        stage.run(select(cfg, declared_params(reference, stage.__name__.rsplit(".", 1)[1])), reference)
    clean = weight_outputs(reference)

    set_param(root, "layers", ["conv2d"])
    output = failing(root, "repro", "extract_weights", env={**env, **kill_shim_env("replace:3", "extract_weights")})
    assert killed("extract_weights", output)
    assert failed_stage_entry(root, lock)
    assert not hidden(root / "outputs") and not stray(root)  # nothing DVC or git can see ...
    areas = staging_areas(root)
    assert areas and all(area.parent == root / SCRATCH for area in areas)  # ... the kill's leftovers are here

    assert ran(sh(root, *DVC, "repro", "extract_weights", env=env)) == ["extract_weights"]  # checked when killed
    assert weight_outputs(root) == clean
    assert not hidden(root / "outputs") and not staging_areas(root)
    assert "Data and pipelines are up to date" in sh(root, *DVC, "status", "extract_weights", env=env)


def stray(root) -> list[str]:
    """What ``git status --porcelain --ignored outputs`` shows beyond DVC's outputs and git's tracked files."""
    return [
        line
        for line in sh(root, "git", "status", "--porcelain", "--ignored", "outputs", env={**os.environ}).splitlines()
        if any(part.startswith(".") for part in line[3:].rstrip("/").split("/"))
    ]


def test_a_killed_render_restored_from_the_run_cache_leaves_no_stray_files(request, tmp_path):
    """Issue 9: a killed render_figures (now render_dataset@<model>) left outputs/figures/.dataset.XXXX/ that survived
    DVC restoring the stage from its run cache (no write came to clean it). Staging in .dvc/tmp leaves nothing DVC or
    git can see."""
    root, env = request.getfixturevalue("good_repo")  # the whole pipeline reproduced and committed
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    params["render"]["heatmap_cmap"] = "magma"  # render_dataset's alone
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True), encoding="utf-8")

    stage = "render_dataset@trained"
    output = failing(root, "repro", stage, env={**env, **kill_shim_env("replace:1", stage)})
    assert killed(stage, output)
    assert not (root / "outputs" / "figures" / "dataset" / "trained").exists()  # killed before its rename
    assert staging_areas(root) and not hidden(root / "outputs") and not stray(root)

    sh(root, "git", "checkout", "--", "params.yaml", env=env)
    output = sh(root, *DVC, "repro", stage, env=env)
    assert f"Stage '{stage}' is cached - skipping run, checking out outputs" in output
    assert ran(output) == ["check_config"]  # its mark persists while it runs: DVC keeps no run cache for it
    assert not hidden(root / "outputs") and not stray(root)
    assert sh(root, "git", "status", "--porcelain", env=env) == ""
    assert "Data and pipelines are up to date" in sh(root, *DVC, "status", stage, env=env)


def test_an_interrupted_metrics_stage_loses_its_git_tracked_metrics_and_git_checkout_restores_them(request, tmp_path):
    """The merged metric files are ``cache: false``: DVC deletes them before the run and ``dvc checkout`` has no copy;
    git has. One line brings them back."""
    root, env = request.getfixturevalue("good_repo")  # the whole pipeline reproduced and committed
    metrics = root / "outputs" / "metrics"
    before = {"dataset": snapshot(metrics / "dataset"), "dataset.json": (metrics / "dataset.json").read_bytes()}

    output = failing(root, "repro", "-f", "-s", "metrics", env={**env, **kill_shim_env("replace:1", "metrics")})
    assert killed("metrics", output)
    assert " D outputs/metrics/dataset.json" in sh(root, "git", "status", "--porcelain", env=env)
    status = sh(root, *DVC, "status", "metrics", env=env)
    assert "deleted:            outputs/metrics/dataset.json" in status
    sh(root, *DVC, "checkout", "metrics", env=env)
    assert not (metrics / "dataset.json").exists()  # DVC cannot bring back what it does not cache

    sh(root, "git", "checkout", "--", "outputs/metrics", env=env)
    assert {"dataset": snapshot(metrics / "dataset"), "dataset.json": (metrics / "dataset.json").read_bytes()} == before
    assert "Data and pipelines are up to date" in sh(root, *DVC, "status", "metrics", env=env)
    assert sh(root, "git", "status", "--porcelain", env=env) == ""


@pytest.mark.parametrize("cut", ["empty", "mid-line", "after-a-stage"])
def test_a_damaged_dvc_lock_is_named_by_dvc_and_git_checkout_restores_it(request, cut):
    """Ctrl-C twice during ``dvc repro`` can leave dvc.lock cut short (DVC's file, DVC's message)."""
    root, env = request.getfixturevalue("dvc_project")
    before, lock = committed_run(root)
    text = lock.decode()
    damaged = {
        "empty": "",
        "mid-line": text[: text.index("    outs:") + 6],
        "after-a-stage": text[: text.index("\n  extract_weights:") + 1],
    }
    (root / "dvc.lock").write_text(damaged[cut], encoding="utf-8")
    done = subprocess.run([*DVC, "status"], cwd=root, env=env, capture_output=True, text=True, encoding="utf-8")
    message = {
        "empty": "'./dvc.lock' validation failed.",
        "mid-line": "'./dvc.lock' is invalid.",
        "after-a-stage": "extract_weights:\n\tchanged deps:",
    }
    assert message[cut] in done.stdout + done.stderr and "Traceback" not in done.stderr
    assert done.returncode == (0 if cut == "after-a-stage" else 1), done.stdout + done.stderr

    sh(root, "git", "checkout", "--", "dvc.lock", env=env)
    assert "Data and pipelines are up to date" in sh(root, *DVC, "status", "extract_weights", env=env)
    (root / "dvc.lock").unlink()  # or, the outputs known good: rebuild the lock from them
    sh(root, *DVC, "commit", "-f", "check_config", "fetch_data", "fetch_model", "extract_weights", env=env)
    assert (root / "dvc.lock").read_bytes() == lock and snapshot(root / "outputs") == before


def default_sigint() -> None:
    """In the child before ``dvc`` starts: Ctrl-C's default action, as a terminal gives it. The test process may
    hold SIGINT ignored (a pytest worker in which DVC ran a stage in-process: DVC ignores SIGINT while a stage runs
    and restores it only if the old handler was truthy, which ``SIG_DFL`` is not), and an ignored SIGINT is
    inherited by ``dvc`` and its stages, which would then never see the Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Paused:
    """``dvc …`` started in the background, its stage ``stage`` paused before it renames its first output (the
    kill shim's pause): ``wait()`` until the stage is there, ``go()`` to let it finish."""

    def __init__(self, root, env, stage: str, folder: Path, *args: str):
        self.folder = folder
        folder.mkdir()
        shim = {**kill_shim_env("replace:1", stage), "CONVLENS_PAUSE_DIR": str(folder)}
        self.proc = subprocess.Popen(
            [*DVC, *args],
            cwd=root,
            env={**env, **shim},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            start_new_session=True,
            preexec_fn=default_sigint,
        )

    def wait(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not (self.folder / "paused").exists():
            assert self.proc.poll() is None, self.proc.communicate()[0]
            assert time.monotonic() < deadline, "the stage never reached its pause"
            time.sleep(0.1)

    def go(self) -> tuple[int, str]:
        (self.folder / "go").touch()
        output = self.proc.communicate(timeout=300)[0]
        return self.proc.returncode, output


def locked_params(root, stage: str) -> dict:
    return yaml.safe_load((root / "dvc.lock").read_text(encoding="utf-8"))["stages"][stage]["params"]["params.yaml"]


def test_a_dvc_exp_run_while_a_stage_runs_is_refused_and_the_lock_records_the_params_it_ran_with(request, tmp_path):
    """Issue 28 §1: DVC releases its lock while a stage's command runs; a `dvc exp run` started then rewrote
    params.yaml (from conf/) before failing, and the running stage was recorded under params it never saw."""
    root, env = request.getfixturevalue("dvc_project")
    set_param(root, "percentiles", [1, 50, 99])  # the user's edit, then `dvc repro`
    edited = (root / "params.yaml").read_bytes()
    repro = Paused(root, env, "extract_weights", tmp_path / "pause", "repro", "extract_weights")
    repro.wait()

    output = failing(root, "exp", "run", "-S", "render.map_cmap=gray", env=env)
    assert "ERROR: Unable to acquire lock" in output and not ran(output)
    assert (root / "params.yaml").read_bytes() == edited  # not recomposed from conf/
    assert sh(root, "git", "diff", "--cached", "--name-only", env=env) == ""  # nothing staged either

    code, output = repro.go()
    assert code == 0, output
    assert ran(output) == ["check_config", "extract_weights"]
    assert locked_params(root, "extract_weights")["weights"]["percentiles"] == [1, 50, 99]
    assert "Data and pipelines are up to date" in sh(root, *DVC, "status", "extract_weights", env=env)


def test_params_yaml_changed_while_a_stage_runs_fails_the_stage_and_nothing_is_recorded(request, tmp_path):
    """The stage checks, before DVC records it, that params.yaml still holds the params it ran with (a hand edit,
    an editor's save, anything the lock cannot stop)."""
    root, env = request.getfixturevalue("dvc_project")
    _, lock = committed_run(root)
    set_param(root, "percentiles", [1, 50, 99])
    repro = Paused(root, env, "extract_weights", tmp_path / "pause", "repro", "extract_weights")
    repro.wait()
    set_param(root, "percentiles", [5, 95])

    code, output = repro.go()
    assert code != 0 and "Traceback" not in output
    assert (
        "extract_weights: error: params.yaml changed while this stage ran (weights.percentiles [1, 50, 99] → [5, 95]),"
        " so its outputs do not match the params DVC would record; nothing is recorded: check params.yaml, then run "
        "`dvc repro` again" in output
    )
    assert failed_stage_entry(root, lock)
    assert "extract_weights:" in sh(root, *DVC, "status", "extract_weights", env=env)  # not "up to date"
    assert ran(sh(root, *DVC, "repro", "extract_weights", env=env)) == ["check_config", "extract_weights"]
    assert locked_params(root, "extract_weights")["weights"]["percentiles"] == [5, 95]


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGKILL"], ids=["ctrl-c", "killed"])
def test_an_interrupted_dvc_exp_run_is_undone_by_git_checkout_head(request, tmp_path, signal_name):
    """Issue 28 §2: `dvc exp run` stages params.yaml in git's index, and with core.autostage dvc.lock too. Killed,
    it leaves them staged, so `git checkout -- params.yaml` brings back the interrupted experiment's params;
    `git checkout HEAD -- …` restores index and workspace from the last commit, after Ctrl-C as after a kill."""
    root, env = request.getfixturevalue("dvc_project")
    before, lock = committed_run(root)
    params = (root / "params.yaml").read_bytes()
    args = ("exp", "run", "-S", "weights.percentiles=[1,99]", "extract_weights")
    run = Paused(root, env, "extract_weights", tmp_path / "pause", *args)
    run.wait()
    os.killpg(run.proc.pid, getattr(signal, signal_name))
    run.proc.communicate(timeout=180)  # DVC cleans up after Ctrl-C; on a loaded 2-core machine that took over 60 s
    assert yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))["weights"]["percentiles"] == [1, 99]

    if signal_name == "SIGKILL":
        assert {"params.yaml", "dvc.lock"} <= set(sh(root, "git", "diff", "--cached", "--name-only", env=env).split())
        sh(root, "git", "checkout", "--", "params.yaml", env=env)  # the old advice: the index's copy
        assert yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))["weights"]["percentiles"] == [1, 99]

    # outside tester 5: killed, DVC leaves HEAD detached at the commit (it restores the branch after Ctrl-C)
    detached = sh(root, "git", "symbolic-ref", "-q", "HEAD", env=env, check=False).strip() != "refs/heads/main"
    assert detached == (signal_name == "SIGKILL")
    if detached:
        sh(root, "git", "checkout", "-q", "main", env=env)  # docs/robustness.md: back on the branch first
    sh(root, "git", "checkout", "HEAD", "--", "params.yaml", "dvc.lock", "outputs", env=env)  # docs/robustness.md
    sh(root, *DVC, "checkout", "extract_weights", env=env)  # `dvc checkout`: this repo has run up to extract_weights
    assert (root / "params.yaml").read_bytes() == params and (root / "dvc.lock").read_bytes() == lock
    assert snapshot(root / "outputs") == before
    assert sh(root, "git", "status", "--porcelain", env=env) == ""
    assert sh(root, "git", "symbolic-ref", "HEAD", env=env).strip() == "refs/heads/main"
    assert "Data and pipelines are up to date" in sh(root, *DVC, "status", "extract_weights", env=env)
