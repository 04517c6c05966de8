"""The numpy forward pass against a hostile ``.keras`` (docs/robustness.md, the model rows): whatever the config
holds, ``forward.open_network`` ends as Keras ends: the same feature maps (within float32 rounding), or Keras's own
refusal in one line; never a traceback of the numpy pass, never a number Keras does not give.

Every expected outcome comes from Keras itself (``keras_models.load_model``, then a sub-model's ``predict``), never
from the numpy pass. The hostile configs are the untrained replay's (``test_initial_hostile.py``: ~230 of them, the
same tiny models) and those only the forward pass reads (Softmax and Normalization axes, statistics in the config,
odd Functional calls, stored dtypes, keys left out).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from convlens.errors import ConvlensError
from convlens.model.archive import Archive
from convlens.model.forward import Network, load_network, open_network
from convlens.model.ops import Unsupported
from tests.support.helpers import tiny_model
from tests.unit.model.archives import functional_chain, rewrite, rich_model
from tests.unit.model.test_forward import randomize_weights
from tests.unit.model.test_initial_hostile import (
    FUNCTIONAL,
    INITIALIZERS,
    LAYERS,
    RICH,
    STRUCTURE,
    config_of,
    fetch_model_refusal,
    init,
    layer,
    mutated,
    set_in,
)


@pytest.fixture(scope="module")
def keras():
    from convlens.model.keras_models import keras

    return keras


def _saved(factory, model) -> Path:
    """``model`` with every variable random (nonzero biases, batch statistics far from 0 and 1: a dropped one
    shows), saved."""
    randomize_weights(model, 0)
    path = factory.mktemp("model") / "trained.keras"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def tiny(keras, tmp_path_factory) -> Path:
    """The book's architecture scaled down (conv2d, max_pooling2d, conv2d_1, max_pooling2d_1, flatten, dense)."""
    return _saved(tmp_path_factory, tiny_model())


@pytest.fixture(scope="module")
def rich(keras, tmp_path_factory) -> Path:
    """A chain with batch normalization, dropouts and noise (identities at inference)."""
    return _saved(tmp_path_factory, rich_model())


@pytest.fixture(scope="module")
def chain(keras, tmp_path_factory) -> Path:
    """A Functional chain (input, conv, flatten, dense)."""
    return _saved(tmp_path_factory, functional_chain())


@pytest.fixture(scope="module")
def softmax(keras, tmp_path_factory) -> Path:
    """A conv layer, then a Softmax and a Normalization (the forward pass takes more of their configs than the
    replay)."""
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((5, 4, 2)),
            layers.Conv2D(3, 2, name="conv"),
            layers.Softmax(name="soft"),
            layers.Normalization(name="norm", mean=0.5, variance=4.0),
            layers.Flatten(name="flat"),
        ]
    )
    return _saved(tmp_path_factory, model)


def _outcome(run) -> tuple[str, object]:
    """("maps", [each layer's output]) or ("error", its class and first line)."""
    try:
        return "maps", run()
    except Exception as e:  # noqa: BLE001 - a traceback of either path is an outcome to compare
        return "error", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def compare_with_keras(path: Path, shape: tuple[int, ...], names: list[str] | None = None) -> list[str] | None:
    """What ``open_network`` logged (``[]``: the numpy pass computed it; None: it, and Keras, refused); asserts it
    ended as Keras ended: every layer's output the same within float32 rounding, or the same refusal (a traceback of
    Keras's own loader: now one line)."""
    from convlens.model.keras_models import load_model
    from tests.support.keras_reference import activation_model

    refused = fetch_model_refusal(path)
    if refused is not None:  # the pipeline never gets this far: fetch_model refuses it; read on its own, one line too
        with pytest.raises(ConvlensError):
            archive = Archive.read(path)
            open_network(archive, [info.name for info in archive.layers], print)
        return None
    names = names or [info.name for info in Archive.read(path).layers if info.index is not None]
    x = np.random.default_rng(1).uniform(0, 1, (3, *shape)).astype(np.float32)
    said: list[str] = []

    def ours():
        return open_network(Archive.read(path), names, said.append).activations(x, names)

    def theirs():
        outputs = activation_model(load_model(path), names).predict(x, verbose=0)
        return [np.asarray(o) for o in (outputs if isinstance(outputs, list | tuple) else [outputs])]

    mine, want = _outcome(ours), _outcome(theirs)
    assert mine[0] == want[0], f"ours: {mine[1] if mine[0] == 'error' else said}; Keras: {want[1]}"
    if mine[0] == "error":
        assert said, mine[1]  # Keras refused it, not the numpy pass
        if str(mine[1]).startswith("ConvlensError"):  # Keras's loader: its line, or its traceback as one line
            kind = str(want[1]).split(":")[0]
            built = f"ConvlensError: {path}: Keras cannot build this model ({kind}"
            computed = f"ConvlensError: {path}: Keras cannot compute this model "  # loaded, then failed computing it
            assert mine[1] == want[1] or str(mine[1]).startswith((built, computed)), mine[1]
        return None
    rounding = 1e-5 if not said else 0.1  # Keras both times: a bfloat16 policy rounds its own way in each call
    for name, got, expected in zip(names, mine[1], want[1], strict=True):
        assert got.shape == expected.shape and got.dtype == np.float32, name
        np.testing.assert_allclose(got, expected, rtol=rounding, atol=rounding, err_msg=name)
    return said


