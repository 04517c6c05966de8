"""The report and the comparison page in a real browser: headless Chromium, the network blocked, from file://,
the report from its folder (its figures are files beside index.html) and from a copy of that folder elsewhere.

The page's own inline script writes how many images show (``naturalWidth > 0``), how many there are and how many
resources came from anywhere but the page into ``#image-check``; ``--dump-dom`` gives the DOM back after load.
``make test`` installs Debian's ``chromium`` when it is missing (the ``browser`` target); without it these tests skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from convlens.report.build import SECTIONS, report_page, write_report
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


def open_in_chromium(page: Path, profile: Path) -> dict[str, int | str]:
    """The page's DOM after load, and what its check script wrote: images loaded, images, external resources."""
    done = subprocess.run(
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
            "--window-size=1280,900",  # the window the reader had (issue 24 §5)
            "--virtual-time-budget=10000",  # run the page's timers and load handlers before dumping
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )
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


def test_the_report_with_every_analysis_opens_offline(reproduced_repo, tmp_path):
    """The tiny run's outputs plus fabricated analyses (issue 12's contract), in Korean."""
    root = tmp_path / "run"
    shutil.copytree(reproduced_repo["template"] / "project" / "outputs", root / "outputs")
    params = yaml.safe_load((reproduced_repo["template"] / "project" / "params.yaml").read_text(encoding="utf-8"))
    write_analyses(root, params)
    write_report(root, params, "ko", tmp_path / "report")
    page = tmp_path / "report" / "index.html"
    html = page.read_text(encoding="utf-8")
    assert_offline(html, page.parent)
    shown = open_in_chromium(page, tmp_path / "profile")
    assert shown["loaded"] == shown["total"] == len(Page(html).images) >= 19 + 9
    assert shown["external"] == 0 and shown["overflowing"] == 0  # the Korean page's tables too
    dom = Page(shown["dom"])
    assert dom.sections == list(SECTIONS)
    assert not [n for n in dom.notes if "아직 실행되지 않음" in n]  # every section has its content
    assert all(dom.section_notes(shown["dom"], s).count("<img") for s in ANALYSES)
    assert f"표시된 이미지: {shown['total']}개 중 {shown['total']}개" in shown["dom"]


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
