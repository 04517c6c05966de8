"""A model Keras loads and then cannot compute (docs/robustness.md, the hostile forward-pass row): a Softmax over an
axis past its input's, an input dtype the float32 images do not fit, a Reshape the images' size does not fit. Keras
raised a traceback of its own in the stage (``feature_maps``, ``dataset``, ``activation_max``, ``gradcam``); now one
``ConvlensError`` line naming the file, the layer and the cause, with Keras's error as its ``__cause__``, from the
Keras engine (``KerasEngine``) and from the numpy pass's fallback (``KerasNetwork``) alike, and no partial output.

Each model is built here with Keras, saved, and its config edited where Keras would refuse to build it in Python.
"""

from __future__ import annotations

import json
import zipfile
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from convlens.errors import ConvlensError
from convlens.model.archive import Archive
from convlens.model.forward import open_network
from convlens.pipeline import paths
from convlens.pipeline.config import compose, declared_params, select
from tests.support.helpers import PIPELINE, configure, copy_project, foreach_items, one_line, stage_name
from tests.unit.model.archives import rewrite


def _edited(folder: Path, model, edit) -> Path:
    """``model`` saved, then its config.json changed by ``edit(layers)`` (Keras loads what it would not build)."""
    saved = model.save(folder / "saved.keras") or folder / "saved.keras"
    with zipfile.ZipFile(saved) as z:
        config = json.loads(z.read("config.json"))
    edit(config["config"]["layers"])
    return rewrite(saved, folder / "trained.keras", config)


def softmax_past_rank(folder: Path, size: int = 28) -> Path:
    from convlens.model.keras_models import keras

    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((size, size, 1)),
            layers.Conv2D(2, 3, name="conv"),
            layers.Softmax(name="soft"),
            layers.Flatten(name="flat"),
            layers.Dense(10, activation="softmax", name="dense"),
        ]
    )
    return _edited(folder, model, lambda entries: entries[2]["config"].update(axis=5))


def int_input(folder: Path) -> Path:
    from convlens.model.keras_models import keras

    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(2, 3, name="conv")])
    return _edited(folder, model, lambda entries: entries[0]["config"].update(dtype="int32"))


def reshape_misfit(folder: Path) -> Path:
    """Any image size (so Keras's loader does not see the misfit), then a Reshape to rows of 5 of 4·4·2 numbers."""
    from convlens.model.keras_models import keras

    layers = keras.layers
    model = keras.Sequential(
        [keras.Input((None, None, 1)), layers.Conv2D(2, 3, name="conv"), layers.Reshape((-1, 2), name="resh")]
    )
    return _edited(folder, model, lambda entries: entries[2]["config"].update(target_shape=[-1, 5]))


CASES = {
    "softmax": (
        partial(softmax_past_rank, size=6),
        ["conv", "soft"],
        "at layer 'soft' (InvalidArgumentError in Softmax.call(): `dim`",
    ),
    "int32": (int_input, ["conv"], "at layer 'conv' ("),
    "reshape": (reshape_misfit, ["resh"], "at layer 'resh' (ValueError in Reshape.call(): The total size"),
}


@pytest.mark.parametrize("engine", ["keras", "numpy"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_model_keras_loads_and_cannot_compute_is_refused_in_one_line(tmp_path, case, engine):
    import tensorflow as tf

    make, names, says = CASES[case]
    path = make(tmp_path)
    network = open_network(Archive.read(path), names, lambda line: None, engine)
    assert type(network).__name__ == ("KerasEngine" if engine == "keras" else "KerasNetwork")
    x = np.random.default_rng(0).uniform(0, 1, (2, 6, 6)).astype(np.float32)
    with pytest.raises(ConvlensError) as err:
        network.activations(x, names)
    line = one_line(err)
    assert line.startswith(f"{path}: Keras cannot compute this model {says}"), line
    assert line.endswith("or use another one") and "\x1b" not in line and "<tf.Variable" not in line, line
    assert isinstance(err.value.__cause__, ValueError | TypeError | tf.errors.OpError)


def test_memory_and_interruptions_are_not_the_models(tmp_path):
    """What is not the model's fault passes through as it was (a device out of memory, Ctrl-C, our own bugs)."""
    import tensorflow as tf

    from convlens.model.keras_models import computed_by_keras, keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    for error in (
        tf.errors.ResourceExhaustedError(None, None, "OOM"),
        KeyboardInterrupt(),
        MemoryError(),
        AttributeError("ours"),
    ):
        with pytest.raises(type(error)), computed_by_keras(tmp_path / "m.keras", model):
            raise error


def _stage_project(tmp_path, tiny_assets, monkeypatch, model_path: Path) -> tuple[Path, object]:
    """The project pointed at ``model_path``, its stages up to (not including) feature_maps run."""
    monkeypatch.setenv("CONVLENS_MIRROR", str(tiny_assets["mirror"]))
    root = copy_project(tmp_path / "project")
    configure(root, str(model_path), tiny_assets["sums"])
    composed = compose(root)
    for module in PIPELINE[: [stage_name(m) for m in PIPELINE].index("feature_maps")]:
        cfg = select(composed, declared_params(root, stage_name(module)))
        for item in foreach_items(module, composed):
            module.run(cfg, root, *([item] if item else []))
    return root, composed


def _stage(root: Path, name: str, overrides: list[str]):
    module = next(m for m in PIPELINE if stage_name(m) == name)
    return module, select(compose(root, overrides), declared_params(root, name))


def test_the_stages_that_compute_the_model_end_in_one_line_and_write_nothing(tmp_path, tiny_assets, monkeypatch):
    """feature_maps (the numpy pass's fallback), dataset with compute.engine=keras and gradcam (Keras's own model)
    on a model with a Softmax over an axis past its input's. (activation_max reads dataset's outputs, which such a
    model never gets: its conv layers compute, and its wrapped first Keras call is not reached here.)"""
    path = softmax_past_rank(tmp_path)
    root, _ = _stage_project(tmp_path, tiny_assets, monkeypatch, path)
    model = paths.model_path(root, "trained")
    before = sorted(p.relative_to(root) for p in (root / "outputs").rglob("*"))

    runs = [
        ("feature_maps", "soft", []),
        ("dataset", "trained", ["compute.engine=keras"]),
        ("gradcam", paths.ATTRIBUTION, []),
    ]
    for name, item, overrides in runs:
        module, cfg = _stage(root, name, overrides)
        with pytest.raises(ConvlensError) as err:
            module.run(cfg, root, item)
            pytest.fail(f"{name} ran")
        line = one_line(err)
        assert line.startswith(f"{model}: Keras cannot compute this model at layer 'soft' ("), (name, line)
        assert sorted(p.relative_to(root) for p in (root / "outputs").rglob("*")) == before, name
