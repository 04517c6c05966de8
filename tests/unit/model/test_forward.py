"""The numpy forward pass gives what Keras gives, layer by layer, and refuses what it cannot compute."""

import io
import sys
from pathlib import Path

import numpy as np
import pytest

from convlens.errors import ConvlensError
from convlens.model import forward as forward_lib
from convlens.model.archive import Archive
from convlens.model.batching import (
    WORKING_COPIES,
    available_memory,
    batches,
    batches_with_progress,
    bytes_per_image,
    fit_batch_size,
)
from convlens.model.forward import Network, load_network
from convlens.model.ops import ACTIVATIONS, Unsupported, activation, layer_op, pool2d
from tests.support.helpers import Terminal


def keras_activations(path, x, names):
    from convlens.model.keras_models import load_model
    from tests.support.keras_reference import activation_model

    outs = activation_model(load_model(path), names)(x, training=False)
    return [np.asarray(o) for o in (outs if isinstance(outs, list | tuple) else [outs])]


def randomize_weights(model, seed):
    """Every weight of every layer drawn from a seeded RNG: nonzero biases, BatchNormalization's gamma, beta and
    moving statistics far from their initial 1, 0, 0, 1 (a forward pass that drops any of them differs)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.__class__.__name__ == "BatchNormalization":
            n = layer.get_weights()[0].shape
            layer.set_weights([rng.uniform(0.5, 2, n), rng.normal(size=n), rng.normal(size=n), rng.uniform(0.05, 3, n)])
        elif layer.get_weights():
            layer.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()])


def every_kind_model():
    """One of each supported layer kind; every weight random (nonzero biases), BatchNormalization with a
    non-default epsilon (its moving variance as small as 0.05, so the epsilon matters)."""
    from convlens.model.keras_models import keras

    keras.utils.set_random_seed(3)
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((13, 11, 2)),
            layers.Rescaling(2.0, offset=-1.0, name="rescale"),
            layers.Conv2D(5, 3, strides=2, padding="same", activation="tanh", name="conv_same_s2"),
            layers.BatchNormalization(epsilon=0.25, name="bn"),
            layers.Conv2D(6, (2, 3), padding="valid", use_bias=False, name="conv_valid"),
            layers.LeakyReLU(negative_slope=0.2, name="leaky"),
            layers.MaxPooling2D(2, padding="same", name="max_same"),
            layers.AveragePooling2D(2, strides=1, padding="same", name="avg_same"),
            layers.ReLU(max_value=0.5, name="relu6ish"),
            layers.Conv2D(4, 1, activation="sigmoid", name="conv_1x1"),
            layers.AveragePooling2D(2, name="avg_valid"),
            layers.SpatialDropout2D(0.3, name="sdrop"),
            layers.GlobalAveragePooling2D(name="gap"),
            layers.Dense(7, activation="elu", name="dense_elu"),
            layers.Dropout(0.5, name="drop"),
            layers.Activation("softplus", name="act"),
            layers.Dense(3, name="logits"),
            layers.Softmax(name="probs"),
        ]
    )
    randomize_weights(model, 0)
    return model


def test_every_supported_kind_matches_keras(tmp_path):
    path = tmp_path / "kinds.keras"
    model = every_kind_model()
    model.save(path)
    names = [layer.name for layer in model.layers]
    x = np.random.default_rng(1).uniform(0, 1, (5, 13, 11, 2)).astype(np.float32)
    net = load_network(Archive.read(path))
    for name, got, want in zip(names, net.activations(x, names), keras_activations(path, x, names), strict=True):
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=name)
    for name, got in zip(names, net.activations(x.astype(np.float64), names), strict=True):
        assert got.dtype == np.float32, name  # float64 images give float32 maps, as in Keras
    for name in ("conv_same_s2", "dense_elu", "logits"):
        assert np.abs(model.get_layer(name).get_weights()[1]).min() > 0, name  # biases that a forward pass must add
    assert model.get_layer("bn").epsilon == 0.25


def keras_matches(tmp_path, layers, x, rtol=1e-5, atol=1e-5, compare=None):
    """Save a Sequential of ``layers`` with random weights; its numpy and Keras outputs (last layer) agree (to
    ``rtol``/``atol``, or as ``compare(got, want)`` asserts); the numpy output."""
    from convlens.model.keras_models import keras

    model = keras.Sequential([keras.Input(x.shape[1:]), *layers])
    randomize_weights(model, 5)
    model.save(tmp_path / "m.keras")
    name = model.layers[-1].name
    [got] = load_network(Archive.read(tmp_path / "m.keras")).activations(x, [name])
    [want] = keras_activations(tmp_path / "m.keras", x, [name])
    assert got.shape == want.shape and got.dtype == want.dtype == np.float32
    if compare is None:
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    else:
        compare(got, want)
    return got


@pytest.mark.parametrize(
    ("channels", "filters", "kernel", "strides", "padding"),
    [
        (8, 3, 3, 1, "valid"),
        (8, 3, 1, 1, "same"),
        (16, 5, 3, 1, "same"),
        (32, 4, (2, 3), (2, 1), "same"),
        (32, 6, (3, 2), 1, "valid"),
    ],
)
def test_a_conv2d_with_many_input_channels_matches_keras(tmp_path, channels, filters, kernel, strides, padding):
    """At 8 or more input channels conv2d sums one product per kernel offset (the book's conv2d_1 has 32)."""
    from convlens.model.keras_models import keras

    x = np.random.default_rng(7).uniform(-1, 1, (3, 9, 7, channels)).astype(np.float32)
    conv = keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding, name="conv")
    got = keras_matches(tmp_path, [conv], x, rtol=1e-4, atol=1e-5)
    assert np.abs(got).max() > 1  # random weights over many channels: values far above the tolerance


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize(("size", "strides"), [(3, None), ((2, 3), None), (3, 2), ((3, 2), (1, 2))])
def test_average_pooling_of_any_window_matches_keras(tmp_path, size, strides, padding):
    from convlens.model.keras_models import keras

    x = np.random.default_rng(8).uniform(0, 4, (2, 10, 8, 3)).astype(np.float32)
    conv = keras.layers.Conv2D(3, 1, name="conv")  # convlens reads convolutional models only
    pool = keras.layers.AveragePooling2D(size, strides=strides, padding=padding, name="avg")
    got = keras_matches(tmp_path, [conv, pool], x)
    assert np.abs(got).max() > 0.1


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize(("size", "strides"), [(2, None), (3, None), ((2, 3), None), (3, 2), ((3, 2), (1, 2))])
def test_max_pooling_of_any_window_matches_keras(tmp_path, size, strides, padding):
    """The max over one strided view per window offset (ops.pool2d), odd sizes and strides, both paddings."""
    from convlens.model.keras_models import keras

    x = np.random.default_rng(9).uniform(-4, 4, (2, 11, 8, 3)).astype(np.float32)
    conv = keras.layers.Conv2D(3, 1, name="conv", activation="relu")  # its ReLU overwrites conv2d's own output
    pool = keras.layers.MaxPooling2D(size, strides=strides, padding=padding, name="max")
    got = keras_matches(tmp_path, [conv, pool], x)
    assert np.abs(got).max() > 0.1


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("Dense", {"units": 4, "use_bias": False}),
        ("ReLU", {"max_value": 2.0, "negative_slope": 0.1, "threshold": 0.3}),
        ("GlobalAveragePooling2D", {"keepdims": True}),
        ("GlobalMaxPooling2D", {"keepdims": True}),
        ("Softmax", {"axis": 1}),
    ],
    ids=[
        "dense-without-bias",
        "leaky-thresholded-relu",
        "global-average-keepdims",
        "global-max-keepdims",
        "softmax-over-rows",
    ],
)
def test_options_off_their_defaults_match_keras(tmp_path, kind, options):
    from convlens.model.keras_models import keras

    x = np.random.default_rng(10).uniform(-2, 2, (2, 5, 4, 3)).astype(np.float32)
    layers = [keras.layers.Conv2D(3, 1, name="conv"), getattr(keras.layers, kind)(**options, name="l")]
    got = keras_matches(tmp_path, layers, x)
    if options.get("keepdims"):
        assert got.shape == (2, 1, 1, 3)


