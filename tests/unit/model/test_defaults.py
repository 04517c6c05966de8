"""``feature_maps.layers: null``: every conv layer of the model, filled in as ``feature_maps.each`` at composition."""

from __future__ import annotations

import pytest

from convlens.errors import ConvlensError
from convlens.model.defaults import feature_map_layers, model_conv_layers
from convlens.pipeline.config import compose
from stages import fetch_model


def config(layers=None, conv_layers=None, path=None) -> dict:
    return {"feature_maps": {"layers": layers}, "model": {"conv_layers": conv_layers, "path": path}}


def test_a_given_list_is_kept_as_given(tmp_path):
    assert feature_map_layers(config(layers=["conv2d_1", 0]), tmp_path) == ["conv2d_1", 0]


def test_null_takes_the_presets_conv_layers_without_reading_a_file(tmp_path):
    assert feature_map_layers(config(conv_layers=["a", "b"], path="missing.keras"), tmp_path) == ["a", "b"]


def test_null_reads_the_conv_layers_of_the_model_file_relative_to_the_root(tiny_assets, tmp_path):
    (tmp_path / "m.keras").write_bytes(tiny_assets["model"].read_bytes())
    assert feature_map_layers(config(path="m.keras"), tmp_path) == ["conv2d", "conv2d_1"]
    assert model_conv_layers(tiny_assets["model"]) == ["conv2d", "conv2d_1"]


def test_null_without_a_model_to_read_names_the_fix(tmp_path):
    with pytest.raises(ConvlensError, match=r"set model.conv_layers in the model's preset, or name the layers"):
        feature_map_layers(config(), tmp_path)
    with pytest.raises(ConvlensError, match=r"^model.path .*nope.keras does not exist"):
        feature_map_layers(config(path="nope.keras"), tmp_path)


def test_a_model_without_conv_layers_is_refused_as_fetch_model_refuses_it(tmp_path):
    from convlens.model.keras_models import keras

    dense = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="dense")])
    dense.save(tmp_path / "dense.keras")
    with pytest.raises(ConvlensError, match=r"dense.keras has no convolutional layer \(layers: dense \(Dense\)\)"):
        model_conv_layers(tmp_path / "dense.keras")


def test_composition_fills_in_each_for_the_book_and_for_a_local_model(project, composed):
    assert list(compose(project).feature_maps.each) == ["conv2d", "conv2d_1"]  # the book's preset
    cfg = composed()  # the tiny model, model=local, layers null: read from the file
    assert cfg.feature_maps.layers is None and list(cfg.feature_maps.each) == ["conv2d", "conv2d_1"]
    assert list(composed("feature_maps.layers=[max_pooling2d,0]").feature_maps.each) == ["max_pooling2d", 0]


def test_an_each_edited_by_hand_away_from_the_layers_is_refused(composed):
    from omegaconf import OmegaConf

    from convlens.schema import check_config

    params = OmegaConf.to_container(composed("feature_maps.layers=[conv2d]"))
    params["feature_maps"]["each"] = ["conv2d", "conv2d_1"]
    with pytest.raises(ConvlensError, match=r"must be feature_maps.layers \(\['conv2d'\]\).*`make params`"):
        check_config(params)


def test_fetch_model_refuses_preset_conv_layers_the_model_does_not_have(stage_config, project):
    cfg = stage_config("fetch_model", "model.conv_layers=[conv2d]")
    with pytest.raises(ConvlensError, match=r"model.conv_layers \['conv2d'\] are not the model's conv layers"):
        fetch_model.run(cfg, project)
