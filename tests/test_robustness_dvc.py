"""Failures under `dvc repro` (DVC 3.67), in a temp git + DVC copy of the project on tiny data.

What DVC does: before running a stage it deletes that stage's outputs (cached ones stay in .dvc/cache);
when the command fails, dvc.lock is left as it was and no other stage is touched. `dvc checkout` brings
the cached outputs back, `git checkout` the uncached (git-tracked) metrics.
"""

import subprocess
import sys

import pytest
import yaml

from stages import extract_weights, fetch_model
from stages.lib.config import compose, declared_params, select
from tests.dvc_repo import make_repo, ran, sh
from tests.helpers import copy_project, tiny_overrides
from tests.test_robustness import SHIM, WEIGHT_OUTPUTS, _outputs, hidden, snapshot

pytestmark = pytest.mark.slow
DVC = [sys.executable, "-m", "dvc"]


@pytest.fixture
def dvc_project(tmp_path, tiny_assets):
    return make_repo(tmp_path / "repo", tiny_assets)


def set_param(root, key: str, value) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    params["weights"][key] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def failing(root, *args, env) -> str:
    done = subprocess.run([*DVC, *args], cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode != 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def committed_run(root, env) -> tuple[dict, bytes]:
    assert ran(sh(root, *DVC, "repro", "extract_weights", env=env)) == ["fetch_model", "extract_weights"]
    sh(root, "git", "add", "-A", env=env)
    sh(root, "git", "commit", "-qm", "good run", env=env)
    return snapshot(root / "outputs"), (root / "dvc.lock").read_bytes()


def test_a_failing_stage_under_dvc_keeps_the_lock_and_checkout_restores_the_good_outputs(request):
    root, env = request.getfixturevalue("dvc_project")
    before, lock = committed_run(root, env)

    set_param(root, "layers", ["conv9"])
    output = failing(root, "repro", "extract_weights", env=env)
    assert (
        "extract_weights: error: unknown layer 'conv9'; this model has 0:conv2d, 1:max_pooling2d, 2:conv2d_1, "
        "3:max_pooling2d_1, 4:flatten, 5:dense" in output
    )
    assert "ERROR: failed to reproduce 'extract_weights': failed to run: python -m stages.extract_weights" in output
    assert "Traceback" not in output
    assert (root / "dvc.lock").read_bytes() == lock
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
    committed_run(root, env)
    lock = (root / "dvc.lock").read_bytes()
    reference = copy_project(tmp_path / "clean")  # the clean run, standalone in another copy
    cfg = compose(reference, [*tiny_overrides(tiny_assets["model"], tiny_assets["sums"]), "weights.layers=[conv2d]"])
    for stage in (fetch_model, extract_weights):
        stage.run(select(cfg, declared_params(reference, stage.__name__.rsplit(".", 1)[1])), reference)
    clean = _outputs(reference)

    set_param(root, "layers", ["conv2d"])
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(SHIM, encoding="utf-8")
    kill = {"PYTHONPATH": str(shim), "CONVLENS_KILL_AT": "replace:3", "CONVLENS_KILL_STAGE": "extract_weights"}
    output = failing(root, "repro", "extract_weights", env={**env, **kill})
    assert "ERROR: failed to reproduce 'extract_weights'" in output
    assert (root / "dvc.lock").read_bytes() == lock
    assert hidden(root / "outputs")  # the killed run's temp dirs, hidden names DVC does not track

    assert ran(sh(root, *DVC, "repro", "extract_weights", env=env)) == ["extract_weights"]
    assert _outputs(root) == clean
    assert not hidden(root / "outputs")
    assert "Data and pipelines are up to date" in sh(root, *DVC, "status", "extract_weights", env=env)
