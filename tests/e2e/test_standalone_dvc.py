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
    assert "not rerun since" not in report(root, env)  # everything up to date: nothing to say

    said = report(root, env, "report.language=ko")
    (line,) = [line for line in said.splitlines() if "not rerun since" in line]
    assert line.startswith("report: render_dataset@trained, render_dataset@untrained, render_figures, ")
    assert line.endswith("this run reads their old outputs; `dvc repro report` reruns them first")

    page = (root / "outputs" / "report" / "index.html").read_text(encoding="utf-8")
    note = "params.yaml이나 입력이 바뀐 뒤 render_dataset@trained, render_dataset@untrained, "
    assert note in page.split("<section ")[1]  # at the top: the page's first section

    dvc(root, env, "repro", "report")
    assert "not rerun since" not in report(root, env)
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
