"""The report and the comparison page in a real browser: headless Chromium, the network blocked, from file://,
the report from its folder (its figures are files beside index.html) and from a copy of that folder elsewhere.

The page's own inline script writes how many images show (``naturalWidth > 0``), how many there are and how many
resources came from anywhere but the page into ``#image-check``; ``--dump-dom`` gives the DOM back after load.
``make test`` installs Debian's ``chromium`` when it is missing (the ``browser`` target); without it these tests skip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from convlens.pipeline import paths
from convlens.pipeline.config import PARAMS_FILE, read_yaml
from convlens.render.language import font_file
from convlens.report.build import SECTIONS, report_page, write_report
from tests.support.helpers import PROJECT, full_analyses
from tests.support.report_pages import ANALYSES, Page, assert_offline, comparison_page, write_analyses

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="no chromium on PATH: `make browser` installs Debian's package (as root with apt-get)",
    ),
]

# Anything the page asks of the network goes to a closed port or fails to resolve.
OFFLINE = ("--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>", "--host-resolver-rules=MAP * ~NOTFOUND")


def with_hangul(folder: Path) -> dict[str, str]:
    """Chromium's environment with a Hangul font: the system's fonts plus the NanumGothic that koreanize-matplotlib
    ships (the Korean figures' font), as a Korean reader's machine has one. Without it a bare system draws Hangul
    as boxes, and neither the Korean page's table widths nor its screenshot would be the reader's."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "fonts.conf"
    config.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
        '<include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n'
        f"<dir>{font_file('ko').parent}</dir>\n<cachedir>{folder / 'cache'}</cachedir>\n</fontconfig>\n",
        encoding="utf-8",
    )
    return {**os.environ, "FONTCONFIG_FILE": str(config)}


def without_hangul(folder: Path) -> dict[str, str]:
    """Chromium's environment with matplotlib's DejaVu fonts alone: no Korean font anywhere, as on a bare Linux."""
    import matplotlib

    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "fonts.conf"
    config.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
        f"<dir>{Path(matplotlib.get_data_path()) / 'fonts' / 'ttf'}</dir>\n"
        f"<cachedir>{folder / 'cache'}</cachedir>\n</fontconfig>\n",
        encoding="utf-8",
    )
    return {**os.environ, "FONTCONFIG_FILE": str(config)}


def chromium(
    page: Path, profile: Path, *args: str, window: tuple[int, int] = (1280, 900), env: dict[str, str] | None = None
):
    """Headless Chromium on ``page``, offline, in a ``window`` (the issue's reader had 1280 px, issue 24 §5); its
    fonts the system's plus NanumGothic (:func:`with_hangul`) unless ``env`` says otherwise."""
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            f"--user-data-dir={profile}",
            *OFFLINE,
            f"--window-size={window[0]},{window[1]}",
            "--virtual-time-budget=10000",  # run the page's timers and load handlers first
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        env=env or with_hangul(profile.parent / "fonts"),
    )


