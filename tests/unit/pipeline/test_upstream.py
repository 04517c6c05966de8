"""A stage run on its own names the upstream stages DVC finds out of date, whose old outputs it reads (outside
tester: `python -m stages.report report.language=ko` wrote a Korean page with English figures without a word)."""

import os
import subprocess
import sys
import time

import pytest

from convlens.pipeline.repo_lock import repository_lock
from convlens.pipeline.upstream import (
    made_alone_with,
    record_alone,
    stale_line,
    stale_stages,
    stale_upstream,
    unreproduced,
)

PARAMS = {"changed deps": {"params.yaml": {"report.language": "modified"}}}
OUTS = {"changed outs": {"outputs/figures": "modified"}}


def test_stale_means_outputs_made_before_a_change_or_not_made_for_params_yaml_as_it_is():
    status = {
        "report": [PARAMS],  # the stage that runs: never its own upstream
        "check_config": [{"changed deps": {"params.yaml": "modified"}}],  # the guard: no result read downstream
        "render_maps@conv2d": [PARAMS],  # dvc.lock's outputs, made before the change
        "render_figures": [PARAMS],
        "samples": [PARAMS, OUTS],  # rerun on its own since: for params.yaml as it is, its record says
        "feature_maps@conv2d": [PARAMS, OUTS],  # rerun on its own, with other params (outside tester round 2, 2)
        "fetch_data": [OUTS],  # outputs edited, deleted, or made on their own with params changed back since
        "metrics": [{"changed deps": {"outputs/metrics/a.json": "modified"}}],
    }
    made_alone_for_now = {"samples"}.__contains__
    assert stale_stages(status, "report", made_alone_for_now) == [
        "feature_maps@conv2d",
        "fetch_data",
        "metrics",
        "render_figures",
        "render_maps@conv2d",
    ]
    assert stale_stages({}, "report") == []


@pytest.mark.parametrize(
    ("changed", "old"),
    [
        ({"params.yaml": {"samples.indices": "modified", "dataset.limit": "modified"}}, False),  # checked, not used
        ({"outputs/data": "modified"}, False),  # the data it checks the model against
        ({"params.yaml": {"model.path": "modified"}}, True),
        ({"params.yaml": {"model": "modified"}}, True),
        ({"models/mine.keras": "modified"}, True),  # the user's model file
        ({"mine.keras": "modified"}, True),  # in the project's root
        ({"stages/fetch_model.py": "modified"}, True),
    ],
)
def test_fetch_model_output_is_old_only_where_the_model_changed(changed, old):
    """Outside tester round 2, 3: after `python -m stages.samples 'samples.indices=[0,5]'`, the docs' example named
    fetch_model, which reads samples only to refuse bad indices early (its output bytes the same)."""
    status = {"fetch_model": [{"changed deps": changed}]}
    assert stale_stages(status, "samples") == (["fetch_model"] if old else [])


def test_the_line_names_them_and_the_command():
    assert stale_line(["render_figures"], "report") == (
        "render_figures not rerun for params.yaml and its inputs as they are (dvc status): this run reads its "
        "outputs as they are; `dvc repro report` reruns it first"
    )
    six = [f"s{i}" for i in range(6)]
    assert stale_line(six, "report").startswith("s0, s1, s2, s3 and 2 more not rerun for params.yaml and their ")


def test_a_record_of_a_run_on_its_own_holds_what_it_read(tmp_path, monkeypatch):
    monkeypatch.delenv("DVC_STAGE", raising=False)
    params = {"samples": {"indices": [0, 5], "split": "train"}}
    assert not made_alone_with(tmp_path, "samples", params)  # no record
    record_alone(tmp_path, "samples", params)
    assert made_alone_with(tmp_path, "samples", {"samples": {"split": "train", "indices": [0, 5]}})
    assert not made_alone_with(tmp_path, "samples", {"samples": {"indices": [0, 7], "split": "train"}})
    monkeypatch.setenv("DVC_STAGE", "samples")  # run by DVC: dvc.lock records it, the record goes
    record_alone(tmp_path, "samples", params)
    assert not made_alone_with(tmp_path, "samples", params)


def git(root, *args):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, env=env)


def dvc(root, *args):
    subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, check=True, capture_output=True)


@pytest.fixture
def two_stages(tmp_path):
    """A DVC project: `up` writes a.txt from its param, `down` copies a.txt to b.txt; reproduced and committed."""
    root = tmp_path / "p"
    root.mkdir()
    git(root, "init", "-q")
    dvc(root, "init", "-q")
    (root / "params.yaml").write_text("up: {text: one}\n", encoding="utf-8")
    write = f"{sys.executable} -c \"import yaml; open('a.txt', 'w').write(yaml.safe_load(open('params.yaml'))['up']['text'])\""  # noqa: E501
    (root / "dvc.yaml").write_text(
        "stages:\n"
        f"  up:\n    cmd: {write}\n    params: [up.text]\n    outs: [a.txt]\n"
        "  down:\n    cmd: cp a.txt b.txt\n    deps: [a.txt]\n    outs: [b.txt]\n",
        encoding="utf-8",
    )
    dvc(root, "repro", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "run")
    return root


@pytest.mark.slow
def test_a_param_changed_upstream_and_not_rerun_is_named(two_stages):
    root = two_stages
    assert stale_upstream(root, "down") == []
    (root / "params.yaml").write_text("up: {text: two}\n", encoding="utf-8")
    assert stale_upstream(root, "down") == ["up"]
    (root / "a.txt").write_text("two", encoding="utf-8")  # rerun on its own, or edited: which params made it?
    assert stale_upstream(root, "down") == ["up"]
    record_alone(root, "up", {"up": {"text": "two"}})  # what run_stage keeps of a stage run on its own
    assert stale_upstream(root, "down", lambda stage: {"up": {"text": "two"}}) == []
    assert stale_upstream(root, "down", lambda stage: {"up": {"text": "three"}}) == ["up"]  # params.yaml moved on


@pytest.mark.slow
def test_it_asks_dvc_while_the_stage_holds_the_repository_lock(two_stages):
    """A stage holds DVC's lock for its whole run: DVC's own status would wait 3 s for it, then fail (and say []."""
    root = two_stages
    (root / "params.yaml").write_text("up: {text: two}\n", encoding="utf-8")
    with repository_lock(root):
        start = time.monotonic()
        assert stale_upstream(root, "down") == ["up"]
        assert time.monotonic() - start < 3


def test_outside_a_dvc_project_it_cannot_tell(tmp_path):
    assert stale_upstream(tmp_path, "report") == []


@pytest.mark.slow
def test_a_workspace_with_a_changed_param_or_a_deleted_output_is_not_reproduced(two_stages):
    root = two_stages
    assert unreproduced(root) == []
    (root / "params.yaml").write_text("up: {text: two}\n", encoding="utf-8")
    assert unreproduced(root) == ["up"]
    (root / "params.yaml").write_text("up: {text: one}\n", encoding="utf-8")
    (root / "b.txt").unlink()  # an interrupted run: DVC removed the stage's outputs first
    assert unreproduced(root) == ["down"]
    assert unreproduced(root.parent) is None  # not a DVC project
