"""Write ``params.yaml`` from ``conf/`` (with optional Hydra overrides), as ``dvc exp run`` does.

``dvc repro`` never recomposes, so run this (``make params``) after editing ``conf/`` by hand.
"""

from __future__ import annotations

import sys

from convlens.config import PARAMS_FILE, compose, project_root, write_params
from convlens.errors import ConvlensError


def main(argv: list[str]) -> None:
    try:
        root = project_root()
        write_params(root, compose(root, argv))
    except ConvlensError as e:
        sys.exit(f"compose_params: error: {e}")
    print(f"compose_params: wrote {PARAMS_FILE}")


if __name__ == "__main__":
    main(sys.argv[1:])
