"""The numpy replay of Keras's initialisation against a hostile ``.keras`` (docs/robustness.md, the model rows) and
``untrained.seed`` at the schema's limits: whatever the config holds, ``write_untrained`` ends as the old Keras path
did (``load_with_untrained_model``: load, then clone): the same weights, bit for bit, or the same one-line refusal.

Every expected outcome comes from Keras itself, never from the replay; where the replay hands a config to Keras, the
reason it names is checked too.
"""

from __future__ import annotations

import copy
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from convlens.errors import ConvlensError
from convlens.model.archive import Archive
from convlens.model.initial import PHILOX_CHUNK, stateless_uniform, untrained_variables, write_untrained
from convlens.schema import SCHEMA
from stages import build_untrained, fetch_model
from tests.support.helpers import one_line, tiny_model
from tests.unit.model.archives import functional_chain, rewrite, rich_model


@pytest.fixture(scope="module")
def keras():
    from convlens.model.keras_models import keras

    return keras


@pytest.fixture(scope="module")
def tiny(keras, tmp_path_factory) -> Path:
    """The book's architecture scaled down (conv2d, max_pooling2d, conv2d_1, max_pooling2d_1, flatten, dense)."""
    path = tmp_path_factory.mktemp("tiny") / "trained.keras"
    tiny_model().save(path)
    return path


@pytest.fixture(scope="module")
def rich(keras, tmp_path_factory) -> Path:
    """A chain with the other replayed kinds: batch normalization, dropouts, noise."""
    path = tmp_path_factory.mktemp("rich") / "trained.keras"
    rich_model().save(path)
    return path


def config_of(path: Path) -> dict:
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read("config.json"))


def layer(config: dict, name: str) -> dict:
    return next(e["config"] for e in config["config"]["layers"] if e["config"].get("name") == name)


def outcome(run) -> tuple[str, object]:
    """("weights", {layer: [bytes of each variable]}) or ("error", the exception's class and its one line)."""
    try:
        model = run()
    except Exception as e:  # noqa: BLE001 - a traceback of either path is an outcome to compare
        return "error", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return "weights", {
        layer.name: [(np.asarray(w).dtype.str, np.asarray(w).shape, np.asarray(w).tobytes()) for w in layer.weights]
        for layer in model.layers
    }


def fetch_model_refusal(path: Path) -> str | None:
    """What fetch_model says of the archive before any later stage sees it (its config and whole weights file
    checked); None when it passes."""
    try:
        archive = Archive.read(path)
        archive.weights([layer.name for layer in archive.layers])
    except ConvlensError as e:
        return str(e)
    return None


def compare_with_keras(path: Path, seed: int, dest: Path) -> str | None:
    """What ``write_untrained`` said (None: it, and Keras, refused); asserts it ended as Keras's load-and-clone did:
    the same variables, bit for bit, or the same error (a traceback of Keras's own included: the old path's)."""
    from convlens.model.keras_models import load_model, load_with_untrained_model

    said: list[str] = []
    refused = fetch_model_refusal(path)
    if refused is not None:  # the pipeline never gets this far; the stage on its own refuses it the same way
        with pytest.raises(ConvlensError) as found:
            write_untrained(Archive.read(path), seed, dest)
        assert str(found.value) == refused
        return None

    def ours():
        said.append(write_untrained(Archive.read(path), seed, dest))
        return load_model(dest)

    mine = outcome(ours)
    theirs = outcome(lambda: load_with_untrained_model(path, seed)[1])
    assert mine[0] == theirs[0], f"ours: {mine[1] if mine[0] == 'error' else said}; Keras: {theirs[1]}"
    if mine[0] == "error" and not str(theirs[1]).startswith("ConvlensError"):  # Keras's traceback: now one line
        kind = str(theirs[1]).split(":")[0]
        assert str(mine[1]).startswith(f"ConvlensError: {path}: Keras cannot build this model ({kind}"), mine[1]
        assert mine[1].endswith(")") and "\x1b" not in mine[1], mine[1]
        return None
    assert mine[1] == theirs[1], said
    return said[0] if said else None


def mutated(src: Path, dest: Path, change) -> Path:
    config = copy.deepcopy(config_of(src))
    change(config)
    return rewrite(src, dest, config=config)


def set_in(name: str, key: str, value):
    """A change: layer ``name``'s config key ``key`` set to ``value`` (``...``: removed)."""

    def change(config):
        cfg = layer(config, name)
        if value is ...:
            cfg.pop(key, None)
        else:
            cfg[key] = copy.deepcopy(value)

    return change


