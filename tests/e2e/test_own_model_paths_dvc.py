"""Your own model under real DVC (outside tester, own model): a model file replaced after ``params.yaml`` was composed
from it, and a ``model.path`` / ``data.path`` inside ``outputs/``, each named in one line with its fix, before DVC
deletes or refuses anything in its own words."""

from __future__ import annotations

import sys

import pytest

from tests.support.dvc_repo import dvc, ran, sh
from tests.support.helpers import tiny_model

pytestmark = pytest.mark.slow

OWN = "models/shapes.keras"


def test_a_model_replaced_with_other_layer_names_is_named_by_fetch_model_and_recomposing_mends_it(good_repo):
    root, env = good_repo
    (root / "models").mkdir(exist_ok=True)
    tiny_model(seed=3).save(root / OWN)  # conv2d, conv2d_1: what params.yaml's feature_maps.each is derived from
    dvc(root, env, "add", "-q", OWN)
    dvc(root, env, "exp", "run", "fetch_model", "-S", f"model.path={OWN}")
    tiny_model(seed=3, conv=("k1", "k2")).save(root / OWN)  # the user's new model, same file
    dvc(root, env, "add", "-q", OWN)
    out = dvc(root, env, "repro", check=False)
    assert (
        f"fetch_model: error: {OWN}: feature_maps.each ['conv2d', 'conv2d_1'] was derived from the model's conv layers "
        "(feature_maps.layers: null) when params.yaml was composed, and the model changed since: its conv layers are "
        f"now ['k1', 'k2']; dvc repro never recomposes params.yaml: recompose it with the same overrides: "
        f"`python -m convlens params model.path={OWN}` or `dvc exp run -S model.path={OWN}` (`make params` drops -S "
        "values), then dvc repro"
    ) in out, out
    assert ran(out) == ["fetch_model"] and "unknown layer" not in out
    sh(root, sys.executable, "-m", "convlens", "params", f"model.path={OWN}", env=env)  # the fix it names
    assert ran(dvc(root, env, "repro", "fetch_model")) == ["check_config", "fetch_model"]
    assert "feature_maps@k1" in dvc(root, env, "status")


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (
            ["model.path=outputs/models/trained.keras"],
            "model.path outputs/models/trained.keras lies inside outputs/, which the pipeline's stages write, so DVC "
            "cannot also read it as your model; copy it elsewhere, e.g. `mkdir -p models && cp "
            "outputs/models/trained.keras models/ && dvc add models/trained.keras`, and set "
            "-S model.path=models/trained.keras",
        ),
        (
            ["data=folder", "data.path=outputs/figures"],
            "data.path outputs/figures lies inside outputs/, which the pipeline's stages write, so DVC cannot also "
            "read it as your data; copy it elsewhere, e.g. `mkdir -p data && cp -r outputs/figures data/ && dvc add "
            "data/figures`, and set -S data.path=data/figures",
        ),
    ],
    ids=["model", "data"],
)
def test_an_input_inside_outputs_is_named_by_dvc_exp_run(good_repo, overrides, line):
    root, env = good_repo
    params = (root / "params.yaml").read_bytes()
    out = dvc(root, env, "exp", "run", *(a for o in overrides for a in ("-S", o)), check=False)
    assert f"ERROR: unexpected error - ConvlensError raised while resolving interpolation: {line}" in out, out
    assert "Same item(s)" not in out and ran(out) == []
    assert (root / "params.yaml").read_bytes() == params
