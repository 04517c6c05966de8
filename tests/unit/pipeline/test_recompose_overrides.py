"""The overrides that compose a ``params.yaml`` from ``conf/`` as it is: what an error names as the way to recompose
it (``python -m convlens params <the same overrides>``) when ``dvc repro`` cannot."""

from __future__ import annotations

import shlex

from omegaconf import OmegaConf

from convlens.pipeline.conf_record import overrides_of
from convlens.pipeline.config import compose


def test_the_overrides_compose_the_same_params(project):
    given = ["analyses=light", "samples.indices=[0,3]", "render.map_cmap=magma", "feature_maps.layers=[conv2d]"]
    params = OmegaConf.to_container(compose(project, given))
    found = overrides_of(project / "conf", params)
    assert sorted(found) == sorted(
        ["analyses=light", "'samples.indices=[0, 3]'", "render.map_cmap=magma", "'feature_maps.layers=[conv2d]'"]
    )  # not feature_maps.each: it is derived
    assert OmegaConf.to_container(compose(project, [a for o in found for a in shlex.split(o)])) == params
    assert overrides_of(project / "conf", OmegaConf.to_container(compose(project))) == []