def init(class_name: str, **cfg) -> dict:
    return {"module": "keras.initializers", "class_name": class_name, "config": cfg, "registered_name": None}


def kernel(spec) -> object:
    return set_in("conv2d", "kernel_initializer", spec)


BIG = 10**400  # a JSON integer past any float
INITIALIZERS = {
    # seeds
    "seed-float": kernel(init("GlorotUniform", seed=5.0)),
    "seed-bool": kernel(init("GlorotUniform", seed=True)),
    "seed-negative": kernel(init("GlorotUniform", seed=-7)),
    "seed-string": kernel(init("GlorotUniform", seed="7")),
    "seed-past-2**32": kernel(init("GlorotUniform", seed=2**32 + 5)),
    "seed-past-2**63": kernel(init("GlorotUniform", seed=2**63 + 1)),
    "seed-at-the-fold": kernel(init("RandomUniform", seed=2**31 - 2)),
    "seed-int32-max": kernel(init("RandomUniform", seed=2**31 - 1)),
    "seed-none": kernel(init("RandomUniform", seed=None)),
    "seed-dict": kernel(init("RandomUniform", seed={"class_name": "SeedGenerator", "config": {"seed": 3}})),
    # RandomUniform's bounds
    "uniform-min-above-max": kernel(init("RandomUniform", minval=1.0, maxval=-1.0)),
    "uniform-min-equals-max": kernel(init("RandomUniform", minval=0.5, maxval=0.5)),
    "uniform-ints": kernel(init("RandomUniform", minval=-2, maxval=3)),
    "uniform-nan": kernel(init("RandomUniform", minval=float("nan"), maxval=1.0)),
    "uniform-inf": kernel(init("RandomUniform", minval=-1.0, maxval=float("inf"))),
    "uniform-huge": kernel(init("RandomUniform", minval=-3e38, maxval=3e38)),
    "uniform-past-float32": kernel(init("RandomUniform", minval=-1e39, maxval=0.0)),
    "uniform-big-int": kernel(init("RandomUniform", minval=0, maxval=BIG)),
    "uniform-string": kernel(init("RandomUniform", minval="0", maxval=1.0)),
    "uniform-extra-key": kernel(init("RandomUniform", minval=0.0, maxval=1.0, mean=3.0)),
    # VarianceScaling
    "scaling-zero": kernel(init("VarianceScaling", scale=0.0, mode="fan_in", distribution="uniform")),
    "scaling-negative": kernel(init("VarianceScaling", scale=-1.0, mode="fan_in", distribution="uniform")),
    "scaling-nan": kernel(init("VarianceScaling", scale=float("nan"), mode="fan_in", distribution="uniform")),
    "scaling-inf": kernel(init("VarianceScaling", scale=float("inf"), mode="fan_in", distribution="uniform")),
    "scaling-big-int": kernel(init("VarianceScaling", scale=BIG, mode="fan_in", distribution="uniform")),
    "scaling-string": kernel(init("VarianceScaling", scale="2", mode="fan_in", distribution="uniform")),
    "scaling-bool": kernel(init("VarianceScaling", scale=True, mode="fan_in", distribution="uniform")),
    "scaling-int": kernel(init("VarianceScaling", scale=3, mode="fan_avg", distribution="uniform")),
    "scaling-tiny": kernel(init("VarianceScaling", scale=1e-45, mode="fan_in", distribution="uniform")),
    "mode-upper": kernel(init("VarianceScaling", scale=1.0, mode="FAN_IN", distribution="uniform")),
    "mode-unknown": kernel(init("VarianceScaling", scale=1.0, mode="fan_sideways", distribution="uniform")),
    "mode-absent": kernel(init("VarianceScaling", scale=2.0, distribution="uniform")),
    "distribution-capitalised": kernel(init("VarianceScaling", scale=1.0, mode="fan_in", distribution="Uniform")),
    "distribution-unknown": kernel(init("VarianceScaling", scale=1.0, mode="fan_in", distribution="cauchy")),
    "distribution-normal": kernel(init("VarianceScaling", scale=1.0, mode="fan_in", distribution="normal")),
    "distribution-truncated": kernel(init("VarianceScaling", mode="fan_in", distribution="truncated_normal")),
    "distribution-untruncated": kernel(init("VarianceScaling", mode="fan_out", distribution="untruncated_normal")),
    "distribution-absent": kernel(init("VarianceScaling", scale=1.0, mode="fan_in")),
    "scaling-axes": kernel(init("VarianceScaling", distribution="uniform", input_axes=[0], output_axes=[-1])),
    "scaling-extra-key": kernel(init("VarianceScaling", distribution="uniform", minval=1.0)),
    "glorot-extra-key": kernel(init("GlorotUniform", seed=None, scale=3.0)),
    "glorot-axes-null": kernel(init("GlorotUniform", seed=None, input_axes=None, output_axes=None)),
    "glorot-config-null": kernel({"module": "keras.initializers", "class_name": "GlorotUniform", "config": None}),
    "glorot-no-config": kernel({"module": "keras.initializers", "class_name": "GlorotUniform"}),
    "he-uniform-seeded": kernel(init("HeUniform", seed=3)),
    # constants
    "constant-list": kernel(init("Constant", value=[1.0, 2.0])),
    "constant-string": kernel(init("Constant", value="1")),
    "constant-bool": kernel(init("Constant", value=True)),
    "constant-int": kernel(init("Constant", value=-3)),
    "constant-big-int": kernel(init("Constant", value=BIG)),
    "constant-absent": kernel(init("Constant")),
    "constant-past-float32-int": kernel(init("Constant", value=2**24 + 1)),
    "constant-past-int32": kernel(init("Constant", value=2**40 + 1)),
    "constant-past-int64": kernel(init("Constant", value=10**20)),
    "constant-subnormal": kernel(init("Constant", value=1e-40)),
    "uniform-subnormal": kernel(init("RandomUniform", minval=0.0, maxval=1e-39)),
    "uniform-tiny-width": kernel(init("RandomUniform", minval=1.0, maxval=1.0000001)),
    "scaling-subnormal": kernel(init("VarianceScaling", scale=1e-80, mode="fan_in", distribution="uniform")),
    "constant-rounded-twice": kernel(init("Constant", value=2**60 + 2**36 + 1)),  # through a double: 2**60
    "uniform-rounded-twice": kernel(init("RandomUniform", minval=0, maxval=2**60 + 2**36 + 1)),
    "uniform-past-int64": kernel(init("RandomUniform", minval=-(10**20), maxval=10**20)),
    "scaling-past-int64": kernel(init("VarianceScaling", scale=10**20, mode="fan_in", distribution="uniform")),
    "seed-int64-max": kernel(init("RandomUniform", seed=2**63 - 1)),
    "seed-int64-min": kernel(init("RandomUniform", seed=-(2**63) + 1)),
    "zeros-extra-key": kernel(init("Zeros", value=3.0)),
    # names
    **{
        f"string-{name}": kernel(name)
        for name in (
            "glorot_uniform",
            "zeros",
            "ones",
            "he_uniform",
            "lecun_uniform",
            "random_uniform",
            "uniform",
            "GlorotUniform",
            "Zeros",
            "glorot_normal",
            "orthogonal",
            "identity",
            "nope",
        )
    },
    "string-bias-ones": set_in("conv2d", "bias_initializer", "ones"),
    "bias-glorot": set_in("conv2d", "bias_initializer", init("GlorotUniform", seed=None)),
    "bias-scaling-fan-avg": set_in(
        "dense", "bias_initializer", init("VarianceScaling", scale=0.5, mode="fan_avg", distribution="uniform")
    ),
    "module-layers": kernel({**init("GlorotUniform", seed=None), "module": "keras.layers"}),
    "module-absent": kernel({"class_name": "GlorotUniform", "config": {"seed": None}}),
    "registered-name": kernel({**init("GlorotUniform", seed=None), "registered_name": "GlorotUniform"}),
    "registered-custom": kernel({**init("GlorotUniform", seed=None), "registered_name": "Custom>GlorotUniform"}),
    "custom-class": kernel(init("MyInitializer", seed=None)),
    "lowercase-class": kernel(init("glorot_uniform", seed=None)),
    "initializer-number": kernel(3),
    "initializer-null": kernel(None),
    "initializer-absent": kernel(...),
}


