"""Write ``params.yaml`` from ``conf/`` (with optional Hydra overrides), as ``dvc exp run`` does.

``dvc repro`` never recomposes, so run this (``make params``, ``python -m convlens params``) after editing
``conf/`` by hand.
"""

from __future__ import annotations

import sys

from convlens.errors import ConvlensError
from convlens.pipeline.config import PARAMS_FILE, compose, project_root, write_composed
from convlens.pipeline.repo_lock import repository_lock


def main(argv: list[str]) -> None:
    try:
        root = project_root()
        with repository_lock(root):  # not while a stage runs on the params.yaml of now
            write_composed(root, compose(root, argv))  # and the record of conf/ that dvc repro checks against
    except ConvlensError as e:
        sys.exit(f"params: error: {e}")
    print(f"params: wrote {PARAMS_FILE}")
