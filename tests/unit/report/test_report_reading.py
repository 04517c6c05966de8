"""What a reader of the report meets (outside tester 8): every figure a link to its file and an alt text saying what it
is, commands as code instead of Markdown backticks, percentages rounded half up, and a training section whose title
says when it appears. Through the real page builder, in both languages."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
import yaml

from convlens.pipeline import paths
from convlens.report.build import report_page, write_report
from convlens.report.pages import Strings, inline_code
from tests.support.helpers import PROJECT
from tests.support.report_pages import Page

LANGUAGES = ("en", "ko")


@pytest.fixture
def params() -> dict:
    return yaml.safe_load((PROJECT / "params.yaml").read_text(encoding="utf-8"))


class Images(HTMLParser):
    """Each image of a page: its section, ``src``, ``alt`` and the ``href`` of the link around it (``""``: none)."""

    def __init__(self, html: str):
        super().__init__()
        self.images: list[dict[str, str]] = []
        self._section, self._href = "", ""
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self._section = attrs["id"]
        elif tag == "a":
            self._href = attrs.get("href", "")
        elif tag == "img":
            self.images.append({"section": self._section, "src": attrs["src"], "alt": attrs["alt"], "href": self._href})

    def handle_endtag(self, tag):
        if tag == "a":
            self._href = ""


def test_every_figure_of_a_tiny_run_is_a_link_to_its_file_with_an_alt_text_of_its_own(project, run_pipeline, tmp_path):
    """Histograms, filter grids, feature maps, class heatmaps and dataset examples of conv2d were all
    'conv2d: trained model'; the feature maps, drawn 1190 px wide and shown at half that, were no link."""
    run_pipeline(project)
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    for language in LANGUAGES:
        folder = tmp_path / language
        write_report(project, params, language, folder)
        html = (folder / paths.REPORT_NAME).read_text(encoding="utf-8")
        images = Images(html).images
        t = Strings(language)
        sections = {"histograms", "filters", "samples", "feature-maps", "dataset", "examples", "evaluate"}
        assert {image["section"] for image in images} >= sections, language  # the tiny run's figures
        for image in images:
            assert image["href"], image  # a click opens the figure at its full size
            if not image["src"].startswith("thumbnails/"):
                assert image["href"] == image["src"], image  # the file shown, not a copy of it
            assert (folder / image["href"]).is_file(), image
            what = t(f"figures_{image['section'].replace('-', '_')}")
            assert image["alt"].startswith(f"{what} — "), image  # says what the figure is
        alts = [image["alt"] for image in images]
        assert len(set(alts)) == len(alts), [alt for alt in alts if alts.count(alt) > 1]
        trained = f"conv2d: {t('trained')}"  # the five figures of conv2d, trained model, that shared one alt text
        conv2d = {image["section"] for image in images if image["alt"].endswith(trained)}
        assert conv2d >= {"histograms", "filters", "dataset", "examples"}, language
        assert any(f"conv2d, {t('sample')} " in image["alt"] for image in images if image["section"] == "feature-maps")


@pytest.mark.parametrize("language", LANGUAGES)
def test_commands_are_code_and_no_markdown_backtick_shows(tmp_path, params, language):
    """'`dvc repro`를 실행하면…' read with its backticks: each backtick span of a string is <code>, escaped."""
    html = report_page(tmp_path, params, language)  # nothing made yet: every section a note naming its command
    body = html[html.index("<body") : html.index("<script")]
    assert "`" not in " ".join(Page(body).text)
    assert "<code>dvc repro</code>" in body and "<code>dvc exp run -S model=train</code>" in body
    assert "<code>dvc exp run -S analyses=full</code>" in body  # -S analyses=full's sections


def test_a_backtick_span_is_code_whose_text_is_escaped():
    assert inline_code("run `a <b> & c` then `d`") == "run <code>a &lt;b&gt; &amp; c</code> then <code>d</code>"
    assert inline_code("<script>`x`</script>") == "&lt;script&gt;<code>x</code>&lt;/script&gt;"
    assert inline_code("one ` alone") == "one ` alone"  # no span, nothing made code


@pytest.mark.parametrize(("language", "shown"), [("en", "88.9 %"), ("ko", "88.9%")])
def test_a_percentage_on_the_page_rounds_half_up(tmp_path, params, language, shown):
    """8,885 of 10,000 test images right is 88.85 %: the page showed 88.8 % (the float 88.85 rounds down)."""
    evaluate = {
        "trained": {"accuracy": 8885 / 10000, "class_accuracy": {"T-shirt/top": 0.8885}},
        "untrained": {"accuracy": 0.0985, "class_accuracy": {"T-shirt/top": 0.0985}},
    }
    paths.metrics_dir(tmp_path).mkdir(parents=True)
    paths.evaluate_metrics(tmp_path).write_text(json.dumps(evaluate), encoding="utf-8")
    html = report_page(tmp_path, params, language)
    section = Page(html).section_notes(html, "evaluate")
    assert section.count(shown) == 3 and "88.8" not in section  # the caption, the accuracy row, the class's row
    assert section.count(shown.replace("88.9", "9.9")) == 3  # 9.85 % too


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_book_models_contents_say_the_training_section_appears_after_training(tmp_path, params, language):
    """With a model not trained here the section is one sentence: its title in the contents says so."""
    assert not params["model"]["train_runs"]  # the book's model
    html = report_page(tmp_path, params, language)
    contents = html[html.index("<nav>") : html.index("</nav>")]
    [title] = re.findall(r'<a href="#training">(.*?)</a>', contents)
    t = Strings(language)
    assert title == inline_code(t("training_title_off", override="-S model=train"))
    assert "<code>-S model=train</code>" in title and title.startswith(t("training_title"))
    section = Page(html).section_notes(html, "training")
    assert f"<h2>{title}</h2>" in section and "<img" not in section
    assert t("training_intro") not in section  # what the film shows is said where it is shown
