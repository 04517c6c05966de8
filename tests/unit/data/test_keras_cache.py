"""Keras's own download of the CIFAR archives (``keras.datasets.cifar10/cifar100.load_data()``) is found in its
datasets folder under the names Keras saves it as, checksum-verified like any local copy."""

from pathlib import Path

import numpy as np
import pytest

from convlens.data.fetch import sha256sum
from convlens.errors import ConvlensError
from tests.support.datasets import data_config, tiny_cifar, write


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty home, no mirror, no KERAS_HOME, a cache that does not exist: Keras's folder is the only copy."""
    monkeypatch.delenv("CONVLENS_MIRROR", raising=False)
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CONVLENS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "home"


def keras_copy(datasets: Path, name: str, fmt: str) -> tuple[dict, dict]:
    """A tiny archive saved as Keras saves the download (beside the folder Keras extracts it to), and the data
    config that pins it by its sha256 (no URL: only a local copy can serve it)."""
    datasets.mkdir(parents=True, exist_ok=True)
    splits, _ = tiny_cifar(datasets / name, fmt)
    (datasets / name.removesuffix("_archive").removesuffix(".tar.gz")).mkdir()  # Keras's extracted folder, not read
    own = {"cifar10": "cifar-10-python.tar.gz", "cifar100": "cifar-100-python.tar.gz"}[fmt]
    archive = {"name": own, "sha256": sha256sum(datasets / name)}
    return splits, data_config(fmt, urls=[], files={"archive": archive})


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("cifar-10-batches-py-target_archive", "cifar10"),  # Keras 3 (3.15 here)
        ("cifar-100-python-target_archive", "cifar100"),
        ("cifar-10-batches-py.tar.gz", "cifar10"),  # tf.keras 2
    ],
)
def test_keras_cifar_download_is_found_in_keras_datasets(tmp_path, home, name, fmt):
    splits, data = keras_copy(home / ".keras" / "datasets", name, fmt)
    got = write(tmp_path, data)
    for split, (images, labels) in splits.items():
        np.testing.assert_array_equal(got[f"{split}_images"], images)
        np.testing.assert_array_equal(got[f"{split}_labels"], labels)


def test_keras_home_is_searched_when_set(tmp_path, home, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    splits, data = keras_copy(tmp_path / "kh" / "datasets", "cifar-10-batches-py-target_archive", "cifar10")
    np.testing.assert_array_equal(write(tmp_path, data)["test_labels"], splits["test"][1])


def test_a_keras_copy_with_another_checksum_is_skipped(tmp_path, home, caplog):
    datasets = home / ".keras" / "datasets"
    _, data = keras_copy(datasets, "cifar-10-batches-py-target_archive", "cifar10")
    data["files"]["archive"]["sha256"] = "0" * 64  # another archive than the one configured
    with pytest.raises(ConvlensError) as err:
        write(tmp_path, data)
    assert f"ignoring {datasets / 'cifar-10-batches-py-target_archive'}: its sha256 is not" in caplog.text
    assert str(err.value).startswith("cifar-10-python.tar.gz not found in ")