@pytest.mark.parametrize("change", INITIALIZERS.values(), ids=INITIALIZERS.keys())
def test_an_odd_initializer_ends_as_keras_ends(keras, tiny, tmp_path, change):
    path = mutated(tiny, tmp_path / "trained.keras", change)
    compare_with_keras(path, 42, tmp_path / "untrained.keras")


def _dtype(name: str) -> dict:
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name}, "registered_name": None}


def _model_key(key, value):
    def change(config):
        config["config"][key] = value

    return change


LAYERS = {
    # Dense
    "units-zero": set_in("dense", "units", 0),
    "units-negative": set_in("dense", "units", -3),
    "units-huge": set_in("dense", "units", 10**9),
    "units-float": set_in("dense", "units", 10.0),
    "units-bool": set_in("dense", "units", True),
    "units-string": set_in("dense", "units", "10"),
    "dense-lora-null": set_in("dense", "lora_rank", None),
    "dense-quantized": set_in("dense", "quantization_config", {"mode": "int8"}),
    # Conv2D
    "filters-zero": set_in("conv2d", "filters", 0),
    "filters-float": set_in("conv2d", "filters", 4.0),
    "filters-bool": set_in("conv2d_1", "filters", True),
    "kernel-size-zero": set_in("conv2d", "kernel_size", 0),
    "kernel-size-huge": set_in("conv2d", "kernel_size", 10**6),
    "kernel-size-3-tuple": set_in("conv2d", "kernel_size", [3, 3, 3]),
    "kernel-size-int": set_in("conv2d", "kernel_size", 3),
    "kernel-size-with-zero": set_in("conv2d", "kernel_size", [3, 0]),
    "strides-zero": set_in("conv2d", "strides", 0),
    "strides-negative": set_in("conv2d", "strides", [-1, 1]),
    "padding-upper": set_in("conv2d", "padding", "SAME"),
    "padding-unknown": set_in("conv2d", "padding", "sideways"),
    "dilation": set_in("conv2d", "dilation_rate", 2),
    "groups-zero": set_in("conv2d", "groups", 0),
    "data-format-null": set_in("conv2d", "data_format", None),
    "data-format-first": set_in("conv2d", "data_format", "channels_first"),
    "activation-gelu": set_in("conv2d", "activation", "gelu"),
    "activation-null": set_in("conv2d", "activation", None),
    "activation-unknown": set_in("conv2d", "activation", "nope"),
    "activation-upper": set_in("conv2d", "activation", "RELU"),
    # every layer
    "dtype-mixed": set_in("conv2d", "dtype", "mixed_float16"),
    "dtype-float64": set_in("conv2d", "dtype", "float64"),
    "dtype-float32": set_in("conv2d", "dtype", "float32"),
    "dtype-null": set_in("conv2d", "dtype", None),
    "dtype-policy-float64": set_in("conv2d", "dtype", _dtype("float64")),
    "dtype-policy-mixed": set_in("conv2d", "dtype", _dtype("mixed_bfloat16")),
    "dtype-policy-extra": set_in("conv2d", "dtype", {**_dtype("float32"), "config": {"name": "float32", "x": 1}}),
    "dtype-policy-float": set_in("conv2d", "dtype", {**_dtype("float32"), "class_name": "FloatDTypePolicy"}),
    "dtype-policy-shared": set_in("conv2d", "dtype", {**_dtype("float32"), "shared_object_id": 1234}),
    "dtype-of-flatten": set_in("flatten", "dtype", "float64"),
    "dtype-of-pooling": set_in("max_pooling2d", "dtype", "mixed_float16"),
    "model-dtype-mixed": _model_key("dtype", _dtype("mixed_float16")),
    "model-not-trainable": _model_key("trainable", False),
    "trainable-false": set_in("conv2d", "trainable", False),
    "trainable-string": set_in("conv2d", "trainable", "no"),
    "use-bias-absent": set_in("conv2d", "use_bias", ...),
    "use-bias-string": set_in("conv2d", "use_bias", "yes"),
    "use-bias-false": set_in("dense", "use_bias", False),
    "extra-key": set_in("conv2d", "foo", 1),
    "extra-key-on-pooling": set_in("max_pooling2d", "foo", 1),
    "input-shape-key": set_in("conv2d", "input_shape", [28, 28, 1]),
    "autocast": set_in("conv2d", "autocast", False),
    "weights-key": set_in("dense", "weights", [[0.0]]),
    "regularizer": set_in(
        "conv2d",
        "kernel_regularizer",
        {"module": "keras.regularizers", "class_name": "L2", "config": {"l2": 0.01}, "registered_name": None},
    ),
    "regularizer-bad": set_in(
        "conv2d",
        "kernel_regularizer",
        {"module": "keras.regularizers", "class_name": "L2", "config": {"l2": "x"}, "registered_name": None},
    ),
    "constraint": set_in(
        "dense",
        "kernel_constraint",
        {"module": "keras.constraints", "class_name": "NonNeg", "config": {}, "registered_name": None},
    ),
    "name-absent-trainable-null": set_in("conv2d", "trainable", None),
    # the weightless layers' own checks
    "pool-size-zero": set_in("max_pooling2d", "pool_size", 0),
    "pool-strides-zero": set_in("max_pooling2d", "strides", 0),
    "pool-padding-upper": set_in("max_pooling2d", "padding", "SAME"),
    "pool-padding-unknown": set_in("max_pooling2d", "padding", "sideways"),
    "flatten-channels-first": set_in("flatten", "data_format", "channels_first"),
}


