"""Sharing results through a DVC remote, as docs/experiments.md's "Sharing results" says: one clone computes and
pushes, a second clone pulls and is up to date without recomputing anything."""

from __future__ import annotations

import pytest

from tests.support.dvc_repo import commit, copy_repo, dvc, ran, sh

pytestmark = pytest.mark.slow


def test_push_from_one_clone_pull_into_another_without_recomputing(tmp_path, reproduced_repo):
    """The first clone's results: ``reproduced_repo``'s ``dvc repro`` (once per test run), copied to ``a/``."""
    root, env = copy_repo(reproduced_repo["template"], tmp_path / "a")
    out = reproduced_repo["repro"]
    assert "fetch_model" in ran(out) and "Use `dvc push` to send your updates to remote storage" in out

    remote = tmp_path / "dvc-remote"  # a local directory; S3, GCS or SSH are the same commands with their URL
    dvc(root, env, "remote", "add", "-d", "storage", str(remote))
    commit(root, env, "results, and where they are shared")
    pushed = dvc(root, env, "push")
    assert "pushed" in pushed and any(remote.rglob("*"))

    clone = tmp_path / "b" / "project"
    sh(tmp_path, "git", "clone", "-q", str(root), str(clone), env=env)
    assert not (clone / "outputs" / "models" / "trained.keras").exists()
    pulled = dvc(clone, env, "pull")
    assert "Traceback" not in pulled
    for path in ("outputs/models/trained.keras", "outputs/feature_maps/conv2d/trained.npy", "models/tiny.keras"):
        assert (clone / path).read_bytes() == (root / path).read_bytes(), path
    assert "Data and pipelines are up to date." in dvc(clone, env, "status")
    again = dvc(clone, env, "repro")
    assert ran(again) == [] and "Data and pipelines are up to date." in again