@pytest.mark.parametrize(
    ("options", "adapted"),
    [
        ({"axis": -1}, True),  # adapt(): one mean and variance per channel, stored as weights
        ({"axis": -1, "invert": True}, True),
        ({"axis": None}, True),  # one scalar mean and variance for every value
        ({"axis": (1, 2)}, True),  # per position: weights of shape (H, W)
        ({"mean": [2.5, -1.0], "variance": [4.0, 0.25]}, False),  # given in the config, per channel
        ({"mean": 72.9, "variance": 8100.0}, False),  # a scalar in the config (raw pixels)
    ],
    ids=["adapted-per-channel", "inverted", "axis-none", "per-position", "config-per-channel", "config-scalar"],
)
def test_normalization_matches_keras(tmp_path, options, adapted):
    from convlens.model.keras_models import keras

    rng = np.random.default_rng(4)
    layer = keras.layers.Normalization(name="norm", **options)
    model = keras.Sequential([keras.Input((5, 4, 2)), layer, keras.layers.Conv2D(3, 2, name="conv")])
    if adapted:
        shape = tuple(w.shape for w in layer.get_weights()[:2])
        layer.set_weights([rng.normal(3, 2, shape[0]), rng.uniform(0.1, 9, shape[1]), np.int64(7)])
        layer.finalize_state()
    model.save(tmp_path / "norm.keras")
    x = rng.uniform(0, 255, (3, 5, 4, 2)).astype(np.float32)
    got = load_network(Archive.read(tmp_path / "norm.keras")).activations(x, ["norm", "conv"])
    want = keras_activations(tmp_path / "norm.keras", x, ["norm", "conv"])
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)
        assert a.dtype == b.dtype == np.float32  # a mean given in the config (float64 in JSON) included
    assert not np.allclose(got[0], x)  # the layer did something


