"""A stage run on its own after a change upstream of it says which stages it did not rerun (outside tester:
`python -m stages.report report.language=ko` after an experiment wrote a Korean page over English figures, silently)."""

import sys

import pytest

from tests.support.dvc_repo import dvc, sh

pytestmark = pytest.mark.slow


def report(root, env, *overrides: str) -> str:
    return sh(root, sys.executable, "-m", "stages.report", *overrides, env=env)


def test_the_report_on_its_own_names_the_figures_it_did_not_redraw(good_repo):
    root, env = good_repo
    assert "not rerun for" not in report(root, env)  # everything up to date: nothing to say

    said = report(root, env, "report.language=ko")
    (line,) = [line for line in said.splitlines() if "not rerun for" in line]
    assert line.startswith("report: render_dataset@trained, render_dataset@untrained, render_figures, ")
    assert line.endswith("this run reads their outputs as they are; `dvc repro report` reruns them first")

    page = (root / "outputs" / "report" / "index.html").read_text(encoding="utf-8")
    note = "지금의 params.yaml과 입력으로 render_dataset@trained, render_dataset@untrained, "
    assert note in page.split("<section ")[1]  # at the top: the page's first section

    dvc(root, env, "repro", "report")
    assert "not rerun for" not in report(root, env)
    assert "단독으로 실행해" not in (root / "outputs" / "report" / "index.html").read_text(encoding="utf-8")


def test_compare_refuses_a_workspace_whose_results_are_not_its_params(good_repo):
    """Outside tester: `python -m convlens params untrained.seed=5` without `dvc repro`, then `compare HEAD`, wrote a
    page saying the seed changed nothing: every number was still seed 42's."""
    root, env = good_repo
    sh(root, sys.executable, "-m", "convlens", "params", "untrained.seed=5", env=env)
    done = sh(root, sys.executable, "-m", "convlens", "compare", "HEAD", env=env, check=False)
    (line,) = [line for line in done.splitlines() if line.startswith("compare: error: ")]
    assert line.startswith("compare: error: the workspace is not reproduced: dvc status finds build_untrained, ")
    assert line.endswith("run dvc repro first, or compare two runs (dvc exp show names them)")
    assert not (root / "outputs" / "compare").exists()

    sh(root, "git", "checkout", "--", "params.yaml", "outputs/composed_conf.yaml", env=env)  # back to what made them
    assert "0 of " in sh(root, sys.executable, "-m", "convlens", "compare", "HEAD", env=env)


def test_the_docs_example_warns_of_nothing_and_params_changed_since_are_named(good_repo):
    """configuration.md's example (samples on their own, then feature maps) names nothing: samples ran for
    params.yaml as it is, fetch_model only checks them (outside tester round 2, 3). Composed back to conf/'s samples
    since, the samples on disk are not params.yaml's: named (round 2, 2)."""
    root, env = good_repo

    def feature_maps() -> str:
        return sh(root, sys.executable, "-m", "stages.feature_maps", "conv2d_1", env=env)

    sh(root, sys.executable, "-m", "stages.samples", "samples.indices=[0,1]", env=env)
    assert "not rerun for" not in feature_maps()
    sh(root, sys.executable, "-m", "convlens", "params", env=env)  # back to conf/'s samples.indices: [0]
    (line,) = [line for line in feature_maps().splitlines() if "not rerun for" in line]
    assert line.startswith("feature_maps@conv2d_1: samples not rerun for params.yaml and its inputs as they are")
