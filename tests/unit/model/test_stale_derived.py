"""``feature_maps.each`` is derived from the model file when ``conf/`` is composed (``${convlens_layers:}``); a model
replaced since (``dvc add`` then ``dvc repro``, which never recomposes) is named for what it is, with the way back:
outside tester, own model, finding 1 (before: ``feature_maps.layers: unknown layer 'c1'`` while that key was null)."""

from __future__ import annotations

import re
import shlex

import pytest
import yaml
from omegaconf import OmegaConf

from convlens.cli import params as params_cli
from convlens.errors import ConvlensError
from convlens.model.defaults import check_derived
from convlens.pipeline.config import PARAMS_FILE, compose, load_config, read_params, write_composed
from stages import check_config, fetch_model
from tests.support.helpers import tiny_model

OWN = "models/shapes.keras"
STALE = (
    f"{OWN}: feature_maps.each ['conv2d', 'conv2d_1'] was derived from the model's conv layers (feature_maps.layers: "
    "null) when params.yaml was composed, and the model changed since: its conv layers are now ['k1', 'k2']; "
    f"dvc repro never recomposes params.yaml: recompose it with the same overrides: `python -m convlens params "
    f"model.path={OWN}` or `dvc exp run -S model.path={OWN}` (`make params` drops -S values), then dvc repro"
)


def save_own(root, conv=("conv2d", "conv2d_1")) -> None:
    (root / "models").mkdir(exist_ok=True)
    tiny_model(conv=conv).save(root / OWN)


def test_a_model_replaced_after_composition_is_named_by_fetch_model_and_its_fix_works(project, monkeypatch):
    save_own(project)
    write_composed(project, compose(project, [f"model.path={OWN}"]))  # dvc exp run -S model.path=… (conf: local)
    save_own(project, conv=("k1", "k2"))  # the model replaced in place, params.yaml as it was
    with pytest.raises(ConvlensError) as err:
        fetch_model.run(load_config("fetch_model", [], project), project)
    assert str(err.value) == STALE
    monkeypatch.chdir(project)
    params_cli.main(shlex.split(re.search(r"`python -m convlens params (.+?)`", STALE)[1]))  # the fix it names
    assert read_params(project)["feature_maps"]["each"] == ["k1", "k2"]
    fetch_model.run(load_config("fetch_model", [], project), project)


def test_a_model_path_edited_by_hand_is_named_by_check_config(project):
    save_own(project, conv=("k1", "k2"))
    params = read_params(project)  # composed from the tiny model, whose conv layers are conv2d, conv2d_1
    params["model"]["path"] = params["model"]["source"] = OWN
    (project / PARAMS_FILE).write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    with pytest.raises(ConvlensError) as err:
        check_config.run(OmegaConf.create({}), project)
    assert str(err.value) == STALE


def test_each_from_a_presets_conv_layers_edited_since_says_so_without_a_params_yaml_to_read(tmp_path):
    model = {"conv_layers": ["conv2d"], "path": None}
    with pytest.raises(ConvlensError) as err:
        check_derived({"feature_maps": {"layers": None, "each": ["conv2d", "conv2d_1"]}, "model": model}, tmp_path)
    assert str(err.value) == (
        "feature_maps.each ['conv2d', 'conv2d_1'] was derived from model.conv_layers when params.yaml was composed, "
        "and model.conv_layers is now ['conv2d']; dvc repro never recomposes params.yaml: recompose it with the "
        "overrides it was composed with (`python -m convlens params KEY=VALUE …` or `dvc exp run -S KEY=VALUE …` "
        "again; `make params` drops -S values), then dvc repro"
    )
    check_derived({"feature_maps": {"layers": None, "each": ["conv2d"]}, "model": model}, tmp_path)


def test_a_params_yaml_conf_gives_whole_is_told_make_params(project):
    save_own(project, conv=("k1", "k2"))
    local = project / "conf" / "model" / "local.yaml"  # conf/ names the model itself: no override to repeat
    text = local.read_text(encoding="utf-8")
    local.write_text(re.sub(r"(?m)^path: .*$", f"path: {OWN}", text), encoding="utf-8")
    params = read_params(project)
    params["model"]["path"] = params["model"]["source"] = OWN  # as `make params` would have written it
    (project / PARAMS_FILE).write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    with pytest.raises(ConvlensError, match=r"recompose it: `make params` \(conf/ gives every setting it holds\)"):
        check_derived(params, project)
