import json
import zipfile

import numpy as np
import pytest

from stages.lib.archive import (
    LayerInfo,
    check_model_config,
    layer_infos,
    read_config,
    read_weights,
    resolve_layers,
)
from stages.lib.errors import ConvlensError

LAYERS = [
    LayerInfo(0, "conv2d", "Conv2D"),
    LayerInfo(1, "max_pooling2d", "MaxPooling2D"),
    LayerInfo(2, "conv2d_1", "Conv2D"),
    LayerInfo(3, "dense", "Dense"),
]


def test_archive_layers_match_keras_model_layers(tiny_assets):
    from stages.lib.keras_models import load_model, model_layers

    config = read_config(tiny_assets["model"])
    assert layer_infos(config) == model_layers(load_model(tiny_assets["model"]))


def test_read_weights_without_tensorflow_equals_keras(tiny_assets):
    from stages.lib.keras_models import load_model

    model = load_model(tiny_assets["model"])
    weights = read_weights(tiny_assets["model"], ["conv2d", "conv2d_1", "dense"])
    for name, arrays in weights.items():
        expected = model.get_layer(name).get_weights()
        assert len(arrays) == len(expected) == 2
        for got, want in zip(arrays, expected, strict=True):
            np.testing.assert_array_equal(got, want)


def test_resolve_layers_by_name_index_and_default():
    assert resolve_layers(None, LAYERS, "Conv2D") == ["conv2d", "conv2d_1"]
    assert resolve_layers(["conv2d_1", 0, "conv2d"], LAYERS, "Conv2D") == ["conv2d_1", "conv2d"]
    assert resolve_layers([1], LAYERS, "Conv2D") == ["max_pooling2d"]


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["conv9"], "unknown layer 'conv9'; this model has 0:conv2d, 1:max_pooling2d, 2:conv2d_1, 3:dense"),
        ([7], "layer index 7 is out of range 0..3"),
        ([-1], "out of range"),
        ([], "the layer list is empty"),
        ([1.5], "neither a name nor an index"),
        ([True], "neither a name nor an index"),
    ],
)
def test_resolve_layers_errors_list_the_models_layers(specs, message):
    with pytest.raises(ConvlensError, match=message.replace("(", r"\(").replace(".", r"\.")):
        resolve_layers(specs, LAYERS, "Conv2D")


def _archive(path, layers):
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": layers}}
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", b"")
        z.writestr("metadata.json", "{}")
    return path


def _layer(kind, name):
    return {"class_name": kind, "config": {"name": name}}


def test_lambda_layers_are_refused(tmp_path):
    path = _archive(tmp_path / "m.keras", [_layer("Conv2D", "conv2d"), _layer("Lambda", "evil")])
    with pytest.raises(ConvlensError, match=r"Lambda layers or Python lambdas \(evil\).*refused"):
        check_model_config(read_config(path), str(path))


def test_models_without_conv2d_are_refused(tmp_path):
    path = _archive(tmp_path / "m.keras", [_layer("Dense", "dense")])
    with pytest.raises(ConvlensError, match=r"has no Conv2D layer \(layers: dense \(Dense\)\)"):
        check_model_config(read_config(path), str(path))


def test_files_that_are_not_keras_archives_are_refused(tmp_path):
    html = tmp_path / "model.keras"
    html.write_text("<html>Not Found</html>", encoding="utf-8")
    with pytest.raises(ConvlensError, match="is not a Keras .keras archive"):
        read_config(html)
    other = tmp_path / "other.keras"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("readme.txt", "hi")
    with pytest.raises(ConvlensError, match="not a Keras archive"):
        read_config(other)


def test_unreadable_weights_are_refused(tmp_path):
    path = _archive(tmp_path / "m.keras", [_layer("Conv2D", "conv2d")])
    with pytest.raises(ConvlensError, match="model.weights.h5 is unreadable"):
        read_weights(path, ["conv2d"])


def test_write_reproducible_drops_save_dates(tmp_path):
    from stages.lib.archive import write_reproducible

    copies = []
    for i, (stamp, when) in enumerate(
        [("2024-01-01@00:00:00", (2024, 1, 1, 0, 0, 0)), ("2026-11-25@22:50:18", (2026, 11, 25, 22, 50, 18))]
    ):
        src = tmp_path / f"src{i}.keras"
        with zipfile.ZipFile(src, "w") as z:
            z.writestr(zipfile.ZipInfo("metadata.json", when), json.dumps({"keras_version": "3", "date_saved": stamp}))
            z.writestr(zipfile.ZipInfo("model.weights.h5", when), b"weights")
        write_reproducible(src, tmp_path / f"out{i}.keras")
        copies.append((tmp_path / f"out{i}.keras").read_bytes())
    assert copies[0] == copies[1]
    with zipfile.ZipFile(tmp_path / "out0.keras") as z:
        assert json.loads(z.read("metadata.json")) == {"keras_version": "3"}
        assert z.read("model.weights.h5") == b"weights"
