"""``compute.engine``: the Keras engine gives the numpy forward pass's numbers, ``auto``'s choice (a pure function of
the pass's size and a GPU's signs), and how ``network.prepare`` wires it. No timing here: bench/engine.md."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest

from convlens.errors import ConvlensError
from convlens.model import engine as engine_lib
from convlens.model import network as network_lib
from convlens.model.archive import Archive
from convlens.model.engine import KERAS_PAYS_OFF, Choice, check_engine, choose_engine, gpu_visible, multiply_adds
from convlens.model.forward import Network, open_network
from convlens.model.network import prepare
from convlens.pipeline import paths
from convlens.schema import SCHEMA, check_config
from tests.support.helpers import PROJECT, tiny_model

LOG = logging.getLogger("tests.engine")
PIXELS = np.random.default_rng(0).integers(0, 256, (7, 28, 28)).astype(np.uint8)
LAYERS = ["conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1", "flatten", "dense"]


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("engine")
    model = tiny_model()
    rng = np.random.default_rng(5)  # nonzero biases: a pass that dropped one would differ
    for layer in model.layers:
        if layer.get_weights():
            layer.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()])
    for role in paths.ROLES:
        paths.model_path(root, role).parent.mkdir(parents=True, exist_ok=True)
        model.save(paths.model_path(root, role))
    return root


def archive(root) -> Archive:
    return Archive.read(paths.model_path(root, "trained"))


# --- the numbers agree ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("names", [LAYERS, ["conv2d", "max_pooling2d_1", "dense"], ["dense"], ["max_pooling2d"]])
def test_the_keras_engine_gives_the_numpy_pass_numbers(tiny_root, names):
    """Conv, pool, flatten, dense and the last layer's predictions, to 1e-5, as float32; one name or several."""
    from convlens.model.keras_models import KerasEngine

    x = PIXELS[..., None] / np.float32(255)
    keras_net = open_network(archive(tiny_root), names, LOG.info, "keras")
    numpy_net = open_network(archive(tiny_root), names, LOG.info, "numpy")
    assert isinstance(keras_net, KerasEngine) and isinstance(numpy_net, Network)
    assert keras_net.names == tuple(names)
    for batch in (x, x[:1], x[2:5]):  # the batch size changes, as the last batch of a split does
        got, want = keras_net.activations(batch, names), numpy_net.activations(batch, names)
        for name, g, w in zip(names, got, want, strict=True):
            assert g.dtype == np.float32 and g.shape == w.shape, name
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5, err_msg=name)
    predictions = keras_net.activations(x, names)[-1] if names[-1] == "dense" else None
    if predictions is not None:  # softmax rows: the same classes
        assert np.allclose(predictions.sum(axis=1), 1, atol=1e-5)
        np.testing.assert_array_equal(predictions.argmax(1), numpy_net.activations(x, ["dense"])[0].argmax(1))


def test_the_keras_engine_takes_images_without_a_channel_axis_and_a_subset_of_its_names(tiny_root):
    net = open_network(archive(tiny_root), ["conv2d", "dense"], LOG.info, "keras")
    x = PIXELS / np.float32(255)  # (N, 28, 28)
    [dense] = net.activations(x, ["dense"])
    want = open_network(archive(tiny_root), ["dense"], LOG.info, "numpy").activations(x[..., None], ["dense"])[0]
    np.testing.assert_allclose(dense, want, rtol=1e-5, atol=1e-5)


def test_the_keras_engine_runs_in_inference_mode(tmp_path):
    """Dropout off: the output of a Dropout layer is its input, every time."""
    from convlens.model.keras_models import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6, 6, 1)),
            keras.layers.Conv2D(2, 3, name="conv"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dropout(0.9, name="drop"),
        ]
    )
    model.save(tmp_path / "m.keras")
    net = open_network(Archive.read(tmp_path / "m.keras"), ["flat", "drop"], LOG.info, "keras")
    x = np.random.default_rng(1).random((4, 6, 6, 1), dtype=np.float32)
    flat, drop = net.activations(x, ["flat", "drop"])
    np.testing.assert_array_equal(flat, drop)


