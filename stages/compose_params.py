"""Write ``params.yaml`` from ``conf/`` (with optional Hydra overrides), as ``dvc exp run`` does.

``dvc repro`` never recomposes, so run this (``make params``) after editing ``conf/`` by hand.
"""

from __future__ import annotations

import sys

import yaml
from omegaconf import OmegaConf

from stages.lib.config import PARAMS_FILE, compose, project_root
from stages.lib.errors import ConvlensError
from stages.lib.io import atomic_path


def main(argv: list[str]) -> None:
    try:
        root = project_root()
        params = OmegaConf.to_container(compose(root, argv), resolve=True)
        with atomic_path(root / PARAMS_FILE) as tmp:
            tmp.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True), encoding="utf-8")
    except ConvlensError as e:
        sys.exit(f"compose_params: error: {e}")
    print(f"compose_params: wrote {PARAMS_FILE}")


if __name__ == "__main__":
    main(sys.argv[1:])
