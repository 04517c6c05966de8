"""Write docs/configuration.md's table of config keys from the schema: ``python -m convlens docs-config [--check]``.

The table (key, type and range, default, meaning) sits between two marker lines of the page: the types are what
each key's check in ``convlens/schema.py`` says of a wrong value, the meanings ``schema.MEANING``, the defaults
``conf/`` as ``make params`` composes it. ``--check`` changes nothing and exits 1 when the page's table differs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from omegaconf import OmegaConf

from convlens.errors import ConvlensError
from convlens.pipeline.config import compose, project_root
from convlens.schema import config_table

PAGE = Path("docs") / "configuration.md"
BEGIN = "<!-- keys: written by `python -m convlens docs-config` from convlens/schema.py and conf/; edit those -->"
END = "<!-- end of keys -->"


def with_table(page: str, table: str) -> str:
    """``page`` with the text between its ``BEGIN`` and ``END`` lines replaced by ``table``."""
    head, begin, rest = page.partition(BEGIN + "\n")
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise ConvlensError(f"the page has no lines {BEGIN} and {END} to write the table between")
    return f"{head}{begin}\n{table}\n{end}{tail}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m convlens docs-config", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the page's table differs; write nothing")
    parser.add_argument("--page", type=Path, help=f"the page (default: {PAGE} of the project)")
    args = parser.parse_args(argv)
    try:
        root = project_root()
        page = args.page or root / PAGE
        text = page.read_text(encoding="utf-8")
        wanted = with_table(text, config_table(OmegaConf.to_container(compose(root), resolve=True)))
    except (ConvlensError, OSError) as e:
        sys.exit(f"docs-config: error: {e}")
    if text == wanted:
        print(f"docs-config: {page} is up to date")
    elif args.check:
        sys.exit(f"docs-config: {page}'s table differs from convlens/schema.py; run python -m convlens docs-config")
    else:
        page.write_text(wanted, encoding="utf-8")
        print(f"docs-config: wrote {page}")