def test_the_tiny_book_model_matches_keras_and_stops_at_the_deepest_layer(tiny_assets):
    x = np.random.default_rng(2).uniform(0, 1, (9, 28, 28, 1)).astype(np.float32)
    want = keras_activations(tiny_assets["model"], x, ["conv2d_1", "max_pooling2d"])
    net = load_network(Archive.read(tiny_assets["model"]), upto="conv2d_1")
    assert net.names == ("conv2d", "max_pooling2d", "conv2d_1")
    parts = [net.activations(x[s], ["conv2d_1", "max_pooling2d"]) for s in batches(len(x), 4)]
    for got, expected in zip(zip(*parts, strict=True), want, strict=True):
        np.testing.assert_allclose(np.concatenate(got), expected, rtol=1e-5, atol=1e-6)


def test_activations_come_in_the_order_asked_and_stop_after_the_deepest_layer():
    ran: list[str] = []

    def op(name):
        def add_one(x):
            ran.append(name)
            return x + 1

        return add_one

    net = Network((2,), ("a", "b", "c"), (op("a"), op("b"), op("c")))
    got = net.activations(np.zeros((1, 2), np.float32), ["b", "a"])
    assert ran == ["a", "b"] and [g.tolist() for g in got] == [[[2, 2]], [[1, 1]]]


def test_a_functional_chain_is_read_and_a_branching_model_refused(tmp_path):
    from convlens.model.keras_models import keras

    inputs = keras.Input((8, 8, 1))
    conv = keras.layers.Conv2D(3, 3, activation="relu", name="c")(inputs)
    keras.Model(inputs, keras.layers.MaxPooling2D(name="p")(conv)).save(tmp_path / "chain.keras")
    x = np.random.default_rng(3).uniform(size=(2, 8, 8, 1)).astype(np.float32)
    [got] = load_network(Archive.read(tmp_path / "chain.keras")).activations(x, ["p"])
    np.testing.assert_allclose(got, keras_activations(tmp_path / "chain.keras", x, ["p"])[0], rtol=1e-5, atol=1e-6)

    shape, entries, walked = forward_lib._chain(Archive.read(tmp_path / "chain.keras").config)
    assert shape == (8, 8, 1) and [e["config"]["name"] for e in entries[1:]] == ["c", "p"] and walked == entries
    # odd inbound nodes (a call with another argument, no arguments): test_forward_hostile.py, against Keras

    side = keras.layers.Conv2D(3, 3, name="side")(inputs)
    keras.Model(inputs, keras.layers.Add(name="add")([conv, side])).save(tmp_path / "branch.keras")
    with pytest.raises(Unsupported, match=r"^layer '\w+', which does not simply follow '\w+'$"):
        load_network(Archive.read(tmp_path / "branch.keras"))
    [got] = load_network(Archive.read(tmp_path / "branch.keras"), upto="c").activations(
        x, ["c"]
    )  # the chain before the branch
    np.testing.assert_allclose(got, keras_activations(tmp_path / "chain.keras", x, ["c"])[0], rtol=1e-5, atol=1e-6)


