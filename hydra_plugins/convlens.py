"""Not a Hydra plugin: a module Hydra's plugin scan imports when DVC composes ``conf/`` (``dvc exp run``).

It registers the resolvers ``conf/`` uses, in DVC's own process as in ``convlens.pipeline.config.compose``:
``${convlens_checked:}``, so a config value that is invalid, or a name that would become a path outside
``outputs/``, stops ``dvc exp run`` at composition, before DVC checks out (and deletes) any stage's outputs
(``convlens.schema.register_resolver``); and ``${convlens_layers:}``, the list of layers that DVC's
``foreach`` iterates, ``feature_maps.layers`` or every conv layer of the model (``convlens.model.defaults``).
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from convlens.model import defaults
from convlens.pipeline.paths import check_analysis_deps
from convlens.schema import register_resolver


def check_deps(cfg: Mapping[str, Any]) -> None:
    """The deps ``metrics`` and ``report`` take from ``analyses`` are those of its lists (paths.ANALYSIS_DEPS)."""
    if isinstance(cfg.get("analyses"), Mapping):
        check_analysis_deps(cfg["analyses"])


def register(root: Path | None = None) -> None:
    """Both resolvers; ``root``: the project a relative ``model.path`` or ``data.path`` is read from (default:
    the working directory, where DVC composes)."""
    register_resolver(also=(check_deps,), root=root)
    defaults.register_resolver(root)


register()
