"""Outside finding #8: Keras 3.15 saves a Functional call of a layer whose ``call`` takes a mask (BatchNormalization,
Softmax) with ``"kwargs": {"mask": null}``. That is no mask, and the numpy forward pass computes such a model (before:
it fell back to Keras with the false reason "layer 'bn', which does not simply follow 'stem'"). A real mask argument
is still refused (Keras computes it)."""

from __future__ import annotations

import copy
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from convlens.model.archive import Archive
from convlens.model.forward import open_network
from convlens.model.layer_config import LAYER_KEYS, MASK_KINDS, follows
from tests.unit.model.archives import outside_rgb_model, rewrite
from tests.unit.model.test_forward import randomize_weights

LAYERS = ["stem", "bn", "act", "pool", "block2", "gap", "head"]


def _config(path: Path) -> dict:
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read("config.json"))


def _entry(config: dict, name: str) -> dict:
    return next(e for e in config["config"]["layers"] if e["config"]["name"] == name)


@pytest.fixture(scope="module")
def conv_bn(tmp_path_factory) -> Path:
    """The outside tester's Functional Conv → BN → ReLU → Pool → Conv → GAP → Dense, every weight random (BN's
    moving statistics far from 0 and 1, so a skipped BN shows)."""
    model = outside_rgb_model(16, 6)
    randomize_weights(model, 4)
    path = tmp_path_factory.mktemp("mask") / "conv_bn.keras"
    model.save(path)
    return path


def _keras_outputs(path: Path, x: np.ndarray) -> list[np.ndarray]:
    from convlens.model.keras_models import load_model
    from tests.support.keras_reference import activation_model

    return [np.asarray(o) for o in activation_model(load_model(path), LAYERS).predict(x, verbose=0)]


def test_keras_saves_the_batch_normalization_call_with_mask_null(conv_bn):
    """The premise: what Keras writes (if a later Keras stops writing it, this says so)."""
    assert _entry(_config(conv_bn), "bn")["inbound_nodes"][0]["kwargs"] == {"mask": None}


def test_a_functional_batch_normalization_model_is_computed_in_numpy_as_keras_predicts(conv_bn):
    said: list[str] = []
    x = np.random.default_rng(0).uniform(0, 1, (4, 16, 16, 3)).astype(np.float32)
    mine = open_network(Archive.read(conv_bn), LAYERS, said.append).activations(x, LAYERS)
    assert said == []  # the numpy pass computed it (before: "… 'bn', which does not simply follow 'stem' …")
    for name, got, want in zip(LAYERS, mine, _keras_outputs(conv_bn, x), strict=True):
        assert got.shape == want.shape and got.dtype == np.float32, name
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.filterwarnings("ignore:Layer .pool.*mask:UserWarning")  # Keras passes the mask on
def test_a_real_mask_argument_goes_to_keras(conv_bn, tmp_path):
    """``bn(x, mask=some_tensor)``: the mask names another layer's output; the numpy pass does not compute it, and
    says so (what Keras then does with the mask is Keras's: here it refuses its shape)."""
    config = copy.deepcopy(_config(conv_bn))
    node = _entry(config, "bn")["inbound_nodes"][0]
    node["kwargs"] = {"mask": copy.deepcopy(node["args"][0])}  # a keras tensor: the stem's output
    path = rewrite(conv_bn, tmp_path / "masked.keras", config=config)
    said: list[str] = []
    open_network(Archive.read(path), ["bn"], said.append)
    assert len(said) == 1 and "layer 'bn', which does not simply follow 'stem'" in said[0], said


TENSOR = {"class_name": "__keras_tensor__", "config": {"keras_history": ["stem", 0, 0]}}


@pytest.mark.parametrize(
    ("kwargs", "kind", "simple"),
    [
        ({}, "Conv2D", True),
        ({"mask": None}, "BatchNormalization", True),
        ({"mask": None}, "Softmax", True),
        ({"mask": None, "training": False}, "BatchNormalization", True),
        ({"mask": None, "training": True}, "BatchNormalization", True),
        ({"training": False}, "Dropout", True),
        ({"mask": None}, "Conv2D", False),  # Keras: "got an unexpected keyword argument 'mask'"
        ({"mask": None}, None, False),
        ({"mask": TENSOR}, "BatchNormalization", False),  # a real mask
        ({"mask": [TENSOR]}, "BatchNormalization", False),
        ({"mask": False}, "BatchNormalization", False),
        ({"mask": 0}, "BatchNormalization", False),
        ({"mask": None, "other": 1}, "BatchNormalization", False),
        ({"mask": None, "training": None}, "BatchNormalization", False),
        (None, "BatchNormalization", False),
    ],
)
def test_follows_accepts_mask_null_where_the_layer_takes_a_mask_and_nothing_else_new(kwargs, kind, simple):
    nodes = [{"args": [TENSOR], "kwargs": kwargs}]
    assert follows(nodes, "stem", kind) is simple


def test_the_kinds_given_mask_null_are_those_whose_keras_call_takes_a_mask():
    """MASK_KINDS is written out (layer_config reads no TensorFlow); Keras's own call signatures say which."""
    import inspect

    from convlens.model.keras_models import keras

    takes = {kind for kind in LAYER_KEYS if "mask" in inspect.signature(getattr(keras.layers, kind).call).parameters}
    assert takes == MASK_KINDS
