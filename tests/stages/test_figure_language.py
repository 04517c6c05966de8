"""Every figure the pipeline draws, in each ``report.language`` (issue 24 §1): no glyph missing from the fonts
(matplotlib's warning is a failure here), Hangul in every ``ko`` figure and none in an ``en`` one, and every stage
that draws declares ``report.language`` so that a change of language redraws its figures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from matplotlib.text import Text

from convlens.render import analyses, figures, pool
from convlens.schema import LANGUAGES

HANGUL = re.compile("[\uac00-\ud7a3]")
STAGES = Path(__file__).resolve().parents[2] / "stages"


@pytest.fixture
def made(monkeypatch):
    """Every matplotlib figure created through ``new_figure`` (all of them, the mosaics' title strips included),
    drawn in this process (no worker process of ``run_jobs``, whose figures this list would not see)."""
    made, real = [], figures.new_figure
    monkeypatch.setattr(pool, "usable_cpus", lambda: 1)

    def new_figure(figsize):
        made.append(real(figsize))
        return made[-1]

    monkeypatch.setattr(figures, "new_figure", new_figure)
    monkeypatch.setattr(analyses, "new_figure", new_figure)
    return made


@pytest.mark.filterwarnings("error:Glyph .* missing from font:UserWarning")
@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_figure_of_the_pipeline_has_every_glyph_and_its_languages_words(lang, project, run_pipeline, made):
    run_pipeline(project, f"report.language={lang}")
    pngs = list((project / "outputs" / "figures").rglob("*.png"))
    assert len(pngs) >= 30 and len(made) >= len(pngs)
    for fig in made:
        texts = " ".join(t.get_text() for t in fig.findobj(Text))
        if not texts.strip():
            continue  # a figure with no text (none yet)
        assert bool(HANGUL.search(texts)) == (lang == "ko"), texts


def test_every_stage_that_draws_in_a_language_declares_it():
    stages = yaml.safe_load((STAGES.parent / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    drawing = {p.stem for p in STAGES.glob("*.py") if "figure_language(" in p.read_text(encoding="utf-8")}
    assert {"render_figures", "render_maps", "render_dataset", "render_activation_max", "render_gradcam"} <= drawing
    assert not {"activation_max", "gradcam"} & drawing  # they compute; their figures are the render stages' (issue 25)
    for name in drawing:
        stage = stages[name].get("do", stages[name])
        assert "report.language" in stage["params"], name
