"""The figures' language (issue 24 §1): their words from the catalogue ``convlens/render/strings.yaml`` in the
language of ``figure_language``, Hangul drawn by the font of koreanize-matplotlib, English figures as before."""

from __future__ import annotations

import string
import sys
import warnings

import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest

from convlens.errors import ConvlensError
from convlens.render import figures, language
from convlens.render.language import Strings, figure_language, words
from convlens.schema import LANGUAGES

GLYPH_MISSING = "error:Glyph .* missing from font:UserWarning"  # matplotlib's warning, as a failure


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_figure_string_is_in_every_language_with_the_same_placeholders():
    tables = Strings.tables()
    assert set(tables) == set(LANGUAGES)
    for lang in LANGUAGES:
        assert set(tables[lang]) == set(tables["en"]), (lang, set(tables[lang]) ^ set(tables["en"]))
        for key, text in tables[lang].items():
            assert isinstance(text, str) and text, (lang, key)
            assert fields(text) == fields(tables["en"][key]), (lang, key)


def test_the_korean_figure_strings_use_the_chapters_terms():
    ko = Strings("ko")
    assert (ko("weight"), ko("count"), ko.term("model", "untrained")) == ("가중치", "빈도", "훈련하지 않은 모델")
    assert "특성 맵" in ko("map_title", model="", layer="", shape="", sample="")
    assert "필터" in ko("filters_title", model="", layer="", shape="", mode="", scale="")


def test_a_count_is_singular_for_one_in_english_and_the_same_word_in_korean():
    assert [Strings("en").count("film_epochs", n) for n in (0, 1, 2)] == ["0 epochs", "1 epoch", "2 epochs"]
    assert [Strings("ko").count("film_epochs", n) for n in (1, 2)] == ["1개 에포크", "2개 에포크"]  # as the page
    assert language.counted({"things": "{count} things"}, "things", 1) == "1 things"  # no singular given: the key's


def test_a_term_missing_from_the_catalogue_is_drawn_as_it_is():
    assert Strings("ko").term("split", "validation") == "validation"
    assert Strings("ko").term("split", "test") == "테스트 세트"
    with pytest.raises(ConvlensError, match="no strings for language 'fr'"):
        Strings("fr")


def test_the_language_holds_inside_its_context_only_and_english_changes_only_the_font_fallback():
    before = dict(mpl.rcParams)
    assert words().language == "en"
    with figure_language("en") as t:
        assert words() is t and {k: v for k, v in mpl.rcParams.items() if before[k] != v} == {
            "font.family": ["DejaVu Sans", "NanumGothic"]  # Hangul class names (test_font_fallback.py)
        }
    with figure_language("ko") as t:
        assert words().language == "ko" and mpl.rcParams["font.family"] == ["NanumGothic", "DejaVu Sans"]
        with figure_language("en"):
            assert words().language == "en"
        assert words() is t
    assert words().language == "en" and dict(mpl.rcParams) == before
    assert "koreanize_matplotlib" not in sys.modules  # its import would set the global rcParams


def test_the_korean_font_is_the_pip_packages_file_not_a_system_font():
    from matplotlib import font_manager

    path = language.font_file("ko")
    assert path.name == "NanumGothic.ttf" and "koreanize_matplotlib" in path.parts
    with figure_language("ko"):
        found = font_manager.findfont(font_manager.FontProperties(family=["NanumGothic"]), fallback_to_default=False)
    assert found == str(path)
    assert language.font_file("en") is None


def test_a_missing_font_package_is_one_error_line_naming_it(monkeypatch):
    monkeypatch.setitem(language.FONTS, "xx", ("NoFont", "no_such_font_package", "fonts/No.ttf"))
    with pytest.raises(ConvlensError, match="pip install -c constraints.txt no-such-font-package"):
        language.font_file("xx")


@pytest.mark.filterwarnings(GLYPH_MISSING)
def test_a_korean_histograms_title_axes_and_legend_are_the_catalogues(drawn, tmp_path):
    rng = np.random.default_rng(0)
    series = {"trained": rng.normal(0, 0.1, 288), "untrained": rng.uniform(-0.15, 0.15, 288)}
    with figure_language("ko") as t:
        figures.histogram(series, tmp_path / "h.png", 10, t("overlay_title", layer="conv2d"), 50)
    ((fig, _, _),) = drawn
    (ax,) = fig.axes
    ko = Strings.tables()["ko"]
    assert (
        ax.get_title()
        == ko["overlay_title"].format(layer="conv2d")
        == "conv2d 가중치: 훈련된 모델과 훈련하지 않은 모델"
    )
    assert (ax.get_xlabel(), ax.get_ylabel()) == (ko["weight"], ko["density_own_bins"])
    assert [text.get_text() for text in ax.get_legend().get_texts()] == [ko["model_trained"], ko["model_untrained"]]
    assert ax.title.get_fontfamily() == ["NanumGothic", "DejaVu Sans"]


def test_an_english_histogram_is_drawn_as_before(drawn, tmp_path):
    with figure_language("en"):
        figures.histogram({"trained": np.arange(10.0)}, tmp_path / "h.png", 5, "trained conv2d weights", 50)
    (ax,) = drawn[0][0].axes
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("trained conv2d weights", "weight", "count")


@pytest.mark.filterwarnings(GLYPH_MISSING, "ignore:Tight layout not applied:UserWarning")
@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_comparison_figure_has_every_glyph(lang, drawn, tmp_path):
    """The one figure no stage draws (``python -m convlens compare``); the stages' are in test_figure_language."""
    table = pd.DataFrame(
        [["trained", "conv2d", "mean", 1.0, -2.0, -3.0], ["untrained", "conv2d", "std", 0.5, 0.6, 0.2]],
        columns=["model", "layer", "statistic", "a", "b", "relative_change"],
    )
    with figure_language(lang) as t:
        figures.comparison_figure(table, tmp_path / "c.png", ("HEAD", "workspace"), t("compare_title", a="HEAD",
                                  b="workspace", changed=2, total=4))  # fmt: skip
        figures.comparison_figure(table.head(0), tmp_path / "none.png", ("a", "b"), "t")
    panels = [ax.get_title(loc="left") for ax in drawn[0][0].axes]
    assert panels == [Strings(lang).term("model", m) for m in ("trained", "untrained")]


def test_the_glyph_warning_is_what_matplotlib_says(tmp_path):
    """The filter above matches matplotlib's own text: Hangul under DejaVu Sans alone raises it."""
    fig = figures.new_figure((2, 1))
    fig.text(0.5, 0.5, "가중치")
    with warnings.catch_warnings(), pytest.raises(UserWarning, match="Glyph .* missing from font"):
        warnings.filterwarnings("error", "Glyph .* missing from font", UserWarning)
        with mpl.rc_context({"font.family": ["DejaVu Sans"]}):
            fig.savefig(tmp_path / "x.png")
