"""Not a Hydra plugin: a module Hydra's plugin scan imports when DVC composes ``conf/`` (``dvc exp run``).

It registers the ``${convlens_checked:}`` resolver, so a config value that is invalid, or a name that would
become a path outside ``outputs/``, stops ``dvc exp run`` at composition: before DVC checks out (and
deletes) any stage's outputs. See ``convlens.schema.register_resolver``.
"""

from convlens.schema import register_resolver

register_resolver()
