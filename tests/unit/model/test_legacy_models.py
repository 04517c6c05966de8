"""Legacy models: Keras 2 ``.h5`` files are checked with h5py, then converted once in fetch_model; a Keras 2
``.keras`` that Keras 3 cannot load says so."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from convlens.errors import ConvlensError
from convlens.model import archive, keras_models
from convlens.pipeline.config import load_config
from stages import extract_weights, fetch_model
from tests.support.helpers import MIRROR, copy_project

TRAINED = Path("outputs", "models", "trained.keras")


@pytest.fixture(scope="module")
def tiny_h5(tmp_path_factory) -> Path:
    """The tiny model saved as legacy HDF5 (Keras 3 writes Keras 2's format for ``.h5``)."""
    from tests.support.helpers import tiny_model

    path = tmp_path_factory.mktemp("h5") / "tiny.h5"
    tiny_model().save(path)
    return path


def with_config(src: Path, dest: Path, edit) -> Path:
    """A copy of ``src`` whose ``model_config`` attribute is ``edit(config)``."""
    shutil.copyfile(src, dest)
    with h5py.File(dest, "r+") as h5:
        config = json.loads(h5.attrs["model_config"])
        edit(config)
        h5.attrs["model_config"] = json.dumps(config)
    return dest


def keras2_style(node):
    """A Keras 3 config as Keras 2 wrote it: no ``module``/``registered_name`` keys, dtypes as strings,
    ``batch_input_shape`` on the InputLayer."""
    if isinstance(node, list):
        return [keras2_style(item) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("class_name") == "DTypePolicy":
        return node["config"]["name"]
    out = {k: keras2_style(v) for k, v in node.items() if k not in ("module", "registered_name")}
    if "batch_shape" in out:
        out["batch_input_shape"] = out.pop("batch_shape")
    return out


def fetch(project: Path, stage_config, model: Path) -> None:
    fetch_model.run(stage_config("fetch_model", f"model.path={model}"), project)


def kernels(root: Path) -> dict[str, np.ndarray]:
    folder = root / "outputs" / "weights" / "trained"
    return {p.name: np.load(p) for p in sorted(folder.glob("*.npy"))}


def test_an_h5_model_is_converted_once_and_gives_the_same_weights(
    project, stage_config, tiny_assets, tiny_h5, tmp_path, caplog
):
    caplog.set_level("INFO")
    fetch(project, stage_config, tiny_assets["model"])
    extract_weights.run(stage_config("extract_weights"), project)
    from_keras = kernels(project)

    fetch(project, stage_config, tiny_h5)
    assert "a legacy HDF5 model, converting it to .keras" in caplog.text
    trained = project / TRAINED
    assert zipfile.is_zipfile(trained)
    first = trained.read_bytes()
    extract_weights.run(stage_config("extract_weights"), project)
    from_h5 = kernels(project)
    assert from_h5.keys() == from_keras.keys() and len(from_h5) == 4
    for name, array in from_keras.items():
        np.testing.assert_array_equal(from_h5[name], array)
    fetch(project, stage_config, tiny_h5)
    assert trained.read_bytes() == first  # reproducible: DVC sees an unchanged model, nothing downstream reruns

    # whatever the file is called: the content decides
    renamed = shutil.copyfile(tiny_h5, tmp_path / "model.keras")
    fetch(project, stage_config, renamed)
    assert trained.read_bytes() == first


def test_a_keras2_h5_config_without_module_keys_is_accepted(project, stage_config, tiny_h5, tmp_path):
    old = with_config(tiny_h5, tmp_path / "keras2.h5", lambda c: c.update(keras2_style(c)))
    with h5py.File(old) as h5:
        text = h5.attrs["model_config"]
    assert '"module"' not in text and "batch_input_shape" in text
    fetch(project, stage_config, old)
    extract_weights.run(stage_config("extract_weights"), project)
    assert kernels(project)["conv2d.kernel.npy"].shape == (3, 3, 1, 4)


def _add_layer(entry: dict):
    return lambda c: c["config"]["layers"].insert(2, entry)


def _set_activation(value):
    return lambda c: c["config"]["layers"][1]["config"].update(activation=value)


HOSTILE_CONFIGS = {
    "lambda-layer": (
        _add_layer(
            {
                "class_name": "Lambda",
                "config": {"name": "evil", "function": ["4wEAAAA=", None, None], "function_type": "lambda"},
            }
        ),
        "contains Lambda layers or Python lambdas (evil) that would run arbitrary code; refused (Keras safe mode)",
    ),
    "marshalled-activation": (
        _set_activation(
            {"class_name": "__lambda__", "config": {"code": "4wEAAAA=", "defaults": None, "closure": None}}
        ),
        "contains Lambda layers or Python lambdas (conv2d.activation) that would run arbitrary code",
    ),
    "non-keras-class": (
        _add_layer({"class_name": "EvilLayer", "config": {"name": "evil"}}),
        "layer 'evil' uses EvilLayer, which is not a Keras built-in; refused (loading it could run code from outside",
    ),
    "module-os": (
        _add_layer({"module": "os", "class_name": "system", "config": {"name": "evil"}}),
        "layer 'evil' uses os.system, which is not a Keras built-in",
    ),
    "activation-name": (_set_activation("os.system"), "uses activation 'os.system', which is not a Keras built-in"),
}


@pytest.mark.parametrize("case", HOSTILE_CONFIGS)
def test_hostile_h5_configs_are_refused_before_keras_opens_them(
    project, stage_config, tiny_h5, tmp_path, monkeypatch, case
):
    edit, message = HOSTILE_CONFIGS[case]
    bad = with_config(tiny_h5, tmp_path / f"{case}.h5", edit)
    monkeypatch.setattr(keras_models, "convert_h5", lambda *a: pytest.fail("Keras opened a hostile .h5"))
    with pytest.raises(ConvlensError) as e:
        fetch(project, stage_config, bad)
    assert message in str(e.value) and str(bad) in str(e.value) and "\n" not in str(e.value)
    assert not (project / TRAINED).exists()


def test_h5_storage_outside_the_file_is_refused(project, stage_config, tiny_h5, tmp_path, monkeypatch):
    monkeypatch.setattr(keras_models, "convert_h5", lambda *a: pytest.fail("Keras opened a hostile .h5"))
    secret = tmp_path / "passwd"
    secret.write_bytes(b"root:x:0:0")
    cases = {
        "external-storage": (
            lambda h5: h5.create_dataset("model_weights/conv2d/x", (4,), "u1", external=[(str(secret), 0, 4)]),
            f"keeps model_weights/conv2d/x in the external file {secret}",
        ),
        "external-link": (
            lambda h5: h5.__setitem__("model_weights/x", h5py.ExternalLink(str(secret), "/data")),
            f"links model_weights/x to {secret}:/data (an external link)",
        ),
        "soft-link": (
            lambda h5: h5.__setitem__("model_weights/x", h5py.SoftLink("/model_weights/conv2d")),
            "links model_weights/x to /model_weights/conv2d (a soft link)",
        ),
    }
    for case, (edit, message) in cases.items():
        bad = shutil.copyfile(tiny_h5, tmp_path / f"{case}.h5")
        with h5py.File(bad, "r+") as h5:
            edit(h5)
        with pytest.raises(ConvlensError) as e:
            fetch(project, stage_config, bad)
        assert (
            str(e.value)
            == f"{bad} {message}; refused (it could read other files): save the model with model.save('name.keras')"
        )
        assert not (project / TRAINED).exists()


def test_an_h5_without_a_model_config_is_named(project, stage_config, tmp_path):
    weights_only = tmp_path / "weights.h5"
    with h5py.File(weights_only, "w") as h5:
        h5.create_dataset("conv2d/kernel", data=np.zeros((3, 3, 1, 4), "float32"))
    with pytest.raises(ConvlensError) as err:
        fetch(project, stage_config, weights_only)
    assert str(err.value) == (
        f"{weights_only} is an HDF5 file with no model_config (weights only, from save_weights?); "
        "save the whole model with model.save('name.keras')"
    )
    assert not (project / TRAINED).exists()


def test_an_h5_config_over_the_cap_is_refused_naming_the_users_file(tiny_h5, tmp_path, monkeypatch):
    """Keras stores ``model_config`` as a variable-length string (its storage size is a 16-byte reference), a
    hand-made file may use a fixed-length one: both are measured by their text."""
    with h5py.File(tiny_h5, "r") as h5:
        text = json.dumps({"pad": "x" * 3000, **json.loads(h5.attrs["model_config"])})
    fixed = shutil.copyfile(tiny_h5, tmp_path / "fixed.h5")
    with h5py.File(fixed, "r+") as h5:
        del h5.attrs["model_config"]
        h5.attrs.create("model_config", np.bytes_(text), dtype=f"S{len(text)}")
    monkeypatch.setattr(archive, "H5_CONFIG_CAP", 3000)
    for path in tiny_h5, fixed:
        with pytest.raises(ConvlensError) as err:
            archive.read_h5_config(path, "models/mine.h5")
        assert re.fullmatch(
            r"models/mine\.h5: model_config is \d\.\d KiB uncompressed, over the 2\.9 KiB limit \(a zip bomb\?\); "
            r"refused: save the model with model\.save\('name\.keras'\)",
            str(err.value),
        ), str(err.value)
    monkeypatch.setattr(archive, "H5_CONFIG_CAP", len(text))
    assert archive.read_h5_config(fixed)["pad"] == "x" * 3000  # at the cap: read


def test_a_keras2_keras_archive_says_keras3_cannot_load_it(project, stage_config, tiny_assets, tmp_path):
    """Keras 2.13–2.15 wrote ``batch_input_shape`` into a layer's config in ``.keras`` archives; Keras 3 refuses."""
    old = tmp_path / "keras2.keras"
    with zipfile.ZipFile(tiny_assets["model"]) as zin, zipfile.ZipFile(old, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            if name == "config.json":
                config = json.loads(data)
                layers = config["config"]["layers"]
                layers[:] = [layer for layer in layers if layer["class_name"] != "InputLayer"]
                layers[0]["config"]["batch_input_shape"] = [None, 28, 28, 1]
                data = json.dumps(config).encode()
            zout.writestr(name, data)
    with pytest.raises(
        (TypeError, ValueError), match="Unrecognized keyword arguments passed to Conv2D"
    ):  # Keras's verdict
        keras_models.keras.saving.load_model(old, compile=False, safe_mode=True)
    with pytest.raises(ConvlensError) as e:
        fetch(project, stage_config, old)
    assert str(e.value) == (
        f"{old} was saved by Keras 2 and Keras 3 cannot load it (Unrecognized keyword arguments passed to Conv2D: "
        "batch_input_shape); in Keras 2 (TensorFlow ≤ 2.15), load it and save it as .h5 (model.save('name.h5')), "
        "which convlens converts"
    )
    assert not (project / TRAINED).exists()


@pytest.mark.mirror
@pytest.mark.skipif(not (MIRROR / "best-cnn-model.keras").is_file(), reason="needs ../shared/mirror")
def test_the_book_model_saved_as_h5_gives_the_books_numbers(tmp_path, monkeypatch, caplog):
    caplog.set_level("INFO")
    monkeypatch.setenv("CONVLENS_MIRROR", str(MIRROR))
    root = copy_project(tmp_path / "project")
    h5 = tmp_path / "best-cnn-model.h5"
    keras_models.keras.saving.load_model(MIRROR / "best-cnn-model.keras", compile=False).save(h5)
    fetch_model.run(load_config("fetch_model", ["model=local", f"model.path={h5}"], root), root)
    extract_weights.run(load_config("extract_weights", [], root), root)
    kernel = np.load(root / "outputs" / "weights" / "trained" / "conv2d.kernel.npy")
    assert kernel.shape == (3, 3, 1, 32)
    assert str(kernel.mean()) == "-0.014383553" and str(kernel.std()) == "0.23351653"
    assert "trained conv2d kernel (3, 3, 1, 32) bias (32,) mean -0.014383553 std 0.23351653" in caplog.text


def test_an_h5_model_config_that_is_no_text_or_no_model_is_refused_naming_the_file(tmp_path):
    """Both refusals name the file (``source`` defaults to the path) and the ``model_config`` attribute."""
    numbers, no_model = tmp_path / "numbers.h5", tmp_path / "no_model.h5"
    with h5py.File(numbers, "w") as h5:
        h5.attrs["model_config"] = np.arange(3)
    with h5py.File(no_model, "w") as h5:
        h5.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": 3})
    for path, problem in ((numbers, "it holds ndarray, not text"), (no_model, "no config object")):
        with pytest.raises(ConvlensError) as err:
            archive.read_h5_config(path)
        assert str(err.value) == (
            f"{path}: model_config is not a Keras model config ({problem}); "
            "save the model with model.save('name.keras')"
        )