@pytest.mark.filterwarnings("ignore:Do not pass an `input_shape`:UserWarning")  # the input-shape-key case: Keras warns
@pytest.mark.parametrize("change", LAYERS.values(), ids=LAYERS.keys())
def test_an_odd_layer_config_ends_as_keras_ends(keras, tiny, tmp_path, change):
    path = mutated(tiny, tmp_path / "trained.keras", change)
    compare_with_keras(path, 42, tmp_path / "untrained.keras")


RICH = {
    "dropout-negative": set_in("drop", "rate", -0.1),
    "dropout-one": set_in("drop", "rate", 1.0),
    "dropout-past-one": set_in("drop", "rate", 1.5),
    "dropout-string": set_in("drop", "rate", "0.2"),
    "dropout-bool": set_in("drop", "rate", True),
    "dropout-noise-shape": set_in("drop", "noise_shape", [None, 1, 1, 4]),
    "dropout-seed-negative": set_in("drop", "seed", -1),
    "dropout-seed-float": set_in("drop", "seed", 2.5),
    "dropout-seed-bool": set_in("drop", "seed", True),
    "dropout-seed-past-2**32": set_in("drop", "seed", 2**32 + 1),
    "dropout-seed-past-2**63": set_in("drop", "seed", 2**63),
    "noise-seed-past-2**63": set_in("noise", "seed", -(2**64)),
    "noise-negative": set_in("noise", "stddev", -1.0),
    "noise-zero": set_in("noise", "stddev", 0.0),
    "noise-nan": set_in("noise", "stddev", float("nan")),
    "noise-big-int": set_in("noise", "stddev", BIG),
    "noise-above-one": set_in("noise", "stddev", 3.0),  # Keras: "a float value between 0 and 1"
    "bn-momentum-string": set_in("bn", "momentum", "x"),
    "bn-epsilon-zero": set_in("bn", "epsilon", 0.0),
    "bn-epsilon-negative": set_in("bn", "epsilon", -1.0),
    "bn-axis": set_in("bn", "axis", 5),
    "bn-center-string": set_in("bn", "center", "no"),
    "bn-renorm": set_in("bn", "renorm", True),
    "bn-synchronized": set_in("bn", "synchronized", True),
    "bn-random-gamma": set_in("bn", "gamma_initializer", init("RandomUniform", seed=None)),
    "bn-seeded-gamma": set_in("bn", "gamma_initializer", init("RandomUniform", minval=0.5, maxval=1.5, seed=4)),
    "bn-constant-variance": set_in("bn", "moving_variance_initializer", init("Constant", value=2.0)),
}


