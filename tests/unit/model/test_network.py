"""How a stage that runs the models on images starts (``convlens.model.network``): the trained model opened and
checked, the input scale read and its note logged, each model's network with a batch that fits, the input-range
warning; and the small model helpers the stages lean on (the output layer, a fixed input shape, the input range)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest

from convlens.errors import ConvlensError
from convlens.model import network as network_lib
from convlens.model.archive import Archive
from convlens.model.forward import Network, load_network
from convlens.model.inputs import InputScale, fixed_input_shape
from convlens.model.layers import LayerInfo, output_layer
from convlens.model.network import prepare
from convlens.pipeline import paths
from tests.support.helpers import tiny_model

LOG = logging.getLogger("tests.network")
PIXELS = np.random.default_rng(0).integers(0, 256, (3, 28, 28)).astype(np.uint8)


def save_models(root, model) -> None:
    for role in paths.ROLES:
        paths.model_path(root, role).parent.mkdir(parents=True, exist_ok=True)
        model.save(paths.model_path(root, role))


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("network")
    save_models(root, tiny_model())
    return root


def messages(caplog, level: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == level]


def test_prepare_opens_the_trained_model_and_scales_its_inputs_by_input_scale(tiny_root, caplog):
    caplog.set_level("INFO")
    models = prepare(tiny_root, PIXELS, 255, LOG)
    assert not caplog.records  # pixels / 255: nothing to say
    assert models.trained.path == paths.model_path(tiny_root, "trained")
    assert (models.scale, models.first_conv) == (InputScale(255.0), "conv2d")
    assert models.archive("trained") is models.trained
    assert models.archive("untrained").path == paths.model_path(tiny_root, "untrained")
    np.testing.assert_array_equal(models.sample, PIXELS[:1, ..., None] / np.float32(255))
    np.testing.assert_array_equal(models.inputs(PIXELS), PIXELS[..., None] / np.float32(255))
    assert models.inputs(PIXELS).dtype == np.float32


def test_prepare_refuses_images_the_model_does_not_take(tiny_root):
    with pytest.raises(ConvlensError, match=r"expects inputs of shape 28×28×1 but the data's samples are 14×14×1"):
        prepare(tiny_root, PIXELS[:, :14, :14], 255, LOG)


def test_prepare_logs_once_that_a_model_with_its_own_rescaling_gets_raw_pixels(tmp_path, caplog):
    from convlens.model.keras_models import keras

    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Rescaling(1 / 255, name="rescaling")(inputs)
    x = keras.layers.Conv2D(2, 3, name="conv2d")(x)
    save_models(tmp_path, keras.Model(inputs, keras.layers.Flatten(name="flatten")(x)))
    caplog.set_level("INFO")
    models = prepare(tmp_path, PIXELS, 255, LOG)
    assert messages(caplog, "INFO") == [
        "the model starts with Rescaling (scale 0.00392157, offset 0): feeding raw 0–255 pixels, input.scale ignored"
    ]
    assert models.scale.divisor == 1
    np.testing.assert_array_equal(models.inputs(PIXELS), PIXELS[..., None].astype(np.float32))


def test_a_network_runs_the_named_layers_with_the_batch_asked_for_when_it_fits(tiny_root, caplog):
    caplog.set_level("INFO")
    models = prepare(tiny_root, PIXELS, 255, LOG)
    network, size = models.network("untrained", ["conv2d_1"], 4, "dataset.batch_size")
    assert isinstance(network, Network) and size == 4 and not caplog.records
    want = load_network(Archive.read(paths.model_path(tiny_root, "untrained")), upto="conv2d_1")
    x = models.inputs(PIXELS)
    np.testing.assert_array_equal(network.activations(x, ["conv2d_1"])[0], want.activations(x, ["conv2d_1"])[0])


def test_a_batch_too_large_for_the_memory_is_capped_and_the_cap_logged(tiny_root, caplog, monkeypatch):
    monkeypatch.setattr(network_lib, "available_memory", lambda: 0)
    caplog.set_level("INFO")
    models = prepare(tiny_root, PIXELS, 255, LOG)
    _, size = models.network("trained", ["conv2d"], 8, "feature_maps.batch_size")
    assert size == 1
    [note] = messages(caplog, "INFO")
    assert note.startswith("feature_maps.batch_size=8 would need ") and note.endswith("using batches of 1")


def test_only_a_silent_first_conv_layer_is_warned_about(tiny_root, caplog):
    caplog.set_level("INFO")
    models = prepare(tiny_root, PIXELS, 255, LOG)
    silent = {"max": np.array([0.0, -1.0, 0.0, 2.0])}  # 3 of 4 channels never fire
    assert models.warn_if_silent({"conv2d_1": silent}, "the 3 test images") is None  # not the first conv layer
    assert models.warn_if_silent({"conv2d": {"max": np.array([1.0, 0.0, 2.0, 3.0])}}, "the 3 test images") is None
    assert not caplog.records
    warning = models.warn_if_silent({"conv2d_1": silent, "conv2d": silent}, "the 3 test images")
    assert warning == (
        "warning: 3 of 4 channels of conv2d never fire on the 3 test images; is the input scale right? "
        "the model may expect raw pixels: input.scale=1"
    )
    assert messages(caplog, "WARNING") == [warning]


def test_a_silent_first_conv_layer_of_a_model_trained_here_is_blamed_on_its_training(tiny_root, caplog):
    caplog.set_level("INFO")
    models = prepare(tiny_root, PIXELS, 255, LOG, trained_here=True)
    silent = {"max": np.array([0.0, -1.0, 0.0, 2.0])}
    warning = models.warn_if_silent({"conv2d": silent}, "the 3 test images")
    assert warning == (
        "warning: 3 of 4 channels of conv2d never fire on the 3 test images: the training of this run may have "
        "diverged (see its learning curves; a lower train.learning_rate)"
    )
    assert messages(caplog, "WARNING") == [warning]


def test_the_input_range_record_of_the_first_conv_layer_logs_its_warning(tiny_root, caplog):
    caplog.set_level("INFO")
    models = prepare(tiny_root, PIXELS, 1, LOG)
    none_seen = models.input_range(None, "test", 0)
    assert (none_seen["layer"], none_seen["channels"], none_seen["silent_channels"], none_seen["warning"]) == (
        "conv2d", 0, 0, None,
    )  # fmt: skip
    assert not caplog.records
    record = models.input_range(np.array([0.0, 0.0, 0.0, 5.0]), "test", 6)
    assert record == {
        "divisor": 1.0, "preprocessing": None, "layer": "conv2d", "silent_channels": 3, "channels": 4,
        "split": "test", "images": 6, "suggestion": "unit",
        "warning": "warning: 3 of 4 channels of conv2d never fire on the 6 test images; is the input scale right? "
        "the model may expect pixels in 0..1: input.scale=255",
    }  # fmt: skip
    assert messages(caplog, "WARNING") == [record["warning"]]


def test_the_output_layer_is_the_last_layer_of_the_model_itself(tiny_root):
    assert output_layer(Archive.read(paths.model_path(tiny_root, "trained")).layers) == "dense"
    nested_last = [LayerInfo(0, "inner", "Sequential"), LayerInfo(None, "inner/dense", "Dense")]
    assert output_layer([LayerInfo(0, "conv", "Conv2D"), *nested_last]) == "inner"


def test_a_fixed_input_shape_is_returned_and_an_open_one_without_the_datas_size_refused():
    """With the data's size an open one is that size (test_open_input_size.py); without it, the fix named is the
    model's own channels, not the book's 28×28×1."""
    assert fixed_input_shape(SimpleNamespace(input_shape=(28, 28, 1), source="m.keras")) == (28, 28, 1)
    with pytest.raises(
        ConvlensError, match=r"^m.keras accepts inputs of any size \(None, None, 3\); activation"
    ) as err:
        fixed_input_shape(SimpleNamespace(input_shape=(None, None, 3), source="m.keras"))
    assert str(err.value).endswith("keras.Input((H, W, 3))")  # Keras's name, capital I


def test_the_largest_input_is_the_brightest_pixel_divided_by_the_divisor():
    assert (InputScale(255.0).top, InputScale(1.0).top, InputScale(5.0).top) == (1.0, 255.0, 51.0)