@pytest.mark.parametrize("change", INITIALIZERS.values(), ids=INITIALIZERS.keys())
def test_an_odd_initializer_ends_as_keras_ends(keras, tiny, tmp_path, change):
    compare_with_keras(mutated(tiny, tmp_path / "m.keras", change), (28, 28, 1))


@pytest.mark.filterwarnings("ignore:Do not pass an `input_shape`:UserWarning")  # the input-shape-key case: Keras warns
@pytest.mark.parametrize("change", LAYERS.values(), ids=LAYERS.keys())
def test_an_odd_layer_config_ends_as_keras_ends(keras, tiny, tmp_path, change):
    compare_with_keras(mutated(tiny, tmp_path / "m.keras", change), (28, 28, 1))


@pytest.mark.parametrize("change", RICH.values(), ids=RICH.keys())
def test_odd_normalization_dropout_and_noise_end_as_keras_ends(keras, rich, tmp_path, change):
    compare_with_keras(mutated(rich, tmp_path / "m.keras", change), (8, 8, 1))


@pytest.mark.parametrize(("change", "edit"), STRUCTURE.values(), ids=STRUCTURE.keys())
def test_an_odd_structure_ends_as_keras_ends(keras, tiny, tmp_path, change, edit):
    config = copy.deepcopy(config_of(tiny))
    change(config)
    compare_with_keras(rewrite(tiny, tmp_path / "m.keras", config=config, h5_edit=edit), (28, 28, 1))


def _node(name: str):
    """A change of the Functional chain's layer ``name``'s one inbound node."""

    def change(edit):
        def apply(config):
            entry = next(e for e in config["config"]["layers"] if e["config"]["name"] == name)
            edit(entry["inbound_nodes"][0])

        return apply

    return change


_CONV, _OUT = _node("conv"), _node("out")
ODD_CALLS = {  # what forward._chain once read without a check, or read as a plain chain
    **FUNCTIONAL,
    "a-second-argument": _CONV(lambda n: n["args"].append({"padding": "a dict that is not a tensor"})),
    "no-arguments": _CONV(lambda n: n.update(args=[])),
    "no-args-key": _CONV(lambda n: n.pop("args")),
    "history-of-no-layer": _OUT(lambda n: n["args"][0]["config"].update(keras_history=["nowhere", 0, 0])),
    "history-a-string": _OUT(lambda n: n["args"][0]["config"].update(keras_history="flat")),
    "history-empty": _OUT(lambda n: n["args"][0]["config"].update(keras_history=[])),
    "history-second-output": _OUT(lambda n: n["args"][0]["config"].update(keras_history=["flat", 0, 1])),
    "arg-not-a-dict": _OUT(lambda n: n.update(args=["flat"])),
    "nodes-not-a-list": lambda c: c["config"]["layers"][1].update(inbound_nodes={"args": []}),
    "training-flag-on-a-conv": _CONV(lambda n: n.update(kwargs={"training": True})),
}


@pytest.mark.parametrize("change", ODD_CALLS.values(), ids=ODD_CALLS.keys())
def test_an_odd_functional_call_ends_as_keras_ends(keras, chain, tmp_path, change):
    compare_with_keras(mutated(chain, tmp_path / "m.keras", change), (8, 8, 1))