@pytest.mark.parametrize("change", RICH.values(), ids=RICH.keys())
def test_odd_normalization_dropout_and_noise_end_as_keras_ends(keras, rich, tmp_path, change):
    path = mutated(rich, tmp_path / "trained.keras", change)
    compare_with_keras(path, 7, tmp_path / "untrained.keras")


SEED_LIMITS = [0, 1, 2**31 - 3, 2**31 - 2, 2**31 - 1, 2**31, 2**32 - 2, 2**32 - 1]


def test_the_seeds_tried_span_the_schemas_range():
    check = SCHEMA["untrained.seed"]
    for seed in SEED_LIMITS:
        check("untrained.seed", seed)
    for seed in (min(SEED_LIMITS) - 1, max(SEED_LIMITS) + 1):
        with pytest.raises(ConvlensError):
            check("untrained.seed", seed)


@pytest.mark.parametrize("seed", SEED_LIMITS)
def test_untrained_seed_at_the_schemas_limits_is_kerass(keras, rich, tmp_path, seed):
    assert compare_with_keras(rich, seed, tmp_path / "untrained.keras") == "Keras's initializers replayed in numpy"


def set_input(key: str, value):
    """A change: the input layer's config key ``key`` set to ``value`` (its name depends on the models made before)."""

    def change(config):
        config["config"]["layers"][0]["config"][key] = value

    return change


def _entry(config: dict, name: str) -> dict:
    return next(e for e in config["config"]["layers"] if e["config"].get("name") == name)


def _narrow_first_conv(h5) -> None:
    """conv2d's variables for 2 filters instead of 4 (its config says 2 too, conv2d_1's still 4 inputs)."""
    for i, shape in (("0", (3, 3, 1, 2)), ("1", (2,))):
        del h5[f"layers/conv2d/vars/{i}"]
        h5.create_dataset(f"layers/conv2d/vars/{i}", data=np.zeros(shape, np.float32))


