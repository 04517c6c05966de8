"""Sharing results through a DVC remote, as docs/experiments.md's "Sharing results" says: one clone computes and
pushes, a second clone pulls and is up to date without recomputing anything; and its "Experiments across machines":
an experiment pushed from one clone with ``dvc exp push``, pulled into another with ``dvc exp pull``."""

from __future__ import annotations

import csv
import hashlib
import re
import sys
from pathlib import Path

import pytest

from tests.support.dvc_repo import commit, copy_repo, dvc, ran, repo_env, sh

pytestmark = pytest.mark.slow

FIGURE = "outputs/figures/feature_maps/conv2d/trained_sample_0.png"  # what render.map_cmap changes, and the report
REPORT = "outputs/report/index.html"


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


def cached(root: Path, md5: str) -> Path:
    """Where DVC keeps a file of this md5 in the cache ``root`` (a DVC remote directory has the same layout)."""
    return root / "files" / "md5" / md5[:2] / md5[2:]


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_an_experiment_pushed_from_one_machine_is_pulled_listed_and_compared_on_another(tmp_path, reproduced_repo):
    """docs/experiments.md's "Experiments across machines" (issue 25 §6): a bare git repository stands for the team's
    git server, a local directory for its DVC remote. Machine A runs an experiment and ``dvc exp push``es it (the
    commit to git, its outputs to the DVC remote); machine B, a clone of the server without the data mirror, ``dvc
    exp pull``s it, lists it, compares it with the last commit and applies it, and no stage runs there.

    The experiment is the page's ``seed7`` made cheap: ``render.map_cmap=gray`` reruns only the feature-map figures
    and the report (~15 s), where a new untrained model reruns most stages, TensorFlow in each (~1 min)."""
    origin, storage = tmp_path / "origin.git", tmp_path / "dvc-storage"
    sh(tmp_path, "git", "init", "-q", "--bare", "-b", "main", str(origin), env=repo_env())

    # machine A, once: the remotes, committed, and the commit the experiments start from pushed with its outputs
    a, env = copy_repo(reproduced_repo["template"], tmp_path / "a")
    sh(a, "git", "remote", "add", "origin", str(origin), env=env)
    dvc(a, env, "remote", "add", "-d", "storage", str(storage))
    sh(a, "git", "commit", "-qm", "the team's DVC remote", "--", ".dvc/config", env=env)
    sh(a, "git", "push", "-q", "origin", "main", env=env)
    dvc(a, env, "push")
    head_figure = md5_of(a / FIGURE)
    assert cached(storage, head_figure).exists()

    # machine A: the experiment, run and pushed
    assert "render_maps@conv2d" in ran(dvc(a, env, "exp", "run", "-n", "gray", "-S", "render.map_cmap=gray"))
    pushed = dvc(a, env, "exp", "push", "origin", "gray")
    assert "Pushed experiment gray to Git remote 'origin'." in pushed and "files uploaded" in pushed
    assert re.search(r"refs/exps/.*/gray$", sh(a, "git", "ls-remote", str(origin), env=env), flags=re.M)
    md5s = {path: md5_of(a / path) for path in (FIGURE, REPORT)}  # the experiment's, in A's workspace after the run
    assert md5s[FIGURE] != head_figure
    assert all(cached(storage, md5).exists() for md5 in md5s.values())  # its outputs, in the team's DVC remote

    # machine B: a clone of the server; no mirror beside it, so a stage that needs the data could not run
    b = tmp_path / "b" / "project"
    sh(tmp_path, "git", "clone", "-q", str(origin), str(b), env=env)
    assert not (b.parent / "shared").exists()
    assert re.search(r"^\s+gray$", dvc(b, env, "exp", "list", "origin"), flags=re.M)
    pulled = dvc(b, env, "exp", "pull", "origin", "gray")
    assert "Pulled experiment '['gray']' from Git remote 'origin'." in pulled
    b_cache = b / ".dvc" / "cache"
    assert all(cached(b_cache, md5).exists() for md5 in md5s.values())  # into the cache,
    assert not (b / FIGURE).exists() and not (b / REPORT).exists()  # not into the workspace

    table = sh(b, sys.executable, "-m", "convlens", "experiments", env=env).splitlines()
    rows = {line.split()[0]: line.split() for line in table if line.startswith(("main ", "gray "))}
    assert "viridis" in rows["main"] and "gray" in rows["gray"][1:]  # the param that differs, as each run had it
    assert rows["main"][-4:] == rows["gray"][-4:]  # the same metrics: only figures changed

    sh(b, sys.executable, "-m", "convlens", "compare", "HEAD", "gray", env=env)
    compare = b / "outputs" / "compare"
    rows = list(csv.DictReader((compare / "HEAD_vs_gray.csv").open(encoding="utf-8")))
    assert ("untrained", "conv2d", "std") in {(r["model"], r["layer"], r["statistic"]) for r in rows}
    assert all(r["a"] == r["b"] for r in rows)
    page = (compare / "HEAD_vs_gray.html").read_text(encoding="utf-8")
    shown = set(re.findall(r"([\w./-]+\.png): left HEAD, right gray", page))
    assert FIGURE.removeprefix("outputs/figures/") in shown  # HEAD's beside gray's, HEAD's read from the DVC remote:
    assert not cached(b_cache, head_figure).exists()  # B's cache never held it
    assert shown and all(f.startswith("feature_maps/") for f in shown)  # the only figures the colour map changes

    dvc(b, env, "exp", "apply", "gray")
    for path in (FIGURE, REPORT, "outputs/models/untrained.keras", "params.yaml", "dvc.lock"):
        assert (b / path).read_bytes() == (a / path).read_bytes(), path
    assert "Data and pipelines are up to date." in dvc(b, env, "status")
    again = dvc(b, env, "repro")
    assert ran(again) == [] and "Data and pipelines are up to date." in again
