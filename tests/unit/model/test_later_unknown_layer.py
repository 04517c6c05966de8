"""A plain chain whose later layer the numpy forward pass lacks (LayerNormalization, DepthwiseConv2D after the stem):
the layers before it stay on numpy, as equal to Keras's; the layer itself goes to Keras with a reason naming its
class (outside tester 3, finding 14)."""

from __future__ import annotations

import numpy as np
import pytest

from convlens.model.archive import Archive
from convlens.model.forward import Network, open_network
from convlens.model.layer_config import chain_problem


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    from convlens.model.keras_models import keras

    layers = keras.layers
    keras.utils.set_random_seed(5)
    inputs = keras.Input((12, 12, 1))
    stem = layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="stem")(inputs)
    c2 = layers.Conv2D(4, 3, padding="same", name="c2")(stem)
    dw = layers.DepthwiseConv2D(3, padding="same", name="dw")(layers.LayerNormalization(name="ln")(c2))
    out = layers.Dense(3, name="head")(layers.GlobalAveragePooling2D(name="gap")(dw))
    model = keras.Model(inputs, out)
    rng = np.random.default_rng(5)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    path = tmp_path_factory.mktemp("later") / "chain.keras"
    model.save(path)
    return path, model


def test_layers_before_a_later_unknown_layer_stay_on_numpy_and_equal_keras(chain):
    from convlens.model.keras_models import keras

    path, model = chain
    said: list[str] = []
    net = open_network(Archive.read(path), ["stem", "c2"], said.append)
    assert isinstance(net, Network) and said == []
    x = np.random.default_rng(1).uniform(size=(2, 12, 12, 1)).astype(np.float32)
    for name, got in zip(["stem", "c2"], net.activations(x, ["stem", "c2"]), strict=True):
        want = np.asarray(keras.Model(model.inputs[0], model.get_layer(name).output)(x, training=False))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=name)


def test_the_unknown_layer_itself_goes_to_keras_naming_its_class(chain):
    path, _ = chain
    said: list[str] = []
    net = open_network(Archive.read(path), ["ln"], said.append)
    assert not isinstance(net, Network)
    assert said == [
        "chain.keras: layer 'ln' of class LayerNormalization, which the numpy forward pass does not compute; "
        "computing it with Keras"
    ]


def test_the_weight_check_names_a_class_it_does_not_replay_never_an_empty_build(chain):
    archive = Archive.read(chain[0])
    entries = archive.config["config"]["layers"]
    names = [e["config"]["name"] for e in entries[1:]]
    problem = chain_problem(entries, archive.weights(names))
    assert problem == "layer 'ln' of class LayerNormalization"