def _lying_build_config(config: dict) -> None:
    layer(config, "conv2d")["filters"] = 2  # conv2d_1's build_config still says 4 input channels: a lie


def _lying_and_no_build_config(config: dict) -> None:
    _lying_build_config(config)
    _entry(config, "conv2d_1").pop("build_config")


def _variable_for_flatten(h5) -> None:
    h5.create_dataset("layers/flatten/vars/0", data=np.zeros(3, np.float32))


STRUCTURE = {  # (change of config.json, edit of model.weights.h5)
    "build-config-lies": (_lying_build_config, _narrow_first_conv),
    "no-build-config-and-weights-for-another-chain": (_lying_and_no_build_config, _narrow_first_conv),
    "a-weightless-layer-with-a-variable": (lambda c: None, _variable_for_flatten),
    "batch-shape-with-a-batch": (set_input("batch_shape", [5, 28, 28, 1]), None),
    "input-dtype-uint8": (set_input("dtype", "uint8"), None),
    "input-sparse": (set_input("sparse", True), None),
    "no-input-layer": (lambda c: c["config"]["layers"].pop(0), None),
    "model-registered-name": (lambda c: c.update(registered_name="Custom>Sequential"), None),
    "model-extra-key": (lambda c: c["config"].update(foo=1), None),
    "model-build-config-lies": (lambda c: c.update(build_config={"input_shape": [None, 14, 14, 1]}), None),
    "model-build-input-shape-lies": (lambda c: c["config"].update(build_input_shape=[None, 14, 14, 1]), None),
    "layer-registered-name": (lambda c: _entry(c, "conv2d").update(registered_name="Custom>Conv2D"), None),
    "layer-registered-own-name": (lambda c: _entry(c, "conv2d").update(registered_name="Conv2D"), None),
    "layer-entry-extra-key": (lambda c: _entry(c, "conv2d").update(foo=1), None),
    "layer-build-config-batch": (
        lambda c: _entry(c, "conv2d").update(build_config={"input_shape": [7, 28, 28, 1]}),
        None,
    ),
    "layer-build-config-odd": (
        lambda c: _entry(c, "conv2d").update(build_config={"input_shape": [None, 28, 28]}),
        None,
    ),
    "glorot-input-axes": (kernel(init("GlorotUniform", seed=None, input_axes=[0, 1, 2], output_axes=[3])), None),
    "dtype-policy-module": (set_in("conv2d", "dtype", {**_dtype("float32"), "module": "keras.dtype_policies"}), None),
    "dtype-policy-odd-module": (set_in("conv2d", "dtype", {**_dtype("float32"), "module": "keras.layers"}), None),
    "valid-padding-shrinks-the-chain": (set_in("conv2d", "padding", "valid"), None),  # Flatten gives 288, not 392
    "pool-larger-than-input": (set_in("max_pooling2d_1", "pool_size", [20, 20]), None),
}


@pytest.mark.parametrize(("change", "edit"), STRUCTURE.values(), ids=STRUCTURE.keys())
def test_an_odd_structure_ends_as_keras_ends(keras, tiny, tmp_path, change, edit):
    config = copy.deepcopy(config_of(tiny))
    change(config)
    path = rewrite(tiny, tmp_path / "trained.keras", config=config, h5_edit=edit)
    compare_with_keras(path, 42, tmp_path / "untrained.keras")


@pytest.mark.parametrize("training", [True, False])
def test_a_functional_dropout_called_in_training_mode_is_replayed(keras, tmp_path, training):
    """``layer(x, training=True)`` in a Functional graph changes what the layer computes, not its variables."""
    layers = keras.layers
    x = keras.Input((8, 8, 1))
    y = layers.Dropout(0.3, name="d")(layers.Conv2D(2, 3, name="c")(x), training=training)
    keras.Model(x, layers.Dense(3, name="out")(layers.Flatten(name="f")(y))).save(tmp_path / "trained.keras")
    how = compare_with_keras(tmp_path / "trained.keras", 11, tmp_path / "untrained.keras")
    assert how == "Keras's initializers replayed in numpy"


def test_an_adapted_normalization_whose_statistics_do_not_fit_its_input_goes_to_keras(keras, tmp_path):
    layers = keras.layers
    normalization = layers.Normalization(name="norm")
    normalization.adapt(np.random.default_rng(0).random((4, 6, 6, 3)).astype(np.float32))
    keras.Sequential([keras.Input((6, 6, 3)), normalization, layers.Conv2D(2, 3, name="c")]).save(tmp_path / "a.keras")

    def five(h5):
        for i in ("0", "1"):
            del h5[f"layers/normalization/vars/{i}"]
            h5.create_dataset(f"layers/normalization/vars/{i}", data=np.ones(5, np.float32))

    path = rewrite(tmp_path / "a.keras", tmp_path / "trained.keras", h5_edit=five)
    assert compare_with_keras(path, 3, tmp_path / "untrained.keras") is None  # Keras refuses it, and so do we


