"""Your own data under DVC: a CIFAR-format archive and an RGB model through every stage of ``dvc exp run``, whose
feature maps and accuracy equal Keras's and whose figures are in colour; and a change to an image in your own folder
reruns what depends on it (PNG and JPEG)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from convlens.analysis.stats import as_number
from convlens.data.fetch import sha256sum
from convlens.pipeline import paths
from tests.support.datasets import cifar_archive, image_folder, rgb
from tests.support.dvc_repo import STAGES, commit, dvc, ran

pytestmark = pytest.mark.slow

NAMES = ["airplane", "bird", "cat"]


def rgb_model(path, classes: int = 3, seed: int = 3):
    """A small CNN for 32×32 RGB images: the book's layers, scaled down."""
    from convlens.model.keras_models import keras

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            layers.Conv2D(4, 3, activation="relu", padding="same", name="conv2d"),
            layers.MaxPooling2D(2, name="max_pooling2d"),
            layers.Conv2D(6, 3, activation="relu", padding="same", name="conv2d_1"),
            layers.MaxPooling2D(2, name="max_pooling2d_1"),
            layers.Flatten(name="flatten"),
            layers.Dense(classes, activation="softmax", name="dense"),
        ]
    )
    model.save(path)
    return model


def is_colour(png) -> bool:
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("RGB"), np.int16)
    return bool(np.abs(pixels[..., 0] - pixels[..., 1]).max() > 40)


def test_a_cifar_archive_and_an_rgb_model_run_every_stage_and_match_keras(good_repo):
    from convlens.model.keras_models import keras

    root, env = good_repo
    splits = {
        "train": (rgb(12, seed=4), np.arange(12) % 3),
        "test": (rgb(6, seed=5), np.array([2, 0, 1, 1, 0, 2])),
    }
    archive = cifar_archive(root.parent / "shared" / "mirror" / "cifar-10-python.tar.gz", "cifar10", splits, NAMES)
    (root / "models").mkdir(exist_ok=True)
    model = rgb_model(root / "models" / "rgb.keras")
    dvc(root, env, "add", "-q", "models/rgb.keras")
    commit(root, env, "an RGB model")

    overrides = ["data=cifar10", "data.urls=[]", f"data.files.archive.sha256={sha256sum(archive)}"]
    overrides += ["model=local", "model.path=models/rgb.keras", "samples.indices=[0,1]"]
    output = dvc(root, env, "exp", "run", *(arg for o in overrides for arg in ("-S", o)))
    assert set(ran(output)) == set(STAGES), output

    out = root / "outputs"
    assert json.loads((out / "data" / "classes.json").read_text(encoding="utf-8")) == NAMES
    samples = splits["train"][0][[0, 1]].astype(np.float32) / 255
    for layer in ("conv2d", "conv2d_1"):
        keras_maps = keras.Model(model.inputs[0], model.get_layer(layer).output)(samples).numpy()
        np.testing.assert_allclose(np.load(paths.maps(root, layer, "trained")), keras_maps, rtol=1e-5, atol=1e-6)

    x_test, y_test = splits["test"]
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    _, keras_accuracy = model.evaluate(x_test.astype(np.float32) / 255, y_test, verbose=0)
    metrics = json.loads(paths.evaluate_metrics(root).read_text(encoding="utf-8"))
    assert metrics["trained"]["accuracy"] == as_number(keras_accuracy)
    assert list(metrics["trained"]["class_accuracy"]) == NAMES

    assert is_colour(paths.sample_figure(root, 0))  # the sample as the RGB image it is
    assert is_colour(paths.filters_figure(root, "trained", "conv2d"))  # 3-channel filters as colour tiles


def test_an_image_added_to_your_folder_reruns_what_depends_on_it(good_repo):
    root, env = good_repo
    pixels = {name: [rgb(1, side=28, seed=10 * k + i)[0] for i in range(4)] for k, name in enumerate(NAMES)}
    image_folder(root / "data" / "photos", {name: images[:2] for name, images in pixels.items()})
    image_folder(root / "data" / "photos", {name: images[2:] for name, images in pixels.items()}, suffix="_2.jpg")
    dvc(root, env, "add", "-q", "data/photos")
    commit(root, env, "my photos")
    overrides = ["data=folder", "data.path=data/photos", "data.color=gray", "dataset.examples.k=2"]
    overrides += ["samples.indices=[0]"]
    args = [*(arg for o in overrides for arg in ("-S", o)), "fetch_data"]  # the data alone: what this test is about
    first = dvc(root, env, "exp", "run", *args)
    assert "fetch_data" in ran(first)
    assert np.load(paths.images(root, "train")).shape[1:] == (28, 28)  # stored gray, as data.color asks

    image_folder(root / "data" / "photos", {"cat": [rgb(1, side=28, seed=99)[0]]}, suffix="_new.png")
    assert "fetch_data" in dvc(root, env, "status", "fetch_data")  # the folder is a dependency: stale at once
    second = dvc(root, env, "exp", "run", *args)
    assert ran(second) == ["fetch_data"], second
    total = sum(len(np.load(paths.images(root, split))) for split in ("train", "test"))
    assert total == 13