def test_an_activation_is_read_from_its_name_or_its_serialized_dict():
    relu = ACTIVATIONS["relu"]
    assert activation("relu", "l") is relu and activation(None, "l") is ACTIVATIONS["linear"]
    serialized = {"module": "keras.activations", "class_name": "function", "config": "relu", "registered_name": "relu"}
    assert activation(serialized, "l") is relu and activation({"class_name": "relu"}, "l") is relu
    with pytest.raises(Unsupported, match=r"^layer 'l' uses activation 'gelu'$"):
        activation({"class_name": "function", "config": "gelu"}, "l")


def test_a_channels_first_layer_is_left_to_keras():  # dilated and grouped convs: test_dilated_grouped_conv.py
    with pytest.raises(Unsupported, match=r"^layer 'p' is channels_first$"):
        layer_op("MaxPooling2D", {"name": "p", "data_format": "channels_first", "pool_size": [2, 2]}, [])


def test_a_padding_keras_does_not_know_is_left_to_keras_and_its_capitals_are_keras_s():
    """Keras refuses ``padding="sideways"`` when it loads the model; the numpy pass once computed it as "valid"."""
    kernel, bias = np.ones((3, 3, 1, 2), np.float32), np.zeros(2, np.float32)
    for kind, weights, extra in (("Conv2D", [kernel, bias], {"strides": [1, 1]}), ("MaxPooling2D", [], {})):
        with pytest.raises(Unsupported, match=r"^layer 'l' has padding 'sideways'$"):
            layer_op(kind, {"name": "l", "padding": "sideways", "pool_size": [2, 2], **extra}, weights)
    x = np.arange(2 * 5 * 5, dtype=np.float32).reshape(2, 5, 5, 1)
    for kind, weights, extra in (("Conv2D", [kernel, bias], {"strides": [1, 1]}), ("MaxPooling2D", [], {})):
        same, upper = ({"name": "l", "padding": p, "pool_size": [2, 2], **extra} for p in ("same", "SAME"))
        np.testing.assert_array_equal(layer_op(kind, upper, weights)(x), layer_op(kind, same, weights)(x))
        assert layer_op(kind, upper, weights)(x).shape[1] == 5 if kind == "Conv2D" else 3


def test_a_batch_normalization_over_another_axis_than_the_channels_is_left_to_keras():
    weights = [np.full(3, v, np.float32) for v in (2.0, 0.5, 1.0, 4.0)]  # gamma, beta, mean, variance
    for axis in (1, [1], 2):
        with pytest.raises(Unsupported, match=r"^layer 'bn' is a BatchNormalization over an axis other than the last$"):
            layer_op("BatchNormalization", {"name": "bn", "axis": axis}, weights)
    x = np.full((1, 2, 2, 3), 3.0, np.float32)
    for axis in (-1, 3, [3]):  # (3 - mean 1) / sqrt(variance 4) · gamma 2 + beta 0.5
        got = layer_op("BatchNormalization", {"name": "bn", "axis": axis, "epsilon": 0.0}, weights)(x)
        np.testing.assert_allclose(got, np.full_like(x, 2.5))


