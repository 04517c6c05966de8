"""The page carries the NanumGothic glyphs of its Hangul (outside tester: in Chromium on a machine without a Korean
font, the Korean page was all boxes, and the English page's subtitle, the book's title, too)."""

import base64
import io
import re

import pytest
from fontTools.ttLib import TTFont

from convlens.errors import ConvlensError
from convlens.report import fonts, pages

TITLE = "혼자 공부하는 머신러닝+딥러닝: 합성곱 신경망의 시각화"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVLENS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "fonts"


def embedded(css: str) -> TTFont:
    (data,) = re.findall(r"url\(data:font/ttf;base64,([A-Za-z0-9+/=]+)\)", css)
    return TTFont(io.BytesIO(base64.b64decode(data)))


def test_the_letters_are_the_pages_hangul_once_each_in_order():
    assert fonts.hangul_letters("합성곱 ABC 합, ㄱ") == "ㄱ곱성합"
    assert fonts.hangul_letters("conv2d · 10,000 → 0.9125") == ""


def test_the_rule_holds_exactly_the_hangul_of_the_text():
    css = fonts.hangul_font_face(f"<h1>{TITLE}</h1> conv2d")
    assert css.startswith('@font-face { font-family: "convlens-hangul"; src: local("Malgun Gothic"), ')
    assert ', local("NanumGothic"), url(data:font/ttf;base64,' in css  # the machine's own Korean font first
    assert css.endswith(
        'format("truetype"); unicode-range: U+1100-11FF,U+3130-318F,U+A960-A97F,U+AC00-D7A3,U+D7B0-D7FF; }'
    )
    drawn = {chr(code) for code in embedded(css).getBestCmap()}
    assert {c for c in drawn if fonts.hangul_letters(c)} == set(fonts.hangul_letters(TITLE))
    assert len(css) < 60_000  # a cut of the 4.7 MB font, not the font


def test_a_page_without_hangul_or_without_the_font_gets_no_rule(monkeypatch):
    assert fonts.hangul_font_face("conv2d: trained model") == ""

    def missing(language):
        raise ConvlensError("not installed")

    monkeypatch.setattr(fonts, "font_file", missing)
    assert fonts.hangul_font_face(TITLE) == ""


def test_the_cut_is_kept_and_reused_and_a_damaged_one_is_made_again(cache, monkeypatch):
    first = fonts.hangul_font_face(TITLE)
    (kept,) = cache.iterdir()
    cut = fonts.subset_font

    def not_again(*args):
        raise AssertionError("cut again")

    monkeypatch.setattr(fonts, "subset_font", not_again)
    assert fonts.hangul_font_face(TITLE) == first
    kept.write_bytes(b"<html>")  # damaged: not a TrueType file
    monkeypatch.setattr(fonts, "subset_font", cut)
    assert fonts.hangul_font_face(TITLE) == first
    assert kept.read_bytes().startswith(fonts.TRUETYPE)


def test_a_read_only_cache_still_gives_the_page_its_font(cache, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("CONVLENS_CACHE", str(blocker))
    assert embedded(fonts.hangul_font_face(TITLE)).getBestCmap()


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_a_page_carries_the_glyphs_of_all_its_hangul(lang):
    """The Korean page, and the English one whose subtitle is the book's title: the font named last before
    sans-serif, holding every Hangul letter the page shows."""
    t = pages.Strings(lang)
    html = pages.render("report.html.j2", t, t("report_title"), t("report_subtitle"), [])
    assert pages.FONT_FACE not in html
    (face,) = re.findall(r"@font-face \{[^}]*\}", html)
    body = html.replace(face, "")
    assert set(fonts.hangul_letters(body)) <= {chr(c) for c in embedded(face).getBestCmap()}
    assert fonts.hangul_letters(body)
    assert 'body { font-family: "convlens-hangul", system-ui,' in body  # first: Hangul only, by its unicode-range
    assert 'code, pre { font-family: "convlens-hangul", ui-monospace, monospace; }' in body