REASONS = {  # a case each of what the replay used to take and Keras does not: the reason it now names
    "scaling-negative": "VarianceScaling with scale -1.0",
    "scaling-zero": "VarianceScaling with scale 0.0",
    "uniform-big-int": "RandomUniform with maxval 1000",
    "constant-big-int": "Constant with value 1000",
    "constant-absent": "Constant without a value",
    "constant-past-int64": f"Constant with value {10**20}",
    "uniform-subnormal": "RandomUniform with numbers so near 0 that TensorFlow flushes them to 0",
    "uniform-rounded-twice": f"RandomUniform with maxval {2**60 + 2**36 + 1}",
    "glorot-extra-key": "GlorotUniform with the keys ['scale']",
    "zeros-extra-key": "Zeros with the keys ['value']",
}
LAYER_REASONS = {
    "units-zero": "layer 'dense' of class Dense with units 0",
    "units-float": "layer 'dense' of class Dense with units 10.0",
    "filters-bool": "layer 'conv2d_1' of class Conv2D with filters True",
    "kernel-size-3-tuple": "layer 'conv2d' of class Conv2D with kernel_size [3, 3, 3]",
    "strides-zero": "layer 'conv2d' of class Conv2D with strides 0",
    "pool-size-zero": "layer 'max_pooling2d' of class MaxPooling2D with pool_size 0",
    "trainable-string": "layer 'conv2d' of class Conv2D with trainable 'no'",
    "dtype-policy-extra": "layer 'conv2d' of class Conv2D with dtype",
    "extra-key": "layer 'conv2d' of class Conv2D with the key 'foo'",
    "weights-key": "layer 'dense' of class Dense with the key 'weights'",
    "regularizer-bad": "layer 'conv2d' of class Conv2D with kernel_regularizer",
}
STRUCTURE_REASONS = {
    "build-config-lies": "layer 'conv2d_1', built for inputs {'input_shape': [None, 14, 14, 4]} where the chain gives",
    "no-build-config-and-weights-for-another-chain": "layer 'conv2d_1' (Conv2D), which stores [(3, 3, 4, 8), (8,)] "
    "where Keras builds [(3, 3, 2, 8), (8,)]",
    "a-weightless-layer-with-a-variable": "layer 'flatten' (Flatten), which stores [(3,)] where Keras builds []",
    "valid-padding-shrinks-the-chain": "layer 'conv2d_1', built for inputs {'input_shape': [None, 14, 14, 4]} where "
    "the chain gives (13, 13, 4)",
    "pool-larger-than-input": "layer 'max_pooling2d_1' (MaxPooling2D) on inputs of shape (14, 14, 8)",
    "glorot-input-axes": "GlorotUniform with input_axes [0, 1, 2] and output_axes [3]",
}


@pytest.mark.parametrize(
    ("change", "edit", "reason"),
    [(INITIALIZERS[case], None, reason) for case, reason in REASONS.items()]
    + [(LAYERS[case], None, reason) for case, reason in LAYER_REASONS.items()]
    + [(*STRUCTURE[case], reason) for case, reason in STRUCTURE_REASONS.items()],
    ids=[*REASONS, *LAYER_REASONS, *STRUCTURE_REASONS],
)
def test_what_the_replay_used_to_take_and_keras_refuses_goes_to_keras_named(
    keras, tiny, tmp_path, change, edit, reason
):
    config = copy.deepcopy(config_of(tiny))
    change(config)
    archive = Archive.read(rewrite(tiny, tmp_path / "trained.keras", config=config, h5_edit=edit))
    found = untrained_variables(archive.config, archive.weights([layer.name for layer in archive.layers]), 42)
    assert isinstance(found, str) and reason in found, found