def test_softmax_is_keras_for_large_and_far_apart_logits():
    from convlens.model.keras_models import keras

    logits = np.array([[1000.0, 999.0, 0.0], [0.0, -1.0, -2.0]], np.float32)  # rows 1000 apart
    want = np.asarray(keras.activations.softmax(logits))
    for got in (
        layer_op("Softmax", {"name": "s"}, [])(logits),
        layer_op("Activation", {"name": "a", "activation": "softmax"}, [])(logits),
    ):
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize(
    ("kind", "args", "needed"),
    [
        ("Conv2D", (4, 3), {"strides": [1, 1], "padding": "valid"}),
        ("MaxPooling2D", (), {"pool_size": [2, 2]}),
        ("AveragePooling2D", (2,), {"pool_size": [2, 2]}),
        ("GlobalAveragePooling2D", (), {}),
        ("GlobalMaxPooling2D", (), {}),
        ("Dense", (4,), {}),
        ("ReLU", (), {}),
        ("LeakyReLU", (), {}),
        ("Softmax", (), {}),
        ("Rescaling", (0.5,), {"scale": 0.5}),
        ("Reshape", ((30, 3),), {"target_shape": [30, 3]}),
        ("BatchNormalization", (), {}),
    ],
)  # fmt: skip
def test_a_config_without_its_optional_keys_gets_kerass_defaults(kind, args, needed):
    """A hand-written or older config may leave out what Keras fills in: the numpy layer then computes what the
    Keras layer built with its defaults computes."""
    from convlens.model.keras_models import keras

    rng = np.random.default_rng(6)
    x = rng.normal(0, 2, (2, 6, 5, 3)).astype(np.float32)
    layer = getattr(keras.layers, kind)(*args, name="l")
    layer.build(x.shape)
    layer.set_weights([rng.uniform(0.5, 2, w.shape).astype(np.float32) for w in layer.get_weights()])
    got = layer_op(kind, {"name": "l", **needed}, layer.get_weights())(x)
    np.testing.assert_allclose(got, np.asarray(layer(x, training=False)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ("conv1d", "layer 'c1' of class Conv1D"),
        ("gelu", "layer 'g' of class Conv2D with activation 'gelu'"),
        ("dense-gelu", "layer 'dg' of class Dense with activation 'gelu'"),
        ("activation-gelu", "layer 'ag' of class Activation with activation 'gelu'"),
    ],
)
def test_unsupported_layers_are_named(tmp_path, layer, message):
    from convlens.model.keras_models import keras

    made = {
        "conv1d": [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(2, 3, name="c"),
            keras.layers.Reshape((26 * 26, 2), name="r"),
            keras.layers.Conv1D(2, 3, name="c1"),
        ],
        "gelu": [keras.Input((28, 28, 1)), keras.layers.Conv2D(2, 3, activation="gelu", name="g")],
        "dense-gelu": [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(2, 3),
            keras.layers.Dense(2, activation="gelu", name="dg"),
        ],
        "activation-gelu": [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(2, 3),
            keras.layers.Activation("gelu", name="ag"),
        ],
    }[layer]
    keras.Sequential(made).save(tmp_path / "m.keras")
    with pytest.raises(Unsupported, match=f"^{message}$"):
        load_network(Archive.read(tmp_path / "m.keras"))


def test_max_pooling_with_same_padding_never_picks_the_padding():
    x = -np.ones((1, 3, 3, 1), np.float32)
    assert (pool2d(x, (2, 2), (2, 2), "same", "max") == -1).all()
    assert pool2d(x, (2, 2), (2, 2), "same", "avg").shape == (1, 2, 2, 1)


@pytest.mark.parametrize("size", [0, -1, True, 2.0, "4"])
def test_batch_size_must_be_a_positive_integer(size):
    with pytest.raises(ConvlensError) as error:
        list(batches(10, size))
    assert str(error.value) == f"batch_size must be a positive integer, got {size!r}"


def test_batches_cover_every_index_once_in_order():
    assert list(batches(10, 4)) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    assert list(batches(2, 1)) == [slice(0, 1), slice(1, 2)] and list(batches(3, 5)) == [slice(0, 3)]
    assert list(batches(0, 3)) == []


def test_batches_show_their_progress_on_a_terminal_only_and_clear_it(monkeypatch):
    terminal, pipe = Terminal(), io.StringIO()
    for stderr in (terminal, pipe):
        monkeypatch.setattr(sys, "stderr", stderr)
        assert list(batches_with_progress(5, 2, "test split")) == list(batches(5, 2))
    assert pipe.getvalue() == ""  # a log file or CI gets no progress bar
    bar = terminal.getvalue()
    assert bar.startswith("\rtest split:   0%|") and "| 0/3 [00:00<?, ?batch/s]" in bar
    assert bar.endswith(" " * 20 + "\r")  # cleared when done: no line left behind (leave=False)


def test_a_batch_that_would_not_fit_in_memory_is_capped_with_a_log_line():
    assert fit_batch_size(500, 1 << 20, 8 << 30, "dataset.batch_size") == (500, None)
    size, note = fit_batch_size(100_000, 1 << 20, 8 << 30, "dataset.batch_size")
    assert size == 4096 and note == (
        "dataset.batch_size=100000 would need 97.7 GiB of activations, more than half of the 8.0 GiB available; "
        "using batches of 4096"
    )
    assert fit_batch_size(10, 1 << 40, 1 << 30, "k")[0] == 1
    assert fit_batch_size(4096, 1 << 20, 8 << 30, "k") == (4096, None)  # exactly half the memory: fits
    assert fit_batch_size(100, 0, 8, "k")[0] == 4  # no bytes measured: counted as one byte an image


