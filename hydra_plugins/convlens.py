"""Not a Hydra plugin: a module Hydra's plugin scan imports when DVC composes ``conf/`` (``dvc exp run``).

It registers the resolvers ``conf/`` uses, in DVC's own process as in ``convlens.pipeline.config.compose``:
``${convlens_checked:}``, so a config value that is invalid, or a name that would become a path outside
``outputs/``, stops ``dvc exp run`` at composition, before DVC checks out (and deletes) any stage's outputs
(``convlens.schema.register_resolver``); and ``${convlens_layers:}``, the list of layers that DVC's
``foreach`` iterates, ``feature_maps.layers`` or every conv layer of the model (``convlens.model.defaults``).
"""

from pathlib import Path

from convlens.model import defaults
from convlens.schema import register_resolver


def register(root: Path | None = None) -> None:
    """Both resolvers; ``root``: the project a relative ``model.path`` is read from (default: the working
    directory, where DVC composes)."""
    register_resolver()
    defaults.register_resolver(root)


register()
