"""``python -m convlens <command>``: the commands that are not DVC stages.

  compare A [B]          two runs' statistics side by side → outputs/compare/<A>_vs_<B>.{csv,png,html}
  docs-config [--check]  docs/configuration.md's table of config keys, from convlens/schema.py and conf/
  experiments [...]      the experiments as one table (dvc exp show, readable in 120 columns)
  params [OVERRIDES]     write params.yaml from conf/ (what `make params` does; dvc repro does not)
  tidy [REV]             after `dvc exp apply REV`: delete the files other runs left under outputs/ that REV lacks

``python -m convlens <command> --help`` says more.
"""

from __future__ import annotations

import sys
from importlib import import_module

from convlens.cli import tolerant_output

COMMANDS = {
    "compare": "compare",
    "docs-config": "docs_config",
    "experiments": "experiments",
    "params": "params",
    "tidy": "tidy",
}


def main(argv: list[str]) -> None:
    tolerant_output()  # an ASCII terminal gets ? for a character it cannot show, not a UnicodeEncodeError
    if not argv or argv[0] not in COMMANDS:
        said = f"unknown command {argv[0]!r}; " if argv and not argv[0].startswith("-") else ""
        sys.exit(f"convlens: {said}choose one of: {', '.join(COMMANDS)}\n{__doc__}")
    import_module(f"convlens.cli.{COMMANDS[argv[0]]}").main(argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
