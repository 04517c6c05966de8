"""`make docs-figures` (bench/docs_figures.py): which run's output each docs image is, and the copy that refuses the
wrong workspace."""

from __future__ import annotations

from pathlib import Path

import yaml

from bench.docs_figures import FIGURES, FIGURES_DIR, RUNS, copy, refusal
from tests.support.helpers import PROJECT

SCREENSHOTS = {"report-en.png", "report-ko.png"}  # make screenshots' (tests/e2e/test_report_browser.py)


def test_the_table_names_every_docs_image_and_each_is_on_a_docs_page():
    pages = "".join(p.read_text(encoding="utf-8") for p in [PROJECT / "README.md", *(PROJECT / "docs").glob("*.md")])
    names = [name for _, _, name in FIGURES]
    assert len(set(names)) == len(names)
    images = {p.name for p in (PROJECT / "docs").iterdir() if p.suffix in (".png", ".gif")}
    assert set(names) == images - SCREENSHOTS
    assert [n for n in names if f"{n})" not in pages] == []  # each one a link or image of some page
    assert {run for run, _, _ in FIGURES} == set(RUNS)


def workspace(root: Path, **params: object) -> Path:
    """A workspace of the default run's params.yaml, ``params`` updating its sections, and an empty docs/."""
    (root / "docs").mkdir(parents=True)
    composed = {"model": {"name": "book"}, "samples": {"split": "train", "indices": [0]}, "analyses": {"name": "light"}}
    for key, value in params.items():
        composed[key].update(value)
    (root / "params.yaml").write_text(yaml.safe_dump(composed), encoding="utf-8")
    return root


def test_another_runs_workspace_is_refused_naming_the_command(tmp_path):
    root = workspace(tmp_path / "book")
    assert refusal(root, "full") == (
        "docs-figures: params.yaml has analyses.name=light, not full's full: run dvc exp run -S analyses=full "
        "-S samples.split=test -S 'samples.indices=[0,1,2,3,6,12]'"
    )
    assert refusal(workspace(tmp_path / "t", model={"name": "train"}), "default").endswith("run dvc exp run")
    assert refusal(root, "nope") == "docs-figures: no run 'nope'; RUN is one of default, full, film"


def test_a_missing_output_copies_nothing_and_names_the_run(tmp_path):
    root = workspace(tmp_path, model={"name": "train"})
    outputs = [f"{FIGURES_DIR}/{out}" for run, out, _ in FIGURES if run == "film"]
    for out in outputs[:-1]:
        (root / out).parent.mkdir(parents=True, exist_ok=True)
        (root / out).write_bytes(out.encode())
    assert refusal(root, "film") == f"docs-figures: {outputs[-1]} missing: run dvc exp run -S model=train"
    (root / outputs[-1]).write_bytes(b"gif")
    assert refusal(root, "film") is None
    names = copy(root, "film")
    assert names == ["film_conv2d_filters_strip.png", "film_conv2d_filters.gif"]
    assert (root / "docs" / names[0]).read_bytes() == outputs[0].encode()
    assert sorted(p.name for p in (root / "docs").iterdir()) == sorted(names)  # no temporary left