# --- auto's choice -------------------------------------------------------------------------------------------------


def test_an_explicit_engine_is_used_whatever_the_pass():
    for engine in ("numpy", "keras"):
        for images, work, gpu in ((1, 10, None), (10**6, 10**9, "a GPU"), (5, None, None)):
            assert choose_engine(engine, images, work, gpu) == Choice(engine, "compute.engine")


def test_auto_picks_keras_from_the_threshold_on():
    work = 1_000_000
    at = KERAS_PAYS_OFF // work
    below, above = choose_engine("auto", at - 1, work, None), choose_engine("auto", at, work, None)
    assert below.engine == "numpy" and above.engine == "keras"
    assert below.line.startswith(f"engine: numpy ({at - 1} images × ")
    assert "too little to pay for TensorFlow's 3.5 s start-up" in below.line
    assert above.line.startswith(f"engine: keras ({at} images × 1 M multiply-adds = ")
    assert above.line.endswith(": TensorFlow's 3.5 s start-up pays off)")
    assert choose_engine("auto", 0, work, None).engine == "numpy"


def test_auto_picks_keras_on_a_gpu_and_for_a_model_the_numpy_pass_does_not_compute():
    assert choose_engine("auto", 1, 10, "1 NVIDIA GPU in /proc/driver/nvidia/gpus") == Choice(
        "keras", "a GPU is visible: 1 NVIDIA GPU in /proc/driver/nvidia/gpus"
    )
    assert choose_engine("auto", 1, None, None) == Choice("keras", "the numpy forward pass does not compute this model")


def test_a_bad_engine_is_refused_in_one_line():
    with pytest.raises(ConvlensError, match=r"^compute.engine='gpu': expected one of auto, numpy, keras$"):
        choose_engine("gpu", 1, 1, None)
    with pytest.raises(ConvlensError, match=r"compute.engine") as err:
        SCHEMA["compute.engine"]("compute.engine", "gpu")
    assert "\n" not in str(err.value) and "auto, numpy, keras" in str(err.value)
    with pytest.raises(ConvlensError, match=r"compute.engine"):
        check_config({"compute": {"engine": "cuda"}}, complete=False)
    for engine in engine_lib.ENGINES:  # the schema and the engine know the same three
        SCHEMA["compute.engine"]("compute.engine", engine)
        check_engine(engine)


@pytest.fixture
def gpus(tmp_path):
    folder = tmp_path / "gpus"
    folder.mkdir()
    return folder


def test_a_gpu_is_seen_from_the_driver_or_nvidia_smi_with_a_cuda_tensorflow(gpus):
    (gpus / "0000:00:1e.0").mkdir()
    yes = {"which": lambda _: None, "cuda_build": lambda: True}
    assert gpu_visible({}, gpus, **yes) == f"1 NVIDIA GPU in {gpus}"
    (gpus / "0000:00:1f.0").mkdir()
    assert gpu_visible({"CUDA_VISIBLE_DEVICES": "0,1"}, gpus, **yes) == f"2 NVIDIA GPUs in {gpus}"
    empty = gpus.parent / "none"
    assert gpu_visible({}, empty, lambda _: "/usr/bin/nvidia-smi", lambda: True) == "/usr/bin/nvidia-smi"


@pytest.mark.parametrize(
    ("environ", "smi", "cuda_build"),
    [
        ({"CUDA_VISIBLE_DEVICES": ""}, "/usr/bin/nvidia-smi", True),  # every device hidden
        ({"CUDA_VISIBLE_DEVICES": "-1"}, "/usr/bin/nvidia-smi", True),
        ({}, None, True),  # no driver, no nvidia-smi
        ({}, "/usr/bin/nvidia-smi", False),  # tensorflow-cpu: a GPU would not run Keras
    ],
)
def test_no_gpu_is_seen_without_every_sign(gpus, environ, smi, cuda_build):
    (gpus / "0000:00:1e.0").mkdir()
    where = gpus if smi else gpus.parent / "none"
    assert gpu_visible(environ, where, lambda _: smi, lambda: cuda_build) is None


