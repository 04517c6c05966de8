from __future__ import annotations

from pathlib import Path

import pytest

from stages.lib.config import compose, declared_params, select
from tests.helpers import PIPELINE, configure, copy_project, run_stage, tiny_model, write_tiny_data


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """No test sees the real mirror, the user's caches or a DVC stage environment by accident."""
    monkeypatch.setenv("CONVLENS_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("CONVLENS_MIRROR", raising=False)
    monkeypatch.delenv("DVC_STAGE", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)


@pytest.fixture(scope="session")
def tiny_assets(tmp_path_factory) -> dict:
    """A tiny mirror (IDX files) and a tiny saved CNN, made once per session."""
    base = tmp_path_factory.mktemp("assets")
    sums = write_tiny_data(base / "mirror")
    model_path = base / "tiny.keras"
    tiny_model().save(model_path)
    return {"mirror": base / "mirror", "model": model_path, "sums": sums}


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
