from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import pytest

from convlens.pipeline.config import compose, declared_params, select
from tests.support.dvc_repo import commit, copy_repo, dvc, make_repo
from tests.support.helpers import PIPELINE, configure, copy_project, made_once, run_stage, tiny_model, write_tiny_data
from tests.support.readme_run import run_readme

# The README's workflows (``readme_run``, minutes) and the tests that check what they left: first, on one worker.
LONGEST_FIRST = ("test_readme.py", "test_experiments.py")


def pytest_collection_modifyitems(config, items):
    """The end-to-end (``slow``) tests first, the longest first of all; the rest in their usual order.

    Under pytest-xdist's ``--dist worksteal`` (``make test``) each worker is given one contiguous half of this
    order, and a worker that runs out takes the later half of the other's queue: the longest test starts at once
    (it sets the suite's least wall time), the other worker works through the short tests, then takes over
    end-to-end tests until both are done.
    """
    first = {name: n for n, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: (first.get(item.path.name, len(first)), item.get_closest_marker("slow") is None))
    durations = mutmut_durations(config.rootpath)
    if durations:
        items.sort(key=lambda item: durations.get(item.nodeid, 0.0))


def mutmut_durations(root: Path) -> dict[str, float]:
    """Under ``make mutate`` (run in ``mutants/``), each test's duration from mutmut's stats run; else ``{}``.

    mutmut runs the tests that cover a mutant with ``-x`` in collection order: run the fastest first, a killed
    mutant costs its fastest failing test instead of every stage-level test collected before it.
    """
    stats = root / "mutmut-stats.json"
    if root.name != "mutants" or not stats.is_file():
        return {}
    return json.loads(stats.read_text(encoding="utf-8"))["duration_by_test"]


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """No test sees the real mirror, the user's caches or a DVC stage environment by accident."""
    monkeypatch.setenv("CONVLENS_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("CONVLENS_MIRROR", raising=False)
    monkeypatch.delenv("DVC_STAGE", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)


@contextmanager
def isolated(base: Path):
    """For a session fixture, what ``_isolated_env`` gives a test (session fixtures are set up before it)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CONVLENS_CACHE", str(base / "cache"))
        for name in ("CONVLENS_MIRROR", "DVC_STAGE", "DVC_ROOT"):
            env.delenv(name, raising=False)
        yield


@pytest.fixture(scope="session")
def tiny_assets(tmp_path_factory) -> dict:
    """A tiny mirror (IDX files) and a tiny saved CNN, made once per run (shared by the xdist workers)."""

    def make(base: Path) -> dict:
        sums = write_tiny_data(base / "mirror")
        tiny_model().save(base / "tiny.keras")
        return {"mirror": str(base / "mirror"), "model": str(base / "tiny.keras"), "sums": sums}

    made = made_once(tmp_path_factory, "assets", make)
    return {"mirror": Path(made["mirror"]), "model": Path(made["model"]), "sums": made["sums"]}


@pytest.fixture(scope="session")
def reproduced_repo(tmp_path_factory, tiny_assets) -> dict:
    """``make_repo`` + ``dvc repro`` + ``git commit``, once per run: the DVC tests copy it (``copy_repo``) instead of
    each reproducing the whole pipeline (TensorFlow in several stage processes) again.

    ``{"template": folder holding project/ and shared/mirror, "repro": what the first dvc repro printed}``.
    """

    def make(base: Path) -> dict:
        with isolated(base):
            root, repo_env = make_repo(base, tiny_assets)
            output = dvc(root, repo_env, "repro")
            commit(root, repo_env, "good run")
        return {"template": str(base), "repro": output}

    made = made_once(tmp_path_factory, "reproduced_repo", make)
    return {"template": Path(made["template"]), "repro": made["repro"]}


@pytest.fixture(scope="session")
def readme_run(tmp_path_factory, reproduced_repo) -> dict:
    """The README's command blocks, run once per test run in a copy of ``reproduced_repo``
    (``tests/support/readme_run.py``): ``{"template", "returncode", "output", "expected"}``; tests copy ``template``."""

    def make(base: Path) -> dict:
        with isolated(base):
            return run_readme(reproduced_repo["template"], base)

    made = made_once(tmp_path_factory, "readme_run", make)
    return {**made, "template": Path(made["template"])}


@pytest.fixture
def readme_repo(tmp_path, readme_run) -> tuple[Path, dict]:
    """``(root, env)``: a copy of the repository as the README's last command left it."""
    return copy_repo(readme_run["template"], tmp_path)


@pytest.fixture
def good_repo(tmp_path, reproduced_repo) -> tuple[Path, dict]:
    """``(root, env)``: a copy of ``reproduced_repo`` at ``tmp_path/project``, its ``shared/mirror`` beside it."""
    return copy_repo(reproduced_repo["template"], tmp_path)


@pytest.fixture
def project(tmp_path, tiny_assets, monkeypatch) -> Path:
    """A copy of the project whose conf/ and params.yaml point at the tiny assets (data via ``$CONVLENS_MIRROR``)."""
    monkeypatch.setenv("CONVLENS_MIRROR", str(tiny_assets["mirror"]))
    root = copy_project(tmp_path / "project")
    configure(root, str(tiny_assets["model"]), tiny_assets["sums"])
    return root


@pytest.fixture
def composed(project, tiny_assets):
    """``composed(*overrides)``: the whole config, composed for the tiny assets."""

    def make(*overrides: str):
        return compose(project, list(overrides))

    return make


@pytest.fixture
def stage_config(project, composed):
    """``stage_config(stage, *overrides)``: the stage's declared params, composed for the tiny assets."""

    def make(stage: str, *overrides: str):
        return select(composed(*overrides), declared_params(project, stage))

    return make


@pytest.fixture
def run_pipeline(stage_config, composed):
    """``run_pipeline(root, *overrides, stages=PIPELINE)``: the stages in process, as ``dvc repro`` orders them."""

    def run(root, *overrides, stages=PIPELINE):
        for module in stages:
            run_stage(module, stage_config, composed, root, *overrides)

    return run