def test_the_cuda_build_is_told_by_the_tensorflow_distribution_not_tensorflow_cpu(monkeypatch):
    installed = {"tensorflow-cpu"}

    def distribution(name):
        if name not in installed:
            raise engine_lib.importlib.metadata.PackageNotFoundError(name)
        return name

    monkeypatch.setattr(engine_lib.importlib.metadata, "distribution", distribution)
    assert engine_lib._cuda_tensorflow() is False  # the project's default install
    installed.add("tensorflow")  # pip install '.[gpu]'
    assert engine_lib._cuda_tensorflow() is True


def test_the_work_of_an_image_counts_the_kernels_multiply_adds(tiny_root):
    conv, conv_1, dense = 28 * 28 * (3 * 3 * 1 * 4), 14 * 14 * (3 * 3 * 4 * 8), 7 * 7 * 8 * 10
    elementwise = 14 * 14 * 4 + 7 * 7 * 8 + 7 * 7 * 8  # the pools' and flatten's outputs
    sample = np.zeros((1, 28, 28, 1), np.float32)
    assert multiply_adds(archive(tiny_root), sample) == conv + conv_1 + dense + elementwise


# --- prepare wires it ----------------------------------------------------------------------------------------------


def test_prepare_keeps_the_numpy_pass_by_default_and_says_nothing(tiny_root, caplog):
    caplog.set_level("INFO")
    models = prepare(tiny_root, PIXELS, 255, LOG)
    assert models.engine == "numpy" and not caplog.records
    network, _ = models.network("trained", ["dense"], 4, "dataset.batch_size")
    assert isinstance(network, Network)


def test_prepare_with_keras_gives_the_keras_engine_for_both_models(tiny_root, caplog):
    from convlens.model.keras_models import KerasEngine

    caplog.set_level("INFO")
    models = prepare(tiny_root, PIXELS, 255, LOG, engine="keras")
    assert models.engine == "keras" and not caplog.records
    for role in paths.ROLES:
        network, size = models.network(role, ["conv2d", "dense"], 4, "dataset.batch_size")
        assert isinstance(network, KerasEngine) and size == 4


def test_prepare_with_auto_logs_its_choice_in_one_line(tiny_root, caplog, monkeypatch):
    monkeypatch.setattr(network_lib, "gpu_visible", lambda: None)
    caplog.set_level("INFO")
    assert prepare(tiny_root, PIXELS, 255, LOG, engine="auto").engine == "numpy"
    [line] = [r.getMessage() for r in caplog.records]
    work = multiply_adds(archive(tiny_root), np.zeros((1, 28, 28, 1), np.float32))
    assert line == choose_engine("auto", len(PIXELS), work, None).line
    assert line.startswith("engine: numpy (7 images × 90.2 k multiply-adds = 631 k < ")
    caplog.clear()
    monkeypatch.setattr(network_lib, "gpu_visible", lambda: "1 NVIDIA GPU in /proc/driver/nvidia/gpus")
    assert prepare(tiny_root, PIXELS, 255, LOG, engine="auto").engine == "keras"
    assert [r.getMessage() for r in caplog.records] == [
        "engine: keras (a GPU is visible: 1 NVIDIA GPU in /proc/driver/nvidia/gpus)"
    ]


def test_prepare_refuses_a_bad_engine(tiny_root):
    with pytest.raises(ConvlensError, match=r"^compute.engine='gpu'"):
        prepare(tiny_root, PIXELS, 255, LOG, engine="gpu")


def test_choosing_the_engine_does_not_start_tensorflow():
    code = (
        "import sys, numpy as np; from convlens.model import engine, network; "
        "engine.gpu_visible(); engine.choose_engine('auto', 10**6, 10**7, None); "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]