def open_in_chromium(page: Path, profile: Path) -> dict[str, int | str]:
    """The page's DOM after load, and what its check script wrote: images loaded, images, external resources."""
    done = chromium(page, profile, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    check = re.search(r'<p id="image-check"[^>]*>', done.stdout)
    assert check, f"no #image-check in the DOM Chromium dumped:\n{done.stdout[:2000]}\n{done.stderr[-2000:]}"
    values = dict(re.findall(r'data-(\w+)="([^"]*)"', check.group(0)))
    assert values.get("total", "") != "", "the page's check script did not run"
    return {"dom": done.stdout, **{k: int(v) for k, v in values.items()}}


def test_the_report_of_a_tiny_run_opens_offline_with_every_image(reproduced_repo, tmp_path):
    """The report `dvc repro` made for the tiny run, as a reader opens it."""
    folder = reproduced_repo["template"] / "project" / "outputs" / "report"
    copy = tmp_path / "a copy" / "report"  # mailed or moved with its files: it still shows every image
    shutil.copytree(folder, copy)
    for where in (folder, copy):
        page = where / "index.html"
        html = page.read_text(encoding="utf-8")
        assert_offline(html, where)
        shown = open_in_chromium(page, tmp_path / "profile")
        assert shown["total"] == len(Page(html).images) >= 19
        assert shown["loaded"] == shown["total"]
        assert shown["external"] == 0
        assert shown["overflowing"] == 0  # every table within the page's column at 1280 px, wide ones scroll
        assert [s for s in Page(shown["dom"]).sections] == list(SECTIONS)
        assert f"images shown: {shown['total']} of {shown['total']}" in shown["dom"]


@pytest.mark.parametrize(
    ("language", "not_run", "images_shown"),
    [("en", "not run yet", "images shown: {n} of {n}"), ("ko", "아직 실행되지 않음", "표시된 이미지: {n}개 중 {n}개")],
    ids=["en", "ko"],
)
def test_the_report_with_every_analysis_opens_offline(reproduced_repo, tmp_path, language, not_run, images_shown):
    """The tiny run's outputs plus fabricated analyses (issue 12's contract), in each language: every table within
    the page's column at 1280 px (issue 24 §5: wide ones scroll inside their box)."""
    root = tmp_path / "run"
    shutil.copytree(reproduced_repo["template"] / "project" / "outputs", root / "outputs")
    params = yaml.safe_load((reproduced_repo["template"] / "project" / "params.yaml").read_text(encoding="utf-8"))
    params["analyses"] = full_analyses()
    write_analyses(root, params)  # as if -S analyses=full had run
    write_report(root, params, language, tmp_path / "report")
    page = tmp_path / "report" / "index.html"
    html = page.read_text(encoding="utf-8")
    assert f'<html lang="{language}">' in html
    assert_offline(html, page.parent)
    shown = open_in_chromium(page, tmp_path / "profile")
    assert shown["loaded"] == shown["total"] == len(Page(html).images) >= 19 + 9
    assert shown["external"] == 0 and shown["overflowing"] == 0  # the tables of either language's page
    dom = Page(shown["dom"])
    assert dom.sections == list(SECTIONS)
    assert not [n for n in dom.notes if not_run in n]  # every section has its content
    assert all(dom.section_notes(shown["dom"], s).count("<img") for s in ANALYSES)
    assert images_shown.format(n=shown["total"]) in shown["dom"]


SCREENSHOT = (1280, 1600)  # the top of the page, as docs/report.md shows it
SCREENSHOT_BYTES = 400_000  # each PNG committed under docs/ stays below this


def screenshot(page: Path, profile: Path, out: Path) -> Path:
    """The top of ``page`` (one window of ``SCREENSHOT``) as a PNG at ``out``, reduced to a 256-colour palette when
    that keeps it under ``SCREENSHOT_BYTES``; text and figures stay sharp, the file small enough to commit."""
    from PIL import Image as PILImage

    out.parent.mkdir(parents=True, exist_ok=True)
    raw = out.with_name(f".{out.name}")
    done = chromium(page, profile, "--hide-scrollbars", f"--screenshot={raw}", window=SCREENSHOT)
    assert done.returncode == 0 and raw.is_file(), done.stderr[-2000:]
    with PILImage.open(raw) as shot:
        shot.convert("RGB").quantize(256, method=PILImage.Quantize.MEDIANCUT).save(out, optimize=True)
    raw.unlink()
    return out


def real_run() -> bool:
    """Whether this checkout holds the real run's outputs (`dvc repro` or `dvc pull` made them): its model, metrics
    and figures; the screenshots are of that report then, else of the tiny run's."""
    needs = (paths.model_path(PROJECT, "trained"), paths.evaluate_metrics(PROJECT), paths.weight_figures_dir(PROJECT))
    return all(p.exists() for p in needs) and any(paths.weight_figures_dir(PROJECT).glob("*.png"))


def test_screenshots_of_the_top_of_the_page_in_each_language(request, tmp_path):
    """The top of the report in English and Korean, as docs/report.md shows them: ``CONVLENS_SCREENSHOTS=docs``
    (`make screenshots`) writes ``report-en.png`` and ``report-ko.png`` there, from this checkout's real run where
    it has one; without it they go to a temp folder, checked all the same."""
    folder = Path(os.environ.get("CONVLENS_SCREENSHOTS") or tmp_path / "screenshots")
    if real_run():
        root, params = PROJECT, read_yaml(PROJECT / PARAMS_FILE)
    else:  # the tiny run's, made only when it is needed
        root = request.getfixturevalue("reproduced_repo")["template"] / "project"
        params = read_yaml(root / PARAMS_FILE)
    from PIL import Image as PILImage

    for language in ("en", "ko"):
        write_report(root, params, language, tmp_path / language)
        page = tmp_path / language / "index.html"
        shown = open_in_chromium(page, tmp_path / "profile")
        assert shown["loaded"] == shown["total"] and shown["overflowing"] == 0
        out = screenshot(page, tmp_path / "profile", folder / f"report-{language}.png")
        with PILImage.open(out) as shot:
            assert shot.size == SCREENSHOT
            colours = shot.convert("RGB").getcolors(1 << 16)
        assert colours is None or len(colours) > 16  # text and figures, not a blank window
        assert out.stat().st_size < SCREENSHOT_BYTES, out.stat().st_size


def test_the_comparison_page_opens_offline(tmp_path):
    html, _, _ = comparison_page(tmp_path)
    assert_offline(html)
    page = tmp_path / "HEAD_vs_seed7.html"
    page.write_text(html, encoding="utf-8")
    shown = open_in_chromium(page, tmp_path / "profile")
    assert shown["loaded"] == shown["total"] == 3 and shown["external"] == 0


def test_a_page_that_asks_the_network_is_caught(tmp_path):
    """The checks can fail: an image from a web server neither loads nor passes as part of the page."""
    html = report_page(tmp_path, {}, "en").replace(
        "</footer>", '<img src="http://example.com/x.png" alt="remote"></footer>'
    )
    with pytest.raises(AssertionError):
        assert_offline(html, tmp_path)
    page = tmp_path / "remote.html"
    page.write_text(html, encoding="utf-8")
    shown = open_in_chromium(page, tmp_path / "profile")
    assert shown["total"] == 1 and shown["loaded"] == 0  # blocked: the proxy points nowhere
    assert shown["external"] == 1  # and the page's script counts the request it made


def test_a_table_wider_than_the_page_is_caught(tmp_path):
    """The overflow check can fail: a wide table outside its scrolling box reaches past the column."""
    wide = "<table><tr>" + "<td>0.123456789</td>" * 60 + "</tr></table>"
    html = report_page(tmp_path, {}, "en").replace("</footer>", wide + "</footer>")
    page = tmp_path / "wide.html"
    page.write_text(html, encoding="utf-8")
    assert open_in_chromium(page, tmp_path / "profile")["overflowing"] == 1
    boxed = report_page(tmp_path, {}, "en").replace("</footer>", f'<div class="scroll">{wide}</div></footer>')
    page.write_text(boxed, encoding="utf-8")
    assert open_in_chromium(page, tmp_path / "profile")["overflowing"] == 0  # in its box, it scrolls


STYLES = (  # each way the pages set text: headings, bold, 600, italic, code, a table's header
    "<h1>{}</h1>",
    "<h2>{}</h2>",
    "<p>{}</p>",
    "<p><b>{}</b></p>",
    '<p style="font-weight:600">{}</p>',
    '<p style="font-style:italic">{}</p>',
    "<p><code>{}</code></p>",
    "<table><tr><th>{}</th></tr></table>",
)
BAND = 64  # px: each style's line in a band of its own


def test_a_machine_without_a_korean_font_draws_the_pages_hangul(tmp_path):
    """Outside tester: with the embedded NanumGothic named after ``system-ui``, Chromium on a machine without a
    Korean font drew half the Korean page's Hangul as boxes (its h1, the contents' heading, table headers, 600-weight
    and italic text; ``<code>`` never used it). Each style's line, drawn with the page's own CSS, must differ from the
    same line drawn without the ``@font-face`` (boxes, the machine having no Hangul at all)."""
    from PIL import Image as PILImage

    from convlens.report.pages import Section, Strings, Text, render

    words = "합성곱 신경망의 시각화: 목차 층"
    t = Strings("ko")
    section = Section("s", words, blocks=[Text(words)])
    html = render("report.html.j2", t, t("report_title"), t("report_subtitle"), [section])
    lines = "".join(f'<div style="height:{BAND}px;overflow:hidden">{style.format(words)}</div>' for style in STYLES)
    check = f'<div style="position:absolute;top:0;left:0;width:900px;background:#fff;z-index:9">{lines}</div>'
    shots = {}
    for name, page_html in (("embedded", html), ("none", re.sub(r"@font-face \{[^}]*\}", "", html))):
        assert (name == "embedded") == ("@font-face" in page_html)
        page = tmp_path / name / "index.html"
        page.parent.mkdir()
        page.write_text(page_html.replace("<body>", f"<body>{check}", 1), encoding="utf-8")
        shot = tmp_path / f"{name}.png"
        done = chromium(page, tmp_path / "profile", f"--screenshot={shot}", window=(900, BAND * len(STYLES)),
                        env=without_hangul(tmp_path / "fonts"))  # fmt: skip
        assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
        shots[name] = np.asarray(PILImage.open(shot).convert("L"))
    for i, style in enumerate(STYLES):
        band = slice(i * BAND, (i + 1) * BAND)
        drawn, boxes = shots["embedded"][band], shots["none"][band]
        assert (drawn < 128).any(), style  # ink
        assert not np.array_equal(drawn, boxes), f"{style}: Hangul drawn as boxes"