def test_the_replays_draws_take_a_few_mib_beyond_the_kernel_they_fill():
    """Philox runs :data:`PHILOX_CHUNK` calls at a time (before: a dozen uint64 arrays the kernel's size each, 8 GiB
    of temporaries for a 2 GiB kernel, the most a weights file may hold); the kernel is made in place."""
    import tracemalloc

    n = 16 * PHILOX_CHUNK * 4  # 16 chunks: 16 MiB of float32
    tracemalloc.start()
    try:
        kernel = stateless_uniform((n // 64, 64), -0.1, 0.1, 5)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert kernel.nbytes == 4 * n
    assert peak < kernel.nbytes + 16 * PHILOX_CHUNK * 8 * 2  # the kernel, and one chunk's temporaries twice over


@pytest.mark.parametrize(("index", "dtype"), [(0, np.float64), (1, np.float16), (2, np.int32)])
def test_an_adapted_normalization_stored_in_another_dtype_ends_as_keras_ends(keras, tmp_path, index, dtype):
    """Keras casts what it loads to its variables' dtypes (the clone keeps those); the replay would copy them as
    stored."""
    layers = keras.layers
    normalization = layers.Normalization(name="norm")
    normalization.adapt(np.random.default_rng(0).random((4, 6, 6, 3)).astype(np.float32) * 3)
    keras.Sequential([keras.Input((6, 6, 3)), normalization, layers.Conv2D(2, 3, name="c")]).save(tmp_path / "a.keras")

    def recast(h5):
        key = f"layers/normalization/vars/{index}"
        value = h5[key][()]
        del h5[key]
        h5.create_dataset(key, data=np.asarray(value).astype(dtype))

    path = rewrite(tmp_path / "a.keras", tmp_path / "trained.keras", h5_edit=recast)
    how = compare_with_keras(path, 3, tmp_path / "untrained.keras")
    assert (
        how
        == "by Keras: layer 'norm', which stores "
        + str([np.dtype(dtype if i == index else ("int64" if i == 2 else "float32")).name for i in range(3)])
        + " variables, is not replayed in numpy"
    )


@pytest.fixture(scope="module")
def chain(keras, tmp_path_factory) -> Path:
    """A Functional chain (input, conv, flatten, dense)."""
    path = tmp_path_factory.mktemp("chain") / "trained.keras"
    functional_chain().save(path)
    return path


def _functional(change):
    def edit(config):
        change(config, {e["config"]["name"]: e for e in config["config"]["layers"]})

    return edit


FUNCTIONAL = {
    "entry-name-differs": _functional(lambda c, e: e["conv"].update(name="flat")),
    "history-names-another-layer": _functional(
        lambda c, e: e["out"]["inbound_nodes"][0]["args"][0]["config"].update(keras_history=["conv", 0, 0])
    ),
    "two-calls": _functional(lambda c, e: e["flat"]["inbound_nodes"].append(e["flat"]["inbound_nodes"][0])),
    "call-kwargs": _functional(lambda c, e: e["conv"]["inbound_nodes"][0].update(kwargs={"mask": None})),
    "output-in-the-middle": _functional(lambda c, e: c["config"].update(output_layers=[["flat", 0, 0]])),
    "outputs-nested": _functional(lambda c, e: c["config"].update(output_layers=[["out", 0, 0]])),
    "inputs-nested": _functional(lambda c, e: c["config"].update(input_layers=[["inp", 0, 0]])),
}


@pytest.mark.parametrize("change", FUNCTIONAL.values(), ids=FUNCTIONAL.keys())
def test_an_odd_functional_graph_ends_as_keras_ends(keras, chain, tmp_path, change):
    path = mutated(chain, tmp_path / "trained.keras", change)
    compare_with_keras(path, 5, tmp_path / "untrained.keras")


def test_the_stage_logs_why_keras_builds_it_and_refuses_in_one_line(project, stage_config, tiny_assets, caplog):
    """build_untrained on a model fetch_model accepted: a config the replay leaves to Keras is built by Keras, the
    reason in the log; one Keras refuses (a Dense of 10.0 units, which the replay used to build) fails in one line,
    with no untrained model left behind."""
    fetch_model.run(stage_config("fetch_model"), project)
    trained, untrained = (project / "outputs" / "models" / f"{role}.keras" for role in ("trained", "untrained"))
    config = config_of(tiny_assets["model"])
    layer(config, "conv2d")["dtype"] = "float64"
    rewrite(tiny_assets["model"], trained, config=config)
    with caplog.at_level("INFO"):
        build_untrained.run(stage_config("build_untrained"), project)
    told = "by Keras, as the trained model's layer 'conv2d' of class Conv2D with dtype 'float64' is not replayed"
    assert f"untrained model built with seed 42 ({told} in numpy)" in caplog.text
    untrained.unlink()
    layer(config, "dense")["units"] = 10.0
    rewrite(tiny_assets["model"], trained, config=config)
    with pytest.raises(ConvlensError) as err:
        build_untrained.run(stage_config("build_untrained"), project)
    assert one_line(err).startswith(f"{trained}: Keras cannot load this model (Dense could not be deserialized: ")
    assert one_line(err).endswith("units=10.0)")
    assert not untrained.exists()
