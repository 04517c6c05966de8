"""Not a Hydra plugin: a module Hydra's plugin scan imports when DVC composes ``conf/`` (``dvc exp run``).

It registers the resolvers ``conf/`` uses, in DVC's own process as in ``convlens.pipeline.config.compose``:
``${convlens_checked:}``, so a config value that is invalid, or a name that would become a path outside
``outputs/``, stops ``dvc exp run`` at composition, before DVC checks out (and deletes) any stage's outputs
(``convlens.schema.register_resolver``); and ``${convlens_layers:}``, the list of layers that DVC's
``foreach`` iterates, ``feature_maps.layers`` or every conv layer of the model (``convlens.model.defaults``); and
``${convlens_analysis_dep:KEY}``, what ``metrics`` and ``report`` depend on for an analysis, from its list
(``convlens.pipeline.paths.analysis_dep``).
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from convlens.model import defaults
from convlens.pipeline.paths import analysis_dep, check_analysis_deps
from convlens.schema import register_resolver

DEP_RESOLVER = "convlens_analysis_dep"


def check_deps(cfg: Mapping[str, Any]) -> None:
    """The deps ``metrics`` and ``report`` take from ``analyses`` are those of its lists (paths.ANALYSIS_DEPS):
    as ``${convlens_analysis_dep:KEY}`` derives them (the config is checked unresolved), or as given by hand."""
    analyses = cfg.get("analyses")
    if isinstance(analyses, Mapping):
        derived = {k: analysis_dep(k, analyses) for k, v in analyses.items() if v == f"${{{DEP_RESOLVER}:{k}}}"}
        check_analysis_deps({**analyses, **derived})


def register_analysis_dep() -> None:
    """Make ``${convlens_analysis_dep:KEY}`` resolve to :func:`analysis_dep` of the config being composed."""
    from omegaconf import OmegaConf

    def dep(key: str, _root_: Any) -> str:
        return analysis_dep(key, OmegaConf.to_container(_root_.analyses, resolve=False))

    OmegaConf.register_new_resolver(DEP_RESOLVER, dep, replace=True)


def register(root: Path | None = None) -> None:
    """The resolvers; ``root``: the project a relative ``model.path`` or ``data.path`` is read from (default:
    the working directory, where DVC composes)."""
    register_resolver(also=(check_deps,), root=root)
    defaults.register_resolver(root)
    register_analysis_dep()


register()
