"""Outside tester #7: Hangul class names (a folder called 고양이) in an English figure are drawn by the Korean font,
glyph by glyph after DejaVu Sans, not as empty boxes with matplotlib's "Glyph … missing from font" warning; Latin
text is drawn as before, byte for byte."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest
from matplotlib import font_manager
from matplotlib._text_helpers import layout
from matplotlib.figure import Figure
from matplotlib.text import Text

from convlens.render import analyses, figures, language
from convlens.render.language import figure_language

GLYPH_MISSING = "error:Glyph .* missing from font:UserWarning"
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def drawing_fonts(text: Text) -> dict[str, str]:
    """Each character of ``text`` and the file of the font matplotlib draws it with (its fallback chain's choice)."""
    font = font_manager.get_font(font_manager.fontManager._find_fonts_by_props(text.get_fontproperties()))
    return {item.char: item.ft_object.fname for item in layout(text.get_text(), font) if not item.char.isspace()}


@pytest.mark.filterwarnings(GLYPH_MISSING)
def test_hangul_class_names_in_an_english_figure_are_drawn_by_the_korean_font(drawn, tmp_path):
    classes = ["새", "고양이", "강아지"]
    with figure_language("en") as t:
        analyses.confusion_figure(np.eye(3, dtype=int) * 4, classes, tmp_path / "c.png", "trained", "Blues", 50)
        fig = drawn[0][0]
        ticks = [label for ax in fig.axes for label in ax.get_xticklabels() + ax.get_yticklabels()]
        assert sorted({label.get_text() for label in ticks}) == sorted(classes)
        korean = str(language.font_file("ko"))
        for label in ticks:
            assert set(drawing_fonts(label).values()) == {korean}, label.get_text()
        title = fig.axes[0].xaxis.label  # English words: still DejaVu Sans
        assert title.get_text() == t("predicted_class")
        assert {font_manager.FontProperties(fname=f).get_name() for f in drawing_fonts(title).values()} == {
            "DejaVu Sans"
        }


def english_figures(out) -> None:
    rng = np.random.default_rng(0)
    series = {"trained": rng.normal(0, 0.1, 288), "untrained": rng.uniform(-0.15, 0.15, 288)}
    figures.histogram(series, out / "h.png", 10, "conv2d weights: trained and untrained model", 50)
    confusion = rng.integers(0, 90, (10, 10))
    analyses.confusion_figure(confusion, FASHION, out / "c.png", "trained: accuracy 0.9125 on 10000 test images",
                              "Blues", 50)  # fmt: skip
    table = pd.DataFrame(
        [["trained", "conv2d", "mean", 1.0, -2.0, -3.0], ["untrained", "conv2d", "std", 0.5, 0.6, 0.2]],
        columns=["model", "layer", "statistic", "a", "b", "relative_change"],
    )
    figures.comparison_figure(table, out / "cmp.png", ("HEAD", "workspace"), "2 of 4 statistics changed")


@pytest.mark.filterwarnings(GLYPH_MISSING, "ignore:Tight layout not applied:UserWarning")
def test_latin_figures_are_byte_for_byte_what_matplotlibs_own_font_draws(tmp_path):
    """``en`` with the Korean fallback against matplotlib's settings as they are (what ``en`` drew before)."""
    before, after = tmp_path / "before", tmp_path / "after"
    before.mkdir(), after.mkdir()
    english_figures(before)
    with figure_language("en"):
        assert language.font_families("en") == ("DejaVu Sans", "NanumGothic")
        english_figures(after)
    names = sorted(p.name for p in before.iterdir())
    assert names == ["c.png", "cmp.png", "h.png"]
    for name in names:
        assert (after / name).read_bytes() == (before / name).read_bytes(), name


def test_without_the_korean_font_english_draws_with_matplotlibs_settings(monkeypatch):
    monkeypatch.setattr(language, "FONTS", {"ko": ("NanumGothic", "no_such_font_package", "fonts/No.ttf")})
    language.font_families.cache_clear()
    try:
        assert language.font_families("en") == ()
    finally:
        language.font_families.cache_clear()


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_bold_hangul_is_drawn_by_the_bold_font_without_a_findfont_warning(lang, tmp_path, caplog):
    """Outside tester 2 #10: an English run logged "findfont: Failed to find font weight bold for NanumGothic, now
    using 400" (bold titles asked NanumGothic for a weight it had not registered) and drew bold Hangul at 400."""
    with caplog.at_level("WARNING", logger="matplotlib.font_manager"), figure_language(lang):
        fig = Figure()
        bold = fig.text(0.1, 0.6, "Bold 고양이", fontweight="bold")
        plain = fig.text(0.1, 0.3, "plain 고양이")
        fig.savefig(tmp_path / "b.png")
    assert [r.getMessage() for r in caplog.records if "findfont" in r.getMessage()] == []
    folder = language.font_file("ko").parent
    assert drawing_fonts(bold)["고"] == str(folder / "NanumGothicExtraBold.ttf")
    assert drawing_fonts(plain)["고"] == str(folder / "NanumGothic.ttf")
    assert font_manager.FontProperties(fname=drawing_fonts(bold)["B"]).get_name() == ("DejaVu Sans" if lang == "en"
                                                                                       else "NanumGothic")  # fmt: skip


@pytest.mark.filterwarnings(GLYPH_MISSING, "ignore:Tight layout not applied:UserWarning")
def test_the_korean_comparison_draws_arrows_and_minus_signs_with_dejavu_and_writes_percent_the_korean_way(
    drawn, tmp_path
):
    """Outside tester: in compare --language ko, NanumGothic drew → as a small stub and the hyphen of -0.0144
    raised; DejaVu Sans draws them (and the digits) as in English, NanumGothic the Hangul; 9.9% without a space."""
    table = pd.DataFrame(
        [["trained", "(training)", "val_accuracy", 0.9, 0.99, 0.099], ["trained", "conv2d", "mean", -0.02, -0.01, 0.5]],
        columns=["model", "layer", "statistic", "a", "b", "relative_change"],
    )
    with figure_language("ko") as t:
        title = t("compare_title", a="HEAD", b="workspace", changed=2, total=4)
        figures.comparison_figure(table, tmp_path / "c.png", ("HEAD", "workspace"), title)
        fig = drawn[0][0]
        (ax,) = fig.axes
        labels = [text.get_text() for text in ax.texts]
        assert labels == ["-0.02 → -0.01 (+50.0%)", "0.9 → 0.99 (+9.9%)"]
        dejavu, korean = str(font_manager.findfont("DejaVu Sans")), str(language.font_file("ko"))
        for text in ax.texts:
            assert set(drawing_fonts(text).values()) == {dejavu}, text.get_text()
        suptitle = drawing_fonts(fig._suptitle)
        assert (suptitle["→"], suptitle["통"], suptitle["H"]) == (dejavu, korean, dejavu)
        ticks = [drawing_fonts(label) for label in ax.get_xticklabels() if label.get_text().startswith("−")]
        assert ticks and all(set(fonts.values()) == {dejavu} for fonts in ticks)  # U+2212, as before
        assert mpl.rcParams["font.family"] == ["NanumGothic", "DejaVu Sans"]  # the other Korean figures as they were
    with figure_language("en"):
        figures.comparison_figure(table, tmp_path / "e.png", ("HEAD", "workspace"), "t")
    assert [text.get_text() for text in drawn[1][0].axes[0].texts][1] == "0.9 → 0.99 (+9.9 %)"  # English spacing
