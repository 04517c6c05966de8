"""Hostile and unreadable models refused by fetch_model and by every stage that reads a model, in process and as a
user runs it (one line each, nothing written)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from convlens.errors import ConvlensError
from stages import build_untrained, extract_weights, fetch_model
from tests.support.helpers import cli, error_line, one_line
from tests.unit.model.archives import external_storage, replace_kernel, rewrite, save, set_activation, tiny_config


def _lambda_models(tmp_path: Path) -> dict[str, Path]:
    """Real ``.keras`` archives holding code: a Lambda layer, and one nested inside an inner model."""
    from convlens.model.keras_models import keras

    conv = keras.layers.Conv2D(2, 3, name="conv2d")
    top = keras.Sequential([keras.Input((28, 28, 1)), conv, keras.layers.Lambda(lambda x: x * 2, name="evil")])
    inner = keras.Sequential([keras.layers.Lambda(lambda x: x + 1, name="hidden_evil")], name="inner")
    nested = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(2, 3, name="conv2d"), inner])
    return {"evil": save(top, tmp_path / "lambda.keras"), "hidden_evil": save(nested, tmp_path / "nested.keras")}


def test_models_with_lambda_code_are_refused_as_keras_safe_mode_would(project, stage_config, tmp_path):
    from convlens.model.keras_models import keras

    for name, path in _lambda_models(tmp_path).items():
        with pytest.raises((ValueError, TypeError)):
            keras.models.load_model(path, compile=False, safe_mode=True)  # Keras's own safe mode refuses too
        with pytest.raises(ConvlensError) as err:
            fetch_model.run(stage_config("fetch_model", f"model.path={path}"), project)
        assert f"contains Lambda layers or Python lambdas ({name}) that would run arbitrary code; refused" in one_line(
            err
        )
    assert not (project / "outputs" / "models").exists() or not list((project / "outputs" / "models").iterdir())


def test_model_refusals_from_the_command_line(project, tiny_assets, tmp_path):
    from convlens.model.keras_models import keras

    junk = tmp_path / "page.keras"
    junk.write_text("<html><body>404 Not Found</body></html>", encoding="utf-8")
    dense_only = save(
        keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(name="flatten")]), tmp_path / "d.keras"
    )
    lam = _lambda_models(tmp_path)["evil"]
    lines = {
        p.name: error_line(cli(project, "fetch_model", f"model.path={p}"), "fetch_model")
        for p in (junk, dense_only, lam)
    }
    assert lines["page.keras"] == (
        f"fetch_model: error: {junk} is not a Keras .keras archive (File is not a zip file); "
        "save the model with model.save('name.keras')"
    )
    assert lines["d.keras"] == (
        f"fetch_model: error: {dense_only} has no convolutional layer (layers: flatten (Flatten)); "
        "convlens needs a model with a Conv2D, DepthwiseConv2D or SeparableConv2D layer"
    )
    assert lines["lambda.keras"] == (
        f"fetch_model: error: {lam} contains Lambda layers or Python lambdas (evil) that would run arbitrary code; "
        "refused (Keras safe mode): rebuild the model without them"
    )
    assert not (project / "outputs").exists()


def _hostile_models(tiny_assets: dict, tmp_path: Path) -> dict[str, Path]:
    """Issue 9 §2: a file read through external storage, os.system as an activation, a 5×5 kernel under a
    3×3 config, a config that is a JSON list, and a 64 MiB config.json deflated to kilobytes."""

    secret = tmp_path / "passwd"
    secret.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n" * 8)
    src = tiny_assets["model"]
    bomb = rewrite(src, tmp_path / "bomb.keras", raw_config=b" " * (64 << 20))
    return {
        "external": rewrite(src, tmp_path / "external.keras", h5_edit=external_storage(secret)),
        "os-system": rewrite(
            src,
            tmp_path / "system.keras",
            config=set_activation(tiny_config(tiny_assets), {"module": "os", "class_name": "system", "config": {}}),
        ),
        "kernel-5x5": rewrite(src, tmp_path / "k5.keras", h5_edit=replace_kernel(data=np.zeros((5, 5, 1, 4), "f4"))),
        "list-config": rewrite(src, tmp_path / "list.keras", raw_config=b"[]"),
        "bomb": bomb,
    }


def test_hostile_model_files_from_the_command_line(project, tiny_assets, tmp_path):
    models = _hostile_models(tiny_assets, tmp_path)
    lines = {
        case: error_line(cli(project, "fetch_model", f"model.path={path}"), "fetch_model")
        for case, path in models.items()
    }
    assert lines == {
        "external": f"fetch_model: error: {models['external']}: model.weights.h5 keeps layers/conv2d/vars/0 in the "
        f"external file {tmp_path / 'passwd'}; refused (it could read other files): "
        "save the model with model.save('name.keras')",
        "os-system": f"fetch_model: error: {models['os-system']}: layer 'conv2d' uses os.system, which is not a Keras "
        "built-in; refused (loading it could run code from outside the archive): rebuild the model from built-in "
        "keras.layers",
        "kernel-5x5": f"fetch_model: error: {models['kernel-5x5']}: layer 'conv2d' stores its kernel as (5, 5, 1, 4) "
        "but its config says (3, 3, 1, 4); the weights do not fit the architecture: "
        "save the model with model.save('name.keras') again",
        "list-config": f"fetch_model: error: {models['list-config']}: config.json is not a Keras model config "
        "(it holds a list, not an object); save the model with model.save('name.keras')",
        "bomb": f"fetch_model: error: {models['bomb']}: config.json is 64 MiB uncompressed, over the 16 MiB limit "
        "(a zip bomb?); refused: save the model with model.save('name.keras')",
    }
    assert not (project / "outputs").exists()


def test_hostile_archives_already_in_outputs_are_refused_by_every_reader(project, stage_config, tiny_assets, tmp_path):
    """Defence in depth: extract_weights reads the weights itself and checks them again."""
    fetch_model.run(stage_config("fetch_model"), project)
    trained = project / "outputs" / "models" / "trained.keras"
    hostile = _hostile_models(tiny_assets, tmp_path)
    for case in ("external", "kernel-5x5"):
        shutil.copyfile(hostile[case], trained)
        with pytest.raises(ConvlensError, match="refused|do not fit"):
            extract_weights.run(stage_config("extract_weights"), project)
    assert not (project / "outputs" / "weights").exists() and not (project / "outputs" / "metrics").exists()


def test_a_model_path_that_is_not_a_regular_file_is_named(project, tiny_assets, tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    fifo = tmp_path / "pipe.keras"
    os.mkfifo(fifo)
    lines = {}
    for path in (folder, fifo, Path("/dev/zero")):
        done = subprocess.run(  # a stage that opened the FIFO would block: the timeout fails the test instead
            [sys.executable, "-m", "stages.fetch_model", f"model.path={path}"],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=120,
        )
        lines[path.name] = error_line(done, "fetch_model")
    assert lines == {
        "models": f"fetch_model: error: model.path {folder} is a directory; point it at a .keras file",
        "pipe.keras": f"fetch_model: error: model.path {fifo} is a FIFO, not a regular file; point it at a .keras file",
        "zero": "fetch_model: error: model.path /dev/zero is a character device, not a regular file; "
        "point it at a .keras file",
    }


def test_keras_loading_errors_keep_their_cause(project, stage_config, tiny_assets, tmp_path):
    """A config Keras refuses for a reason our checks leave to it: the cause survives, not a 200-character cut."""

    fetch_model.run(stage_config("fetch_model"), project)
    config = tiny_config(tiny_assets)
    config["config"]["layers"][1]["config"]["padding"] = "sideways"
    trained = project / "outputs" / "models" / "trained.keras"
    rewrite(tiny_assets["model"], trained, config=config)
    with pytest.raises(ConvlensError) as err:
        build_untrained.run(stage_config("build_untrained"), project)
    assert one_line(err).startswith(
        f"{trained}: Keras cannot load this model (Conv2D could not be deserialized: The `padding` argument must be"
    )
    assert one_line(err).endswith("Received: sideways)")
    assert not (project / "outputs" / "models" / "untrained.keras").exists()


def _declaring(tiny_assets: dict, path: Path, filters: dict[str, int]) -> Path:
    """The tiny model with ``filters`` for some conv layers in its config, each kernel and bias declared to fit them
    (chunked and never written: the file stays a few kB)."""
    config = tiny_config(tiny_assets)
    channels = {}
    for layer in config["config"]["layers"]:
        if layer["config"]["name"] in filters:
            layer["config"]["filters"] = filters[layer["config"]["name"]]
            channels[layer["config"]["name"]] = layer["build_config"]["input_shape"][-1]

    def edit(h5):
        for name, n in filters.items():
            for var, shape in (("0", (3, 3, channels[name], n)), ("1", (n,))):
                del h5[f"layers/{name}/vars/{var}"]
                h5.create_dataset(f"layers/{name}/vars/{var}", shape=shape, dtype="f4", chunks=True, compression="gzip")

    return rewrite(tiny_assets["model"], path, config=config, h5_edit=edit)


def test_models_declaring_too_much_from_the_command_line(project, tiny_assets, tmp_path):
    """Issue 28 §6, through fetch_model as a user runs it: a kernel declared over 2 GiB (numpy's `Unable to allocate
    40.2 GiB`), two kernels of 1.5 GiB each under it but 3 GiB together (read in full and passed on), and a model of
    10,000 layers (Keras stages that never finished): one line each, exit 1, no model written."""
    config = tiny_config(tiny_assets)
    nested = {"class_name": "Sequential", "config": {"name": "block", "layers": []}}
    nested["config"]["layers"] = [
        {"class_name": "Dropout", "config": {"rate": 0.0, "name": f"d{i}"}}
        for i in range(10_000 - len(config["config"]["layers"]) - 1)
    ]
    config["config"]["layers"].append(nested)
    models = {
        "one": _declaring(tiny_assets, tmp_path / "one.keras", {"conv2d": 1_200_000_000}),
        "in-all": _declaring(tiny_assets, tmp_path / "all.keras", {"conv2d": 40_000_000, "conv2d_1": 11_000_000}),
        "layers": rewrite(tiny_assets["model"], tmp_path / "layers.keras", config=config),
    }
    assert all(path.stat().st_size < 1 << 20 for path in models.values())
    lines = {
        case: error_line(cli(project, "fetch_model", f"model.path={p}"), "fetch_model") for case, p in models.items()
    }
    refused = "refused: save the model with model.save('name.keras')"
    assert lines == {
        "one": f"fetch_model: error: {models['one']}: model.weights.h5 declares layers/conv2d/vars/0 (layer 'conv2d') "
        f"as (3, 3, 1, 1200000000) float32, 40.2 GiB, over the 2 GiB limit; {refused}",
        "in-all": f"fetch_model: error: {models['in-all']}: model.weights.h5 declares 3.0 GiB of variables in all "
        "(the largest: layers/conv2d_1/vars/0 (layer 'conv2d_1') as (3, 3, 4, 11000000) float32, 1.5 GiB), over the "
        f"2 GiB limit; {refused}",
        "layers": f"fetch_model: error: {models['layers']}: the model has 10000 layers (nested models' included), over "
        "the 2000 convlens reads; look inside a part of it: "
        "keras.Model(model.inputs, model.get_layer(NAME).output).save('part.keras')",
    }
    assert not (project / "outputs").exists()
