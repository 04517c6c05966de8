"""docs/robustness.md names, for every case, the tests that check it: each one must exist."""

import re

from tests.support.helpers import PROJECT

ROBUSTNESS = PROJECT / "docs" / "robustness.md"


def named_tests(text: str) -> set[tuple[str, str]]:
    """``(file, test)`` for each ``test_x.py::name`` and each ``::name`` that follows one in the same table cell."""
    found = set()
    for cell in re.split(r"\|", text):
        current = None
        for file, name in re.findall(r"(?:(test_\w+\.py))?::(\w+)", cell):
            current = file or current
            if current:
                found.add((current, name))
    return found


def test_every_test_the_failure_table_names_exists():
    named = named_tests(ROBUSTNESS.read_text(encoding="utf-8"))
    assert len(named) > 100
    sources = {path.name: path for path in (PROJECT / "tests").rglob("test_*.py")}
    missing = sorted(
        f"{file}::{name}"
        for file, name in named
        if file not in sources
        or not re.search(rf"^def {name}\(", sources[file].read_text(encoding="utf-8"), flags=re.M)
    )
    assert not missing, f"docs/robustness.md names tests that do not exist: {missing}"
