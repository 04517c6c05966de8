"""The book's numbers from the real model and data; skipped where ../shared/mirror is absent."""

import numpy as np
import pytest

from convlens.data.idx import read_idx
from convlens.model.archive import Archive
from convlens.model.forward import load_network
from convlens.model.inputs import model_inputs
from convlens.pipeline.config import load_config
from stages import build_untrained, extract_weights, fetch_data, fetch_model
from tests.support.helpers import MIRROR, copy_project

pytestmark = [pytest.mark.mirror, pytest.mark.skipif(not MIRROR.is_dir(), reason="needs ../shared/mirror")]


@pytest.fixture
def real_project(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVLENS_MIRROR", str(MIRROR))
    return copy_project(tmp_path / "project")


def run(module, root):
    name = module.__name__.rsplit(".", 1)[1]
    module.run(load_config(name, [], root), root)


def test_book_model_prints_the_books_numbers(real_project, caplog):
    caplog.set_level("INFO")
    for module in (fetch_model, extract_weights, build_untrained):
        run(module, real_project)
    kernel = np.load(real_project / "outputs" / "weights" / "trained" / "conv2d.kernel.npy")
    bias = np.load(real_project / "outputs" / "weights" / "trained" / "conv2d.bias.npy")
    assert kernel.shape == (3, 3, 1, 32) and bias.shape == (32,)
    assert str(kernel.mean()) == "-0.014383553" and str(kernel.std()) == "0.23351653"
    untrained = np.load(real_project / "outputs" / "weights" / "untrained" / "conv2d.kernel.npy")
    assert str(untrained.mean()) == "0.0053191613" and str(untrained.std()) == "0.08463709"
    assert "trained conv2d kernel (3, 3, 1, 32) bias (32,) mean -0.014383553 std 0.23351653" in caplog.text
    assert "untrained conv2d kernel (3, 3, 1, 32) bias (32,) mean 0.0053191613 std 0.08463709" in caplog.text


def test_real_data_matches_the_published_facts(real_project):
    run(fetch_data, real_project)
    data = real_project / "outputs" / "data"
    train_labels, test_labels = np.load(data / "train_labels.npy"), np.load(data / "test_labels.npy")
    assert train_labels[0] == 9 and test_labels[0] == 9
    assert np.load(data / "train_images.npy").shape == (60000, 28, 28)
    assert round(float(np.load(data / "train_images.npy").mean()), 2) == 72.94
    assert (np.bincount(train_labels) == 6000).all() and (np.bincount(test_labels) == 1000).all()


def test_the_numpy_forward_pass_gives_kerass_feature_maps_of_the_book_model():
    """The book's conv_acti for training image 0 / 255: conv2d (1 input channel, im2col) and conv2d_1 (32 input
    channels, one product per kernel offset) equal Keras's to float32 precision."""
    from convlens.model.keras_models import load_model
    from tests.support.keras_reference import activation_model

    model_path = MIRROR / "best-cnn-model.keras"
    images = read_idx(MIRROR / "fashion-mnist" / "train-images-idx3-ubyte.gz")
    x = images[:1].reshape(-1, 28, 28, 1) / 255.0  # the book: train_input[0:1].reshape(-1, 28, 28, 1) / 255.0
    names = ["conv2d", "conv2d_1"]
    want = activation_model(load_model(model_path), names)(x.astype(np.float32), training=False)
    got = load_network(Archive.read(model_path), upto="conv2d_1").activations(model_inputs(images[:1], 255), names)
    for name, a, b in zip(names, got, want, strict=True):
        b = np.asarray(b)
        assert a.shape == b.shape == ((1, 28, 28, 32) if name == "conv2d" else (1, 14, 14, 64))
        assert b.max() > 0.5 and (b > 0).mean() > 0.1, name  # real activations, not a dead layer
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=name)
        print(f"{name}: max abs difference {np.abs(a - b).max():.3g} (largest activation {b.max():.3g})")
