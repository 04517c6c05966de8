"""A model of open input size (``keras.Input((None, None, C))``) in activation maximization: its inputs are made at
the data's image size (outside2 #3: before, it was refused after every other stage ran, with a hint naming the book's
28×28×1 whatever the data), and without the data's size the refusal names the input to build from the model's own
channels."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from convlens.errors import ConvlensError
from convlens.model.archive import Archive
from convlens.model.inputs import fixed_input_shape
from convlens.pipeline import paths
from tests.unit.model.test_keras_compute_errors import _stage, _stage_project


def _open_model(folder, channels: int = 1):
    from convlens.model.keras_models import keras

    path = folder / "open.keras"
    keras.Sequential(
        [
            keras.Input((None, None, channels)),
            keras.layers.Conv2D(3, 3, strides=2, padding="same", activation="relu", name="c1"),
            keras.layers.Conv2D(2, 3, activation="relu", name="c2"),
            keras.layers.GlobalMaxPooling2D(name="gmp"),
            keras.layers.Dense(10, activation="softmax", name="dense"),
        ]
    ).save(path)
    return path


def test_an_open_input_is_the_datas_image_size_and_without_it_the_refusal_names_the_models_channels(tmp_path):
    archive = Archive.read(_open_model(tmp_path, channels=3))
    assert fixed_input_shape(archive, (32, 30, 3)) == (32, 30, 3)
    with pytest.raises(ConvlensError, match=r"expects inputs of shape \?×\?×3 but the data's samples are 32×30×1"):
        fixed_input_shape(archive, (32, 30, 1))  # the data must fit the model (Archive.check_input)
    with pytest.raises(ConvlensError) as err:
        fixed_input_shape(archive)
    assert str(err.value).endswith("or build the model with a fixed keras.Input((H, W, 3))"), str(err.value)


def test_activation_max_climbs_a_model_of_open_input_size_at_the_datas_size(tmp_path, tiny_assets, monkeypatch, caplog):
    root, _ = _stage_project(tmp_path, tiny_assets, monkeypatch, _open_model(tmp_path))
    module, cfg = _stage(root, "dataset", ["dataset.batch_size=4"])  # what activation_max reads
    module.run(cfg, root, "trained")
    module, cfg = _stage(root, "activation_max", ["activation_max.layers=[c1]", "activation_max.steps=3"])
    with caplog.at_level(logging.INFO):
        module.run(cfg, root, "trained")
    x = np.load(paths.activation_max_dir(root, "trained") / paths.activation_max_name("trained", "c1"))
    assert x.shape == (3, 28, 28, 1)  # one input per channel, at the tiny data's 28×28×1
    said = [r.getMessage() for r in caplog.records if "input size is open" in r.getMessage()]
    assert said == [
        "outputs/models/trained.keras: the model's input size is open (None, None, 1); climbing inputs of the "
        "data's 28×28×1 images"
    ]
