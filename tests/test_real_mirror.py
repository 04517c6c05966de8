"""The book's numbers from the real model and data; skipped where ../shared/mirror is absent."""

import numpy as np
import pytest

from stages import build_untrained, extract_weights, fetch_data, fetch_model
from stages.lib.config import load_config
from tests.helpers import MIRROR, copy_project

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