@pytest.mark.parametrize(
    ("meminfo", "available"),
    [
        ("MemTotal:       24684068 kB\nMemFree:  1000 kB\nMemAvailable:   23440372 kB\n", 23440372 * 1024),
        ("MemTotal:       24684068 kB\n", 4 << 30),  # no MemAvailable (Linux before 3.14)
        ("MemAvailable: lots\n", 4 << 30),
        (None, 4 << 30),  # no /proc/meminfo: not Linux
    ],
)
def test_the_memory_available_is_what_linux_says_else_4_gib(tmp_path, meminfo, available):
    if meminfo is not None:
        (tmp_path / "meminfo").write_text(meminfo, encoding="utf-8")
    assert available_memory(tmp_path / "meminfo") == available


@pytest.mark.skipif(not Path("/proc/meminfo").is_file(), reason="Linux only: no /proc/meminfo here")
def test_on_linux_the_memory_available_is_read_from_proc_meminfo():
    assert available_memory() != 4 << 30  # the fallback, not what this machine says


def test_bytes_per_image_counts_every_layer_output(tmp_path):
    from tests.support.helpers import tiny_model

    tiny_model().save(tmp_path / "m.keras")
    network = load_network(Archive.read(tmp_path / "m.keras"), upto="conv2d_1")
    one = 28 * 28 * 1 + 28 * 28 * 4 + 14 * 14 * 4 + 14 * 14 * 8  # input, conv2d, max_pooling2d, conv2d_1
    assert bytes_per_image(network, np.zeros((5, 28, 28, 1), np.float32)) == WORKING_COPIES * 4 * one


def open_size_model(path):
    """A fully convolutional model of open input size (``keras.Input((None, None, 3))``), every weight random."""
    from convlens.model.keras_models import keras

    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((None, None, 3)),
            layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="c1"),
            layers.BatchNormalization(name="bn"),
            layers.Conv2D(4, 3, activation="relu", name="c2"),
            layers.AveragePooling2D(2, name="avg"),
            layers.Conv2D(6, 3, activation="elu", name="c3"),
            layers.GlobalMaxPooling2D(name="gmp"),
            layers.Dense(3, activation="softmax", name="probs"),
        ]
    )
    randomize_weights(model, 7)
    model.save(path)
    return path


def test_a_model_of_open_input_size_is_computed_by_numpy_at_the_images_size(tmp_path):
    """``keras.Input((None, None, 3))``: the numpy forward pass computes it at the images' size (no Keras fallback,
    no log line), equal to Keras's; without the images' size it is left to Keras, naming why."""
    path = open_size_model(tmp_path / "open.keras")
    archive, names = Archive.read(path), ["c1", "bn", "c2", "avg", "c3", "gmp", "probs"]
    lines = []
    for size in ((20, 18), (32, 32)):
        x = np.random.default_rng(size[0]).uniform(size=(2, *size, 3)).astype(np.float32)
        network = forward_lib.open_network(archive, names, lines.append, sample=x.shape[1:])
        assert isinstance(network, Network) and network.input_shape == (*size, 3)
        for got, want in zip(network.activations(x, names), keras_activations(path, x, names), strict=True):
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert lines == []  # the InputLayer is not a reason to start TensorFlow
    with pytest.raises(Unsupported, match=r"^an input of open size \(None, None, 3\) and no images to size it$"):
        load_network(archive)


def test_the_report_table_of_a_model_of_open_input_size_is_at_the_images_size(tmp_path):
    """The model table (``report.summary.model_summary``) of ``keras.Input((None, None, 3))``: each layer's output
    shape is Keras's at the samples' size, each receptive field the one of the same model built for that size;
    both unknown ("–") only without the samples' size."""
    from convlens.model.keras_models import keras
    from convlens.report.summary import model_summary

    path = open_size_model(tmp_path / "open.keras")
    fixed = keras.models.clone_model(keras.models.load_model(path), input_tensors=keras.Input((30, 26, 3)))
    fixed.save(tmp_path / "fixed.keras")
    rows = model_summary(Archive.read(path), (30, 26, 3))
    want = model_summary(Archive.read(tmp_path / "fixed.keras"))
    assert [r.output_shape for r in rows] == [(None, *layer.output.shape[1:]) for layer in fixed.layers]
    assert [r.output_shape for r in rows] == [r.output_shape for r in want]
    assert [r.field for r in rows] == [r.field for r in want] and all(r.field is not None for r in rows)
    assert all(r.output_shape is None and r.field is None for r in model_summary(Archive.read(path)))
