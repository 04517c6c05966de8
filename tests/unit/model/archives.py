"""Model archives for the model tests: a minimal ``.keras``, the tiny model's archive with one part replaced (its
config.json, or a dataset of its weights file edited in place), and what fetch_model checks of an archive."""

import json
import zipfile
from pathlib import Path

from convlens.model.archive import Archive


def write_archive(path, layers):
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": layers}}
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", b"")
        z.writestr("metadata.json", "{}")
    return path


def layer_entry(kind, name):
    return {"class_name": kind, "config": {"name": name}}


def tiny_config(tiny_assets) -> dict:
    with zipfile.ZipFile(tiny_assets["model"]) as z:
        return json.loads(z.read("config.json"))


def rewrite(src, dst, config=None, raw_config: bytes | None = None, h5_edit=None):
    """A copy of archive ``src`` with its config.json replaced and/or its weights file edited in place."""
    import h5py

    with zipfile.ZipFile(src) as z:
        members = {name: z.read(name) for name in z.namelist()}
    if config is not None:
        members["config.json"] = json.dumps(config).encode()
    if raw_config is not None:
        members["config.json"] = raw_config
    if h5_edit is not None:
        scratch = dst.with_suffix(".h5")
        scratch.write_bytes(members["model.weights.h5"])
        with h5py.File(scratch, "r+") as h5:
            h5_edit(h5)
        members["model.weights.h5"] = scratch.read_bytes()
        scratch.unlink()
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return dst


def check_archive(path):
    """What fetch_model checks: the config, then the weights file."""
    archive = Archive.read(path)
    return archive.weights([layer.name for layer in archive.layers if layer.kind == "Conv2D"])


KERNEL = "layers/conv2d/vars/0"  # the tiny model's first kernel, (3, 3, 1, 4) float32


def replace_kernel(**dataset_args):
    def edit(h5):
        del h5[KERNEL]
        h5.create_dataset(KERNEL, **dataset_args)

    return edit


def external_storage(secret):
    return replace_kernel(shape=(3, 3, 1, 4), dtype="f4", external=[(str(secret), 0, 144)])


def set_activation(config, value):
    config["config"]["layers"][1]["config"]["activation"] = value
    return config


def save(model, path: Path) -> Path:
    model.save(path)
    return path


def rich_model():
    """A chain with the other replayed kinds: batch normalization, dropouts, noise (identities at inference)."""
    from convlens.model.keras_models import keras

    layers = keras.layers
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            layers.Conv2D(4, 3, name="conv"),
            layers.BatchNormalization(name="bn"),
            layers.Dropout(0.2, name="drop"),
            layers.GaussianNoise(0.1, name="noise"),
            layers.MaxPooling2D(name="pool"),
            layers.Flatten(name="flat"),
            layers.Dense(3, name="out"),
        ]
    )


def functional_chain():
    """A Functional chain (input ``inp``, ``conv``, ``flat``, ``out``)."""
    from convlens.model.keras_models import keras

    layers = keras.layers
    x = keras.Input((8, 8, 1), name="inp")
    y = layers.Dense(3, name="out")(layers.Flatten(name="flat")(layers.Conv2D(2, 3, name="conv")(x)))
    return keras.Model(x, y)


def outside_rgb_model(side: int, stem_filters: int):
    """The outside tester's functional RGB model: Conv → BatchNormalization → ReLU → MaxPool → Conv → global average
    pooling → Dense, on ``side``×``side``×3 images (Keras saves BatchNormalization's call with ``mask: null``)."""
    from convlens.model.keras_models import keras

    layers = keras.layers
    inputs = keras.Input((side, side, 3))
    x = layers.Conv2D(stem_filters, 3, padding="same", name="stem")(inputs)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.Activation("relu", name="act")(x)
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = layers.Conv2D(5, 3, padding="same", activation="relu", name="block2")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, layers.Dense(3, activation="softmax", name="head")(x))