ONLY_THE_FORWARD_PASS_READS = {
    "softmax-over-rows": set_in("soft", "axis", 1),
    "softmax-over-the-batch": set_in("soft", "axis", 0),
    "softmax-axis-past-the-input": set_in("soft", "axis", 4),
    "softmax-axis-negative-past": set_in("soft", "axis", -5),
    "softmax-axis-list": set_in("soft", "axis", [1, 2]),
    "softmax-axis-float": set_in("soft", "axis", -1.0),
    "normalization-statistics-per-channel": lambda c: layer(c, "norm").update(mean=[0.1, 0.2, 0.3], variance=[1, 2, 3]),
    "normalization-statistics-of-one": lambda c: layer(c, "norm").update(mean=[0.5], variance=[2.0]),
    "normalization-statistics-too-many": lambda c: layer(c, "norm").update(mean=[0.1] * 4, variance=[1.0] * 4),
    "normalization-statistics-mixed": lambda c: layer(c, "norm").update(mean=0.5, variance=[1.0, 2.0, 3.0]),
    "normalization-statistics-lengths-differ": lambda c: layer(c, "norm").update(mean=[0.5], variance=[1.0] * 3),
    "normalization-statistics-nested": lambda c: layer(c, "norm").update(mean=[[0.5]], variance=[[1.0]]),
    "normalization-mean-only": set_in("norm", "variance", None),
    "normalization-variance-string": set_in("norm", "variance", "4"),
    "normalization-variance-negative": set_in("norm", "variance", -4.0),
    "normalization-axis-none": set_in("norm", "axis", None),
    "normalization-axis-rows": set_in("norm", "axis", [1, 2]),
    "normalization-axis-rows-statistics": lambda c: layer(c, "norm").update(axis=1, mean=[1.0] * 4, variance=[2.0] * 4),
    "normalization-axis-batch": set_in("norm", "axis", 0),
    "normalization-axis-repeated": set_in("norm", "axis", [-1, 3]),
    "normalization-axis-past": set_in("norm", "axis", 7),
    "normalization-axis-float": set_in("norm", "axis", 1.0),
    "normalization-invert": set_in("norm", "invert", True),
    "conv-strides-left-out": set_in("conv", "strides", ...),
    "conv-kernel-size-left-out": set_in("conv", "kernel_size", ...),
    "conv-kernel-a-normal": set_in("conv", "kernel_initializer", init("HeNormal", seed=None)),
    "conv-kernel-a-normal-of-string-seed": set_in("conv", "kernel_initializer", init("HeNormal", seed="x")),
    "conv-kernel-random-normal": set_in("conv", "kernel_initializer", init("RandomNormal", mean=0.0, stddev=0.1)),
    "conv-kernel-random-normal-of-string": set_in("conv", "kernel_initializer", init("RandomNormal", stddev="x")),
    "conv-kernel-orthogonal": set_in("conv", "kernel_initializer", init("Orthogonal", gain=1.0, seed=None)),
    "conv-kernel-identity": set_in("conv", "kernel_initializer", init("Identity", gain=1.0)),
}


@pytest.mark.parametrize("change", ONLY_THE_FORWARD_PASS_READS.values(), ids=ONLY_THE_FORWARD_PASS_READS.keys())
def test_what_only_the_forward_pass_reads_ends_as_keras_ends(keras, softmax, tmp_path, change):
    compare_with_keras(mutated(softmax, tmp_path / "m.keras", change), (5, 4, 2))


AFTER_THE_LAYERS_ASKED = {  # the maps of the first layer only: Keras loads the whole model all the same
    "units-float": (LAYERS["units-float"], None),
    "pool-strides-zero": (LAYERS["pool-strides-zero"], None),
    "flatten-channels-first": (LAYERS["flatten-channels-first"], None),
    **{case: STRUCTURE[case] for case in ("valid-padding-shrinks-the-chain", "pool-larger-than-input")},
    "a-weightless-layer-with-a-variable": STRUCTURE["a-weightless-layer-with-a-variable"],
}


