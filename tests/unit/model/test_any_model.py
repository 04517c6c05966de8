"""Issue 10 §4: any model Keras can load. Layers the numpy forward pass does not compute (a branch, a nested
model, depthwise, separable and dilated convolutions) go through Keras itself; nested layers are ``outer/inner``.

One model holds them all: a ResNet-style block (``stem`` → ``branch``, ``Add``) and a nested Sequential ``block``
with a DepthwiseConv2D, a SeparableConv2D and a dilated Conv2D. Every expected activation is computed by calling
the Keras layers one after another, independently of how convlens builds its models.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from convlens.errors import ConvlensError
from convlens.model.archive import Archive, read_config
from convlens.model.forward import Network, load_network, open_network
from convlens.model.layers import layer_infos, resolve_layers, walk_layers
from convlens.model.ops import Unsupported
from convlens.pipeline import paths
from convlens.pipeline.config import compose, declared_params, select
from convlens.report.summary import model_summary
from tests.support.helpers import PIPELINE, configure, copy_project, foreach_items, stage_name

NESTED = ["block/dw", "block/sep", "block/dil"]
MAPS = ["stem", "add", *NESTED, "gap"]


def resnet_depthwise_model(seed: int = 3):
    """A ResNet-style block, then a nested Sequential of depthwise, separable and dilated convolutions; every
    variable random (nonzero biases), so a dropped bias or a swapped kernel shows."""
    from convlens.model.keras_models import keras

    layers = keras.layers
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((28, 28, 1))
    stem = layers.Conv2D(4, 3, padding="same", activation="relu", name="stem")(inputs)
    branch = layers.Conv2D(4, 3, padding="same", activation="relu", name="branch")(stem)
    pooled = layers.MaxPooling2D(name="pool")(layers.Add(name="add")([stem, branch]))
    block = keras.Sequential(
        [
            keras.Input((14, 14, 4)),
            layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="relu", name="dw"),
            layers.SeparableConv2D(6, 3, activation="relu", name="sep"),
            layers.Conv2D(5, 3, dilation_rate=2, activation="relu", name="dil"),
        ],
        name="block",
    )
    gap = layers.GlobalAveragePooling2D(name="gap")(block(pooled))
    model = keras.Model(inputs, layers.Dense(10, activation="softmax", name="head")(gap))
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def reference(model, x: np.ndarray, address: str) -> np.ndarray:
    """The layer's output computed by calling Keras layers one by one (nested: the model's layers in turn)."""
    from convlens.model.keras_models import keras

    outer, _, inner = address.partition("/")
    if not inner:
        return np.asarray(keras.Model(model.inputs[0], model.get_layer(outer).output)(x, training=False))
    y = keras.Model(model.inputs[0], model.get_layer("pool").output)(x, training=False)
    for layer in model.get_layer(outer).layers:
        y = layer(y, training=False)
        if layer.name == inner:
            return np.asarray(y)
    raise AssertionError(f"no layer {address}")


@pytest.fixture(scope="module")
def branching(tmp_path_factory):
    """The saved model and the Keras model it was saved from."""
    model = resnet_depthwise_model()
    path = tmp_path_factory.mktemp("any") / "resnet_depthwise.keras"
    model.save(path)
    return path, model


def test_nested_layers_are_listed_as_outer_inner_with_their_weight_groups(branching):
    path, _ = branching
    found = {info.name: (info.index, info.kind, group) for info, _, group in walk_layers(read_config(path))}
    assert found["add"] == (3, "Add", "layers/add")  # Keras's model.layers[3]: layers[0] is the input
    assert found["block"] == (5, "Sequential", "layers/sequential")
    assert found["block/dw"] == (None, "DepthwiseConv2D", "layers/sequential/layers/depthwise_conv2d")
    assert found["block/dil"] == (None, "Conv2D", "layers/sequential/layers/conv2d")  # numbered within `block`
    assert found["stem"][2] == "layers/conv2d" and found["branch"][2] == "layers/conv2d_1"
    infos = layer_infos(read_config(path))
    assert resolve_layers(None, infos) == ["stem", "branch", *NESTED]  # every conv kind, nested ones included
    assert resolve_layers([5, 6, "block/sep"], infos) == ["block", "gap", "block/sep"]  # indices count model.layers
    with pytest.raises(ConvlensError, match=r"unknown layer 'dw'; this model has 1:stem, .*5:block, block/dw, "):
        resolve_layers(["dw"], infos)


def test_the_summary_of_a_nested_model_counts_what_keras_does(branching):
    """A nested model's row counts its layers' parameters; each row has its index in ``model.layers`` (none for a
    layer inside the nested one); where numpy does not compute the model (a branch), shapes follow its graph up to
    the nested model, whose shape and those after it are not known."""
    path, model = branching
    rows = {row.name: row for row in model_summary(Archive.read(path))}
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]  # not in model.summary()
    assert [rows[layer.name].params for layer in layers] == [layer.count_params() for layer in layers]
    assert rows["block"].params == sum(rows[name].params for name in NESTED) > 0
    assert [rows[layer.name].index for layer in layers] == [model.layers.index(layer) for layer in layers]
    assert rows["block/dw"].index is None
    for name in ("stem", "branch", "add"):  # through the model's graph, as Keras computes them, up to the nested model
        assert rows[name].output_shape == tuple(model.get_layer(name).output.shape)
        assert rows[name].shape_source == "graph"
    assert rows["block"].output_shape is rows["block/dw"].output_shape is rows["gap"].output_shape is None
    assert rows["stem"].field.size == (3, 3)  # through the model's graph (a branch, then a merge)
    assert rows["add"].field is not None and rows["block"].field is None  # a nested model: its window not followed
    assert rows["block/dw"].field is None and rows["gap"].field is None  # nor anything after it


def test_nested_and_depthwise_weights_are_the_keras_variables(branching):
    path, model = branching
    stored = Archive.read(path).weights(NESTED)
    for address in NESTED:
        want = model.get_layer("block").get_layer(address.split("/")[1]).get_weights()
        assert [w.shape for w in stored[address]] == [w.shape for w in want]
        for got, expected in zip(stored[address], want, strict=True):
            np.testing.assert_array_equal(got, expected)


def test_keras_computes_what_numpy_does_not_and_the_log_says_so(branching):
    path, model = branching
    x = np.random.default_rng(0).uniform(size=(3, 28, 28, 1)).astype(np.float32)
    said: list[str] = []
    numpy_net = open_network(Archive.read(path), ["stem", "branch"], said.append)
    assert isinstance(numpy_net, Network) and said == []  # the chain before the Add: the fast path
    with pytest.raises(Unsupported, match=r"^layer 'block/dw' is inside the nested model 'block'$"):
        load_network(Archive.read(path), upto="block/dw")
    np.testing.assert_allclose(numpy_net.activations(x, ["branch"])[0], reference(model, x, "branch"), atol=1e-5)

    keras_net = open_network(Archive.read(path), MAPS, said.append)
    assert not isinstance(keras_net, Network)
    assert said == [
        "resnet_depthwise.keras: layer 'add', which does not simply follow 'branch', which the numpy forward "
        "pass does not compute; computing it with Keras"
    ]
    for address, got in zip(MAPS, keras_net.activations(x, MAPS), strict=True):
        np.testing.assert_allclose(got, reference(model, x, address), rtol=1e-5, atol=1e-5, err_msg=address)
    assert keras_net.activations(x[:, :, :, 0], ["gap"])[0].shape == (3, 5)  # (H, W) samples get a channel axis


def test_a_model_and_a_layer_inside_it_cannot_both_be_feature_map_folders(composed):
    """Checked while the config is composed, before DVC (which refuses overlapping outputs) sees the list."""
    with pytest.raises(ConvlensError, match=r"feature_maps.layers lists both 'block' and 'block/dw', a layer inside"):
        composed("feature_maps.layers=[block,block/dw]")
    assert list(composed("feature_maps.layers=[block/dw,block/sep]").feature_maps.layers) == ["block/dw", "block/sep"]
    for bad in ("block/../x", "/block", "block//dw", "block/", "block/.."):
        with pytest.raises(ConvlensError, match="outer/inner for a nested model's layer"):
            composed(f"feature_maps.layers=[{bad}]")


@pytest.mark.slow
def test_a_branching_nested_depthwise_model_runs_end_to_end_and_matches_keras(
    branching, tiny_assets, tmp_path, monkeypatch, caplog
):
    from convlens.model.keras_models import load_model

    path, model = branching
    monkeypatch.setenv("CONVLENS_MIRROR", str(tiny_assets["mirror"]))
    root = copy_project(tmp_path / "project")
    config = root / "conf" / "config.yaml"
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            "  layers: null           # null: every conv layer of the model", f"  layers: [{', '.join(MAPS)}]  #"
        ),
        encoding="utf-8",
    )
    configure(root, str(path), tiny_assets["sums"])
    caplog.set_level(logging.INFO)
    composed = compose(root)
    assert list(composed.feature_maps.each) == MAPS
    for module in PIPELINE:
        cfg = select(composed, declared_params(root, stage_name(module)))
        for item in foreach_items(module, composed):
            module.run(cfg, root, *([item] if item else []))
    out = root / "outputs"

    trained = np.load(out / "weights" / "trained" / "block.dw.kernel.npy")
    np.testing.assert_array_equal(trained, model.get_layer("block").get_layer("dw").get_weights()[0])
    untrained = np.load(out / "weights" / "untrained" / "block.dw.kernel.npy")
    assert untrained.shape == trained.shape == (3, 3, 4, 2) and not np.allclose(untrained, trained)
    weights = json.loads((out / "metrics" / "weights_trained.json").read_text(encoding="utf-8"))["trained"]
    assert list(weights) == ["stem", "branch", *NESTED]

    images = np.load(out / "samples" / "images.npy")[..., np.newaxis].astype(np.float32) / 255
    untrained_model = load_model(out / "models" / "untrained.keras")
    for address in MAPS:
        folder = out / "feature_maps" / address
        for role, keras_model in (("trained", model), ("untrained", untrained_model)):
            np.testing.assert_allclose(
                np.load(folder / f"{role}.npy"), reference(keras_model, images, address), rtol=1e-5, atol=1e-5
            )
        assert json.loads((folder / "layer.json").read_text(encoding="utf-8"))["name"] == address
        assert sorted(p.name for p in (out / "figures" / "feature_maps" / address).glob("*.png")) == [
            "trained_sample_0.png",
            "untrained_sample_0.png",
        ]
    maps = json.loads((out / "metrics" / "feature_maps.json").read_text(encoding="utf-8"))
    assert list(maps["trained"]) == MAPS and maps["trained"]["gap"]["channels"] == 5
    assert (out / "metrics" / "channels" / "block.sep" / "untrained.csv").is_file()

    dataset = json.loads(paths.dataset_index(root).read_text(encoding="utf-8"))
    assert dataset["layers"] == ["stem", "branch", "pool", *NESTED]
    table = np.genfromtxt(paths.dataset_table(root, "trained", "block/dil"), delimiter=",", names=True)
    test_images = np.load(out / "data" / "test_images.npy")[..., np.newaxis].astype(np.float32) / 255
    np.testing.assert_allclose(table["mean"], reference(model, test_images, "block/dil").mean(axis=(0, 1, 2)), 1e-4)
    figures = {p.name for p in (out / "figures").rglob("*.png")}
    assert {"trained_block.sep_filters.png", "block.dil_classes.png", "block.dw_hist_overlay.png"} <= figures
    assert "computing it with Keras" in caplog.text

    report = (out / "report" / "index.html").read_text(encoding="utf-8")  # the model table: nested layers counted
    for address in ("block", *NESTED):
        outer, _, inner = address.partition("/")
        layer = model.get_layer(outer).get_layer(inner) if inner else model.get_layer(outer)
        assert re.search(rf"<td>{re.escape(address)}</td>.*?<td class=\"num\">{layer.count_params():,}</td>", report)
    assert report.count("not run yet") == 0  # every analysis ran, the gradient ones on nested layers too
    ascent = json.loads((out / "metrics" / "activation_max.json").read_text(encoding="utf-8"))
    assert list(ascent["trained"]) == ["stem", "branch", *NESTED]  # every conv layer, nested ones through Keras
    assert np.load(paths.activation_max_dir(root, "untrained") / "untrained_block.sep.npy").shape == (6, 28, 28, 1)
    assert json.loads((out / "gradcam" / "index.json").read_text(encoding="utf-8"))["layer"] == "branch"


def test_a_chain_model_never_starts_tensorflow(tiny_assets):
    """The numpy forward pass stays the fast path: feature maps of the book-like chain model in a fresh process
    leave TensorFlow unimported."""
    code = (
        "import sys, numpy as np\n"
        "from pathlib import Path\n"
        "from convlens.model.archive import Archive\n"
        "from convlens.model.forward import open_network\n"
        f"net = open_network(Archive.read(Path({str(tiny_assets['model'])!r})), ['conv2d_1'], print)\n"
        "net.activations(np.zeros((1, 28, 28, 1), np.float32), ['conv2d_1'])\n"
        "print(type(net).__name__, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, encoding="utf-8", check=True)
    assert done.stdout == "Network False False\n"


@pytest.mark.slow
def test_nested_layers_are_dvc_stages_of_their_own(branching, good_repo):
    """``feature_maps@block/dw``: a nested layer's foreach stage runs, caches and reports under DVC."""
    from tests.support.dvc_repo import commit, dvc, ran

    root, env = good_repo
    shutil.copyfile(branching[0], root / "models" / "tiny.keras")
    dvc(root, env, "add", "-q", "models/tiny.keras")
    commit(root, env, "a branching, nested, depthwise model")
    # up to the feature-map grids (the analyses after them, and the branch's `add`, have tests of their own)
    output = dvc(root, env, "exp", "run", "render_maps", "-S", "feature_maps.layers=[block/dw]")
    assert {"feature_maps@block/dw", "render_maps@block/dw"} <= set(ran(output))
    assert "computing it with Keras" in output
    assert np.load(root / "outputs" / "feature_maps" / "block" / "dw" / "trained.npy").shape == (1, 14, 14, 8)
    assert (root / "outputs" / "figures" / "feature_maps" / "block" / "dw" / "trained_sample_0.png").is_file()
    assert "Data and pipelines are up to date" in dvc(root, env, "status", "render_maps")
    show = dvc(root, env, "exp", "show", "--md", "--only-changed")
    assert "block/dw" in show
