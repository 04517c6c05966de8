"""The README is a front door (at most 15 KB) to docs/, one page per question; every page's command blocks run
(``tests/support/readme_run.py``: the README, then :data:`PAGES` in order) or are fenced as shown only; links
resolve."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.helpers import PROJECT
from tests.support.readme_run import DOCS, PAGES, README, RUNS, blocks, run_blocks

README_MAX_BYTES = 15_000
FENCE = re.compile(r"^```([\w-]*)\n.*?^```$", flags=re.M | re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)")
SHELLS = ("sh", "shell", "zsh")  # a shell block must say whether it runs: ```bash / ```console, or ```sh-notrun


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def anchors(text: str) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    prose = FENCE.sub("", text)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", prose, re.M)}


def test_the_readme_is_at_most_15_kb():
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes: move the detail to a page of docs/ and link to it"


def test_every_docs_page_with_commands_is_run_in_a_listed_order():
    with_commands = {f"docs/{p.name}" for p in DOCS.glob("*.md") if blocks(p.read_text(encoding="utf-8"))}
    assert with_commands <= set(PAGES), (
        f"{sorted(with_commands - set(PAGES))} have ```bash/```console blocks but are not in "
        "tests/support/readme_run.py's "
        "PAGES: add them where their commands belong in the run, or fence shown-only commands as ```sh-notrun"
    )
    assert len(set(PAGES)) == len(PAGES) and set(PAGES) <= with_commands  # each once, and each with commands
    ran = [page for page, _, _ in run_blocks()]
    assert ran == sorted(ran, key=["README.md", *PAGES].index)  # the README's first, then the pages in order


def test_no_shell_block_is_left_unsaid_whether_it_runs():
    unsaid = [
        f"{page.relative_to(PROJECT)}: ```{language}"
        for page in pages()
        for language in FENCE.findall(page.read_text(encoding="utf-8"))
        if language in SHELLS
    ]
    assert not unsaid, f"fence shell commands as ```{'/```'.join(RUNS)} (they run) or ```sh-notrun: {unsaid}"


def test_the_testing_page_shows_its_commands_without_running_them():
    text = (DOCS / "testing.md").read_text(encoding="utf-8")
    assert not blocks(text) and "```sh-notrun\nmake test " in text


def test_every_relative_link_and_anchor_resolves():
    broken = []
    for page in pages():
        text = page.read_text(encoding="utf-8")
        for target in LINK.findall(FENCE.sub("", text)):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.relative_to(PROJECT)}: {target} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text(encoding="utf-8")):
                broken.append(f"{page.relative_to(PROJECT)}: {target} (no such heading)")
    assert not broken, broken