@pytest.mark.parametrize(("change", "edit"), AFTER_THE_LAYERS_ASKED.values(), ids=AFTER_THE_LAYERS_ASKED.keys())
def test_a_layer_keras_refuses_after_the_one_asked_for_ends_as_keras_ends(keras, tiny, tmp_path, change, edit):
    """``feature_maps@conv2d`` computes only conv2d, but Keras refuses the model for a later layer: so does the
    forward pass (before: conv2d's maps, from a model Keras does not load)."""
    config = copy.deepcopy(config_of(tiny))
    change(config)
    path = rewrite(tiny, tmp_path / "m.keras", config=config, h5_edit=edit)
    compare_with_keras(path, (28, 28, 1), ["conv2d"])


def _stored_as(dtype):
    def edit(h5):
        for key in ("layers/conv2d/vars/0", "layers/dense/vars/1"):
            value = h5[key][()]
            del h5[key]
            h5.create_dataset(key, data=(value * 4 if np.dtype(dtype).kind in "iu" else value).astype(dtype))

    return edit


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int32, np.int8])
def test_variables_stored_in_another_dtype_are_cast_to_float32_as_keras_loads_them(keras, tiny, tmp_path, dtype):
    """Keras loads each stored variable into a float32 variable; numpy once computed in float64 with a float64
    kernel (maps in float64)."""
    path = rewrite(tiny, tmp_path / "m.keras", h5_edit=_stored_as(dtype))
    assert compare_with_keras(path, (28, 28, 1)) == []  # the numpy pass, in float32


@pytest.mark.parametrize("layer_kind", ["Dropout", "GaussianNoise", "GaussianDropout", "BatchNormalization"])
def test_a_layer_called_in_training_mode_in_a_functional_graph_computes_as_keras_predicts(keras, tmp_path, layer_kind):
    """``layer(x, training=True)`` in a Functional graph: Keras's ``predict`` (and a sub-model called with
    ``training=False``, as convlens calls Keras) overrides the saved flag, so the layer is inference's, as in numpy."""
    layers = keras.layers
    x = keras.Input((8, 8, 1))
    made = {
        "Dropout": lambda: layers.Dropout(0.5, name="l"),
        "GaussianNoise": lambda: layers.GaussianNoise(0.9, name="l"),
        "GaussianDropout": lambda: layers.GaussianDropout(0.5, name="l"),
        "BatchNormalization": lambda: layers.BatchNormalization(name="l"),
    }[layer_kind]()
    y = made(layers.Conv2D(2, 3, name="c")(x), training=True)
    model = keras.Model(x, layers.Dense(3, name="out")(layers.Flatten(name="f")(y)))
    randomize_weights(model, 0)
    model.save(tmp_path / "m.keras")
    assert compare_with_keras(tmp_path / "m.keras", (8, 8, 1)) == []  # the numpy pass computed it: Keras's numbers
    sample = np.random.default_rng(2).uniform(0, 1, (3, 8, 8, 1)).astype(np.float32)
    net = load_network(Archive.read(tmp_path / "m.keras"))
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(net.activations(sample, ["out"])[0], loaded(sample, training=False), atol=1e-5)


def test_the_refusals_of_the_numpy_pass_name_the_key_and_the_chain(keras, tiny, softmax, tmp_path):
    """What the log says when Keras computes a model (before: a KeyError for a left-out key, a numpy result for
    pooling strides of 0, a Dense of 10.0 units or a valid-padding chain whose shapes do not fit)."""
    cases = {
        set_in("max_pooling2d", "strides", 0): "layer 'max_pooling2d' of class MaxPooling2D with strides 0",
        set_in("dense", "units", 10.0): "layer 'dense' of class Dense with units 10.0",
        set_in("conv2d", "padding", "valid"): "layer 'dense' (Dense), which stores [(392, 10), (10,)] where Keras "
        "builds [(288, 10), (10,)]",
        set_in("max_pooling2d", "pool_size", ...): "layer 'max_pooling2d' of class MaxPooling2D without pool_size",
    }
    for change, reason in cases.items():
        config = copy.deepcopy(config_of(tiny))
        change(config)
        for entry in config["config"]["layers"]:
            entry.pop("build_config", None)  # the shapes as the chain gives them, not as Keras saved them
        path = rewrite(tiny, tmp_path / "m.keras", config=config)
        with pytest.raises(Unsupported) as found:
            load_network(Archive.read(path))
        assert str(found.value) == reason
    said: list[str] = []
    network = open_network(Archive.read(softmax), ["soft"], said.append)
    assert isinstance(network, Network) and said == []
