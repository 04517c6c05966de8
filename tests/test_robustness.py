"""Failure behaviour (issue 4): each bad input or fault gives one clear error line, a non-zero exit,
no partial artifact in ``outputs/``, and the previous good outputs untouched. docs/robustness.md lists
every case with the message a user sees and the test here (or elsewhere) that proves it."""

from __future__ import annotations

import errno
import fcntl
import gzip
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from convlens import fetch as fetch_lib
from convlens.__main__ import COMMANDS
from convlens.allowlist import unsafe_places
from convlens.archive import read_config
from convlens.errors import ConvlensError
from convlens.fetch import RemoteFile, fetch
from convlens.files import SCRATCH, atomic_path, scratch_dir, staged_dir, write_json
from convlens.grids import feature_map_grid, filter_grid
from convlens.idx import IdxError, parse_idx, read_idx
from convlens.layers import check_input_shape, check_model_config, input_shape
from convlens.stats import channel_stats, filter_stats, kernel_stats, layer_summary
from stages import build_untrained, extract_weights, fetch_data, fetch_model
from tests.helpers import (
    DATA_FILES,
    WEIGHT_OUTPUTS,
    copy_project,
    hidden,
    idx_bytes,
    kill_shim_env,
    snapshot,
    staging_areas,
    tiny_model,
    weight_outputs,
)

AREA = re.compile(r"\.convlens-tmp\.\d+\.[a-z0-9_]{8}")  # a process's staging area (convlens/files.py)


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message and message
    return message


def cli(project: Path, stage: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m stages.<stage> args`` (``python -m convlens <command>`` for a command that is not a stage) from
    the project root, as a user runs it: never a traceback."""
    module = ["convlens", stage] if stage in COMMANDS else [f"stages.{stage}"]
    done = subprocess.run(
        [sys.executable, "-m", *module, *args],
        cwd=project,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env={**os.environ, **(env or {})},
    )
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    return done


def error_line(done: subprocess.CompletedProcess, stage: str) -> str:
    """The stage's one error line: exit 1, no traceback, the line starts with ``<stage>: error:``."""
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(lines) == 1 and lines[0].startswith(f"{stage}: error: "), done.stderr
    return lines[0]


# --- Download ---------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    """Serves ``routes[path]`` = a list of (status, headers, body) answers, one per request, the last repeated."""

    routes: ClassVar[dict[str, list[tuple[int, dict, bytes]]]] = {}
    hits: ClassVar[dict[str, int]] = {}

    def log_message(self, *args):
        pass

    def do_GET(self):
        answers = self.routes.get(self.path, [(404, {}, b"not found")])
        n = self.hits.get(self.path, 0)
        self.hits[self.path] = n + 1
        status, headers, body = answers[min(n, len(answers) - 1)]
        self.send_response(status)
        for key, value in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True


@pytest.fixture
def web(monkeypatch):
    """A loopback HTTP server with scripted answers (no network leaves this machine)."""
    handler = type("Handler", (_Handler,), {"routes": {}, "hits": {}})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setattr(fetch_lib, "RETRY_DELAY_S", 0.0)
    yield handler, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


PAYLOAD = gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x03\x07\x08\x09")
HTML = b"<!DOCTYPE html><html><body><h1>503 Service Unavailable</h1></body></html>"


def _file(urls) -> RemoteFile:
    return RemoteFile("f.gz", hashlib.sha256(PAYLOAD).hexdigest(), tuple(urls))


def test_offline_fetch_data_says_where_to_put_the_file_and_keeps_old_data(project, stage_config, tiny_assets):
    fetch_data.run(stage_config("fetch_data"), project)
    before = snapshot(project / "outputs")
    args = ["data.urls=[http://127.0.0.1:9/]"]
    done = cli(project, "fetch_data", *args, "data.files.train_labels.sha256=" + "a" * 64)
    line = error_line(done, "fetch_data")
    assert line.startswith(
        "fetch_data: error: cannot download train-labels-idx1-ubyte.gz "
        "(http://127.0.0.1:9/train-labels-idx1-ubyte.gz: server unreachable). Offline? Put the file at "
        f"{tiny_assets['mirror'] / 'fashion-mnist' / 'train-labels-idx1-ubyte.gz'} and set CONVLENS_MIRROR=<dir>"
    )
    assert snapshot(project / "outputs") == before and not hidden(project / "outputs")


@pytest.mark.parametrize(
    ("answers", "reason", "tries"),
    [
        ([(404, {}, b"gone")], "HTTP 404", 1),
        ([(503, {}, HTML)], "HTTP 503 (2 tries)", 2),
        ([(200, {"Content-Length": str(len(PAYLOAD) * 10)}, PAYLOAD)], "connection cut mid-file", 2),
        ([(200, {"Content-Type": "text/html"}, HTML)], "checksum mismatch, download deleted", 1),
        ([(200, {}, PAYLOAD[:-5])], "checksum mismatch, download deleted", 1),
    ],
    ids=["http-404", "http-503-retried", "truncated-connection", "html-page", "truncated-file"],
)
def test_failed_downloads_are_named_and_leave_nothing_on_disk(web, tmp_path, monkeypatch, answers, reason, tries):
    handler, url = web
    handler.routes["/f.gz"] = answers
    monkeypatch.setenv("CONVLENS_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ConvlensError) as err:
        fetch(_file([url + "/f.gz"]), [tmp_path / "nowhere"])
    assert f"cannot download f.gz ({url}/f.gz: {reason}" in one_line(err)
    assert handler.hits["/f.gz"] == tries
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def test_a_transient_server_error_is_retried_once(web, tmp_path):
    handler, url = web
    handler.routes["/f.gz"] = [(503, {}, HTML), (200, {}, PAYLOAD)]
    assert fetch(_file([url + "/f.gz"]), []).read_bytes() == PAYLOAD
    assert handler.hits["/f.gz"] == 2


def test_an_html_page_from_the_first_mirror_falls_back_to_the_next(web, tmp_path, monkeypatch):
    handler, url = web
    handler.routes["/a/f.gz"] = [(200, {"Content-Type": "text/html"}, HTML)]
    handler.routes["/b/f.gz"] = [(200, {}, PAYLOAD)]
    monkeypatch.setenv("CONVLENS_CACHE", str(tmp_path / "cache"))
    got = fetch(_file([url + "/a/f.gz", url + "/b/f.gz"]), [])
    assert got.read_bytes() == PAYLOAD and [p.name for p in (tmp_path / "cache").iterdir()] == ["f.gz"]


# --- Data -------------------------------------------------------------------------------------------


def _mirror_with(tmp_path: Path, tiny_assets: dict, raw: dict[str, bytes]) -> tuple[Path, list[str]]:
    """A copy of the tiny mirror with some files replaced by ``raw`` bytes, and the sha256 overrides for it."""
    mirror = tmp_path / "bad-mirror"
    shutil.copytree(tiny_assets["mirror"], mirror)
    overrides = []
    for key, data in raw.items():
        path = mirror / "fashion-mnist" / DATA_FILES[key]
        path.write_bytes(data)
        overrides.append(f"data.files.{key}.sha256={hashlib.sha256(data).hexdigest()}")
    return mirror, overrides


LABELS_OK = idx_bytes(np.zeros(12, np.uint8))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"train_labels": gzip.compress(b"\x08\x03" + LABELS_OK[2:])}, "bad IDX magic number 0x0803"),
        (
            {"train_labels": gzip.compress(LABELS_OK[:-2])},
            "header shape (12,) needs 12 payload bytes but the file has 10",
        ),
        ({"train_labels": gzip.compress(idx_bytes(np.zeros(11, np.uint8)))}, "train: 12 images but 11 labels"),
        ({"train_labels": b""}, "0 bytes is too short for an IDX header"),
        ({"train_labels": gzip.compress(b"")}, "0 bytes is too short for an IDX header"),
        ({"train_labels": HTML}, "not a readable gzip file (Not a gzipped file (b'<!'))"),
        (
            {
                "train_images": gzip.compress(idx_bytes(np.zeros((0, 28, 28), np.uint8))),
                "train_labels": gzip.compress(idx_bytes(np.zeros(0, np.uint8))),
            },
            "train: the files hold no images",
        ),
    ],
    ids=["wrong-magic", "header-vs-payload", "length-mismatch", "empty-file", "empty-gzip", "not-gzip", "no-images"],
)
def test_bad_idx_files_fail_clearly_and_keep_the_old_data(
    project, stage_config, tiny_assets, tmp_path, monkeypatch, raw, message
):
    fetch_data.run(stage_config("fetch_data"), project)
    before = snapshot(project / "outputs")
    mirror, overrides = _mirror_with(tmp_path, tiny_assets, raw)
    monkeypatch.setenv("CONVLENS_MIRROR", str(mirror))
    with pytest.raises(IdxError) as err:
        fetch_data.run(stage_config("fetch_data", *overrides), project)
    assert message in one_line(err)
    assert snapshot(project / "outputs") == before and not hidden(project / "outputs")


def test_bad_idx_file_from_the_command_line_is_one_line_and_exit_1(project, tiny_assets, tmp_path):
    mirror, overrides = _mirror_with(tmp_path, tiny_assets, {"test_images": gzip.compress(b"\x00\x00\x08\x03")})
    args = [*overrides]
    line = error_line(cli(project, "fetch_data", *args, env={"CONVLENS_MIRROR": str(mirror)}), "fetch_data")
    assert line == (
        f"fetch_data: error: {mirror / 'fashion-mnist' / 't10k-images-idx3-ubyte.gz'}: header declares 3 dimensions "
        "but the file ends at byte 4"
    )
    assert not (project / "outputs" / "data").exists()


IDX_CODES = [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=80),
        st.builds(
            lambda code, dims, payload: (
                bytes([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims) + payload
            ),
            st.sampled_from([*IDX_CODES, 0x00, 0x07, 0xFF]),
            st.lists(st.one_of(st.integers(0, 5), st.integers(0, 2**32 - 1)), max_size=5),
            st.binary(max_size=300),
        ),
    )
)
@example(bytes([0, 0, 8, 70]) + (1).to_bytes(4, "big") * 70 + b"x")  # NumPy has at most 64 dims
@example(bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (0, 2**32 - 1, 2**32 - 1)))  # 0 items, huge
# int64 wraps 384773·49477·34724·27905 to 4: a product in int64 would accept 4 bytes and fail in reshape
@example(bytes([0, 0, 8, 4]) + b"".join(n.to_bytes(4, "big") for n in (384773, 49477, 34724, 27905)) + bytes(4))
def test_random_headers_give_the_declared_shape_or_an_idx_error(data):
    try:
        array = parse_idx(data)
    except IdxError as e:
        assert "\n" not in str(e)
        return
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(data[3]))
    assert array.shape == dims and array.dtype.isnative


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=64), st.binary(max_size=64).map(lambda b: b"\x1f\x8b" + b)))
def test_random_gz_files_give_an_array_or_an_idx_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("gz") / "x-idx1-ubyte.gz"
    path.write_bytes(data)
    try:
        read_idx(path)
    except IdxError as e:
        assert "\n" not in str(e)


# --- Model ------------------------------------------------------------------------------------------


def _save(model, path: Path) -> Path:
    model.save(path)
    return path


def _lambda_models(tmp_path: Path) -> dict[str, Path]:
    """Real ``.keras`` archives holding code: a Lambda layer, and one nested inside an inner model."""
    from convlens.keras_models import keras

    conv = keras.layers.Conv2D(2, 3, name="conv2d")
    top = keras.Sequential([keras.Input((28, 28, 1)), conv, keras.layers.Lambda(lambda x: x * 2, name="evil")])
    inner = keras.Sequential([keras.layers.Lambda(lambda x: x + 1, name="hidden_evil")], name="inner")
    nested = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(2, 3, name="conv2d"), inner])
    return {"evil": _save(top, tmp_path / "lambda.keras"), "hidden_evil": _save(nested, tmp_path / "nested.keras")}


def test_models_with_lambda_code_are_refused_as_keras_safe_mode_would(project, stage_config, tmp_path):
    from convlens.keras_models import keras

    for name, path in _lambda_models(tmp_path).items():
        with pytest.raises((ValueError, TypeError)):
            keras.models.load_model(path, compile=False, safe_mode=True)  # Keras's own safe mode refuses too
        with pytest.raises(ConvlensError) as err:
            fetch_model.run(stage_config("fetch_model", f"model.path={path}"), project)
        assert f"contains Lambda layers or Python lambdas ({name}) that would run arbitrary code; refused" in one_line(
            err
        )
    assert not (project / "outputs" / "models").exists() or not list((project / "outputs" / "models").iterdir())


def test_serialized_lambdas_anywhere_in_the_config_are_found():
    dense = {
        "class_name": "Dense",
        "config": {"name": "dense", "activation": {"class_name": "__lambda__", "config": {"value": ["4wE"]}}},
    }
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [dense]}}
    assert unsafe_places(config) == ["dense.activation"]
    with pytest.raises(ConvlensError, match=r"\(dense.activation\)"):
        check_model_config(config, "m.keras")


def test_model_refusals_from_the_command_line(project, tiny_assets, tmp_path):
    from convlens.keras_models import keras

    junk = tmp_path / "page.keras"
    junk.write_text("<html><body>404 Not Found</body></html>", encoding="utf-8")
    dense_only = _save(
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


def test_input_shape_is_read_from_the_archive_without_tensorflow(tiny_assets, tmp_path):
    from convlens.keras_models import keras

    assert input_shape(read_config(tiny_assets["model"])) == (28, 28, 1)
    assert check_input_shape(read_config(tiny_assets["model"]), (28, 28), "tiny.keras") == (28, 28, 1)
    x = keras.Input((32, 32, 3))
    functional = _save(keras.Model(x, keras.layers.Conv2D(2, 3, name="conv2d")(x)), tmp_path / "f.keras")
    assert input_shape(read_config(functional)) == (32, 32, 3)
    x = keras.Input((None, None, 1))
    any_size = _save(keras.Model(x, keras.layers.Conv2D(2, 3, name="conv2d")(x)), tmp_path / "any.keras")
    assert check_input_shape(read_config(any_size), (28, 28), "any.keras") == (None, None, 1)


@pytest.mark.parametrize(
    ("layers", "sample", "message"),
    [
        (
            [{"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [None, 32, 32, 3]}}],
            (28, 28),
            "m.keras expects inputs of shape 32×32×3 but the data's samples are 28×28×1; "
            "use a model built for this data (keras.Input((28, 28, 1)))",
        ),
        (
            [{"class_name": "Conv2D", "config": {"name": "c", "batch_input_shape": [None, 28, 28, 3]}}],
            (28, 28),
            "expects inputs of shape 28×28×3",
        ),
        (
            [{"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [None, 784]}}],
            (28, 28),
            "expects inputs of shape 784 but the data's samples are 28×28×1",
        ),
        ([{"class_name": "Conv2D", "config": {"name": "c"}}], (28, 28), "does not say its input shape"),
    ],
    ids=["rgb-32", "keras2-first-layer", "flat-784", "no-shape"],
)
def test_a_model_input_that_does_not_fit_the_data_is_refused(layers, sample, message):
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": layers}}
    with pytest.raises(ConvlensError) as err:
        check_input_shape(config, sample, "m.keras")
    assert message in one_line(err)


def _hostile_models(tiny_assets: dict, tmp_path: Path) -> dict[str, Path]:
    """Issue 9 §2: a file read through external storage, os.system as an activation, a 5×5 kernel under a
    3×3 config, a config that is a JSON list, and a 64 MiB config.json deflated to kilobytes."""
    from tests.test_archive import _external_storage, _replace_kernel, _rewrite, _set_activation, _tiny_config

    secret = tmp_path / "passwd"
    secret.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n" * 8)
    src = tiny_assets["model"]
    bomb = _rewrite(src, tmp_path / "bomb.keras", raw_config=b" " * (64 << 20))
    return {
        "external": _rewrite(src, tmp_path / "external.keras", h5_edit=_external_storage(secret)),
        "os-system": _rewrite(
            src,
            tmp_path / "system.keras",
            config=_set_activation(_tiny_config(tiny_assets), {"module": "os", "class_name": "system", "config": {}}),
        ),
        "kernel-5x5": _rewrite(src, tmp_path / "k5.keras", h5_edit=_replace_kernel(data=np.zeros((5, 5, 1, 4), "f4"))),
        "list-config": _rewrite(src, tmp_path / "list.keras", raw_config=b"[]"),
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
    from tests.test_archive import _rewrite, _tiny_config

    fetch_model.run(stage_config("fetch_model"), project)
    config = _tiny_config(tiny_assets)
    config["config"]["layers"][1]["config"]["padding"] = "sideways"
    trained = project / "outputs" / "models" / "trained.keras"
    _rewrite(tiny_assets["model"], trained, config=config)
    with pytest.raises(ConvlensError) as err:
        build_untrained.run(stage_config("build_untrained"), project)
    assert one_line(err).startswith(
        f"{trained}: Keras cannot load this model (Conv2D could not be deserialized: The `padding` argument must be"
    )
    assert one_line(err).endswith("Received: sideways)")
    assert not (project / "outputs" / "models" / "untrained.keras").exists()


# --- Config -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "override", "message"),
    [
        (extract_weights, "weights.layers=[conv9]", "unknown layer 'conv9'; this model has 0:conv2d, 1:max_pooling2d"),
        (extract_weights, "weights.layers=[6]", "layer index 6 is out of range 0..5; this model has 0:conv2d"),
        (extract_weights, "weights.layers=[-1]", "weights.layers[0] must be a layer index ≥ 0 or a layer name, got -1"),
        (
            extract_weights,
            "weights.layers=[1.5]",
            "weights.layers[0] must be a layer name (letters, digits, _ . -), outer/inner for a nested model's layer, "
            "or an index ≥ 0, got 1.5",
        ),
        (extract_weights, "weights.layers=[]", "weights.layers must be a list of at least 1, got"),
        (
            extract_weights,
            "weights.percentiles=[50,101]",
            "weights.percentiles[1] must be a finite number in 0..100, got 101",
        ),
        (
            extract_weights,
            "weights.percentiles=[-5]",
            "weights.percentiles[0] must be a finite number in 0..100, got -5",
        ),
        (
            extract_weights,
            "weights.percentiles=[median]",
            "weights.percentiles[0] must be a finite number in 0..100, got 'median'",
        ),
        (build_untrained, "untrained.seed=-1", "untrained.seed must be an integer in 0..4294967295, got -1"),
        (build_untrained, "untrained.seed=1.5", "untrained.seed must be an integer in 0..4294967295, got 1.5"),
        (build_untrained, "untrained.seed=abc", "got 'abc'"),
        (build_untrained, "weights.layers=[conv9]", "unknown layer 'conv9'"),
    ],
)
def test_bad_values_fail_before_anything_is_written(project, stage_config, module, override, message):
    fetch_model.run(stage_config("fetch_model"), project)
    extract_weights.run(stage_config("extract_weights"), project)
    before = snapshot(project / "outputs")
    with pytest.raises(ConvlensError) as err:
        module.run(stage_config(module.__name__.rsplit(".", 1)[1], override), project)
    assert message in one_line(err)
    assert snapshot(project / "outputs") == before and not hidden(project / "outputs")


def test_config_errors_from_the_command_line(project, tiny_assets):
    assert error_line(cli(project, "fetch_model", "model=foo"), "fetch_model") == (
        "fetch_model: error: bad config override: In 'config': Could not find 'model/foo'. "
        "Available options in 'model': book, local"
    )
    assert error_line(cli(project, "params", "foo=1"), "params") == (
        "params: error: bad config override: Could not override 'foo'. It is not a key of conf/; "
        "params.yaml lists the keys"
    )
    assert error_line(cli(project, "samples", "foo=1"), "samples") == (
        "samples: error: samples does not read foo (it reads samples); "
        "set it with dvc exp run -S 'foo=…', which reruns every stage that reads it"
    )
    assert error_line(cli(project, "build_untrained", "untrained.seed=-3"), "build_untrained") == (
        "build_untrained: error: untrained.seed must be an integer in 0..4294967295, got -3; e.g. untrained.seed=42"
    )
    assert not (project / "outputs").exists()


# --- Faults: disk full, not writable, killed mid-write ----------------------------------------------


def _good_weights(project, stage_config) -> dict[str, bytes]:
    fetch_model.run(stage_config("fetch_model"), project)
    extract_weights.run(stage_config("extract_weights"), project)
    return snapshot(project / "outputs")


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_while_saving_weights_is_one_line_and_keeps_the_oldweight_outputs(project, stage_config, monkeypatch):
    before = _good_weights(project, stage_config)
    monkeypatch.setattr(np, "save", _enospc)
    with pytest.raises(ConvlensError) as err:
        extract_weights.run(stage_config("extract_weights", "weights.percentiles=[50]"), project)
    assert one_line(err) == (
        f"cannot write {project / 'outputs' / 'weights' / 'trained'}: No space left on device; "
        "check free space and permissions"
    )
    assert snapshot(project / "outputs") == before and not hidden(project / "outputs")


def test_disk_full_at_the_final_rename_keeps_the_old_file(project, stage_config, monkeypatch):
    before = _good_weights(project, stage_config)
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst).name == "weights_trained.json":
            _enospc()
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(ConvlensError, match=r"cannot write .*weights_trained\.json: No space left on device"):
        extract_weights.run(stage_config("extract_weights", "weights.percentiles=[50]"), project)
    after = snapshot(project / "outputs")
    assert after["metrics/weights_trained.json"] == before["metrics/weights_trained.json"]
    assert not hidden(project / "outputs")


def test_an_output_dir_that_is_not_writable_is_one_line(project, stage_config, monkeypatch):
    before = _good_weights(project, stage_config)

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr("tempfile.mkdtemp", denied)  # what a read-only dir does (chmod does not stop root)
    with pytest.raises(ConvlensError) as err:
        extract_weights.run(stage_config("extract_weights"), project)
    assert one_line(err) == (
        f"cannot write {project / 'outputs' / 'weights' / 'trained'}: Permission denied; "
        "check free space and permissions"
    )
    assert snapshot(project / "outputs") == before and not hidden(project / "outputs")


def test_an_output_path_blocked_by_a_file_is_one_line(project, stage_config):
    fetch_model.run(stage_config("fetch_model"), project)
    (project / "outputs" / "weights").write_text("not a directory", encoding="utf-8")  # a real OS error, even as root
    with pytest.raises(ConvlensError) as err:
        extract_weights.run(stage_config("extract_weights"), project)
    assert one_line(err) == (
        f"cannot write {project / 'outputs' / 'weights' / 'trained'}: {project / 'outputs' / 'weights'} is a file "
        "where a directory must be; remove it"
    )


def test_a_failing_block_leaves_the_old_dir_and_no_temp(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "a.npy").write_bytes(b"old")
    with pytest.raises(ZeroDivisionError), staged_dir(target) as tmp:
        (tmp / "a.npy").write_bytes(b"new")
        _ = 1 / 0
    assert snapshot(target) == {"a.npy": b"old"} and [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.parametrize("dvc_repo", [True, False], ids=["scratch-dir", "beside-the-output"])
def test_a_failing_final_rename_of_the_new_dir_puts_the_old_dir_back(tmp_path, monkeypatch, dvc_repo):
    """The old dir is moved aside before the new one is renamed in; if that rename fails, the old one returns."""
    if dvc_repo:
        (tmp_path / ".dvc").mkdir()
    target = tmp_path / "outputs" / "out"
    (target / "sub").mkdir(parents=True)
    (target / "a.npy").write_bytes(b"old a")
    (target / "sub" / "b.csv").write_bytes(b"old b")
    before = snapshot(target)
    real_replace, failed = os.replace, []

    def replace(src, dst):
        if Path(dst) == target and Path(src).name.startswith("out.") and ".old." not in str(src):
            failed.append(src)
            _enospc()  # the new dir's rename onto the output
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(ConvlensError) as err, staged_dir(target) as tmp:
        (tmp / "a.npy").write_bytes(b"new a")
        (tmp / "c.npy").write_bytes(b"new c")
    assert len(failed) == 1 and snapshot(target) == before  # the old dir is back, complete and unchanged
    assert sorted(p.name for p in target.iterdir()) == ["a.npy", "sub"]
    assert one_line(err) == f"cannot write {target}: No space left on device; check free space and permissions"
    assert [p.name for p in (tmp_path / "outputs").iterdir()] == ["out"] and not hidden(tmp_path / "outputs")
    if dvc_repo:
        assert not list((tmp_path / SCRATCH).iterdir())


def test_staging_happens_in_the_dvc_repos_scratch_dir_and_leaves_nothing(tmp_path):
    (tmp_path / ".dvc").mkdir()
    target = tmp_path / "outputs" / "out"
    with staged_dir(target) as tmp:
        assert tmp.is_relative_to(tmp_path / SCRATCH) and not hidden(tmp_path / "outputs")
        write_json(tmp / "x.json", [1])  # a file of a staged dir is written inside it
        with atomic_path(tmp_path / "outputs" / "summary.json") as file:
            assert file.parent == tmp.parent and file.suffix == ".json"
            file.write_text("{}", encoding="utf-8")
    assert snapshot(tmp_path / "outputs") == {"out/x.json": b"[\n  1\n]\n", "summary.json": b"{}"}
    assert not hidden(tmp_path / "outputs") and not list((tmp_path / SCRATCH).iterdir())


def test_the_scratch_dir_is_the_nearest_dvc_repos_on_the_same_file_system(tmp_path, tmp_path_factory, monkeypatch):
    workspace = tmp_path / ".dvc" / "tmp" / "exps" / "run" / "ws"  # a queued experiment: its own .dvc
    (workspace / ".dvc").mkdir(parents=True)
    (workspace / "outputs").mkdir()
    assert scratch_dir(workspace / "outputs") == workspace / SCRATCH
    (tmp_path / "plain").mkdir()
    assert scratch_dir(tmp_path / "plain") == tmp_path / SCRATCH
    outside = tmp_path_factory.mktemp("outside")  # no .dvc above it: staged beside the output
    assert scratch_dir(outside) == outside

    real_stat = os.stat

    def other_device(path, *args, **kwargs):  # .dvc/tmp on another file system: a rename could not cross
        st = real_stat(path, *args, **kwargs)
        return os.stat_result((*st[:2], st.st_dev + 1, *st[3:])) if str(path).endswith("convlens") else st

    monkeypatch.setattr(os, "stat", other_device)
    assert scratch_dir(workspace / "outputs") == workspace / "outputs"


def test_the_next_write_removes_a_killed_process_area_but_not_a_live_one(tmp_path, caplog):
    (tmp_path / ".dvc").mkdir()
    scratch = tmp_path / SCRATCH
    dead, live = scratch / ".convlens-tmp.1.k1ll3d_x", scratch / ".convlens-tmp.2.l1ve_abc"
    for area in (dead, live):
        (area / "out.x").mkdir(parents=True)
        (area / "owner").touch()
    (scratch / ".convlens-tmp.3.n0_0wner").mkdir()  # killed between creating its area and locking it
    fd = os.open(live / "owner", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # what the live process holds while it stages
    try:
        with caplog.at_level(logging.INFO):
            write_json(tmp_path / "outputs" / "summary.json", {})
    finally:
        os.close(fd)
    assert [p.name for p in scratch.iterdir()] == [live.name]
    assert f"removing {dead}, left by an interrupted run" in caplog.text


def test_leftovers_of_an_older_convlens_beside_the_output_are_removed_by_the_next_write(tmp_path):
    """convlens before issue 9 staged beside the output under hidden names; the next write still removes them."""
    (tmp_path / ".out.k1ll3d_x").mkdir()  # names tempfile gives: 8 chars of [a-z0-9_]
    (tmp_path / ".out.k1ll3d_x" / "half.npy").write_bytes(b"half")
    (tmp_path / ".summary.abcd1234.json").write_text("{", encoding="utf-8")
    (tmp_path / ".out.keep").mkdir()  # not a temp name: left alone
    with staged_dir(tmp_path / "out") as tmp:
        write_json(tmp / "x.json", [1])
    write_json(tmp_path / "summary.json", {})
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".convlens")) == [
        ".out.keep",
        "out",
        "summary.json",
    ]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".convlens")]


STATES = {"o": "old", "n": "new", "-": None}


@pytest.mark.parametrize(
    ("kill_at", "states", "in_dvc_repo"),
    [
        ("save:1", "oooo", True),
        ("replace:2", "-ooo", True),
        ("replace:4", "n-oo", True),
        ("replace:6", "nnno", True),
        ("replace:2", "-ooo", False),
    ],
    ids=["mid-array", "old-dir-moved-aside", "between-outputs", "before-last-file", "outside-a-dvc-repo"],
)
def test_sigkill_mid_write_leaves_each_output_old_new_or_absent_and_the_rerun_equals_a_clean_run(
    project, stage_config, tiny_assets, tmp_path, kill_at, states, in_dvc_repo
):
    """extract_weights writes, in order: weights/trained (staged), metrics/filters/trained (staged), the CSV,
    the JSON. Killed anywhere, each output is whole (old or new) or absent, nothing is left under outputs/
    (in a DVC repo the staging area is .dvc/tmp/convlens), and a rerun makes a clean run's bytes."""
    if in_dvc_repo:
        (project / ".dvc").mkdir()
    _good_weights(project, stage_config)
    old = weight_outputs(project)
    clean = copy_project(tmp_path / "clean")
    fetch_model.run(stage_config("fetch_model"), clean)
    extract_weights.run(stage_config("extract_weights", "weights.layers=[conv2d]"), clean)
    new = weight_outputs(clean)
    assert all(old[name] != new[name] for name in WEIGHT_OUTPUTS)
    args = ["weights.layers=[conv2d]"]

    killed = cli(project, "extract_weights", *args, env=kill_shim_env(kill_at))
    assert killed.returncode == -9, killed.stderr
    after = weight_outputs(project)
    versions = {"old": old, "new": new, None: dict.fromkeys(WEIGHT_OUTPUTS)}
    assert after == {name: versions[STATES[s]][name] for name, s in zip(WEIGHT_OUTPUTS, states, strict=True)}
    areas = staging_areas(project)
    assert areas and all(AREA.fullmatch(p.name) for p in areas)
    assert bool(hidden(project / "outputs")) is not in_dvc_repo

    rerun = cli(project, "extract_weights", *args)
    assert rerun.returncode == 0, rerun.stderr
    assert all(f"removing {area}, left by an interrupted run" in rerun.stdout for area in areas)
    assert weight_outputs(project) == new
    assert not hidden(project / "outputs") and not staging_areas(project)


# --- Numbers ----------------------------------------------------------------------------------------


def test_nan_and_inf_weights_are_counted_not_averaged_in(project, stage_config, tmp_path):
    model = tiny_model()
    kernel, bias = model.get_layer("conv2d").get_weights()
    kernel[0, 0, 0, 0], kernel[1, 1, 0, 1], kernel[2, 2, 0, 2] = np.nan, np.inf, -np.inf
    kernel[..., 3] = np.nan  # one filter with no finite weight at all
    model.get_layer("conv2d").set_weights([kernel, bias])
    path = _save(model, tmp_path / "nan.keras")
    fetch_model.run(stage_config("fetch_model", f"model.path={path}"), project)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        extract_weights.run(stage_config("extract_weights"), project)
        stats = json.loads((project / "outputs" / "metrics" / "weights_trained.json").read_text(encoding="utf-8"))[
            "trained"
        ]["conv2d"]
        finite = kernel[np.isfinite(kernel)]
        assert stats["nan"] == 10 and stats["inf"] == 2
        assert stats["mean"] == float(str(finite.mean())) and stats["max"] == float(str(finite.max()))
        assert all(np.isfinite(v) for k, v in stats.items() if k not in ("shape",))
        rows = (
            (project / "outputs" / "metrics" / "filters" / "trained" / "conv2d.csv")
            .read_text(encoding="utf-8")
            .splitlines()
        )
        assert rows[4] == "3,0.0,,,0.0"  # the all-NaN filter: mean and std left empty, no number made up
        assert "inf" not in "".join(rows[1:4])
        image, _ = filter_grid(kernel, "first", 16, -0.5, 0.5)
    assert np.isfinite(image[~np.isnan(image)]).all()


def test_nonfinite_filter_stats_without_warnings():
    kernel = np.ones((3, 3, 1, 3), np.float32)
    kernel[..., 1] = np.nan
    kernel[0, 0, 0, 2] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = filter_stats(kernel, None)
        stats = kernel_stats(kernel, [50])
    np.testing.assert_allclose(out["mean"][[0, 2]], [1.0, 1.0])
    np.testing.assert_allclose(out["l2_norm"][[0, 2]], [3.0, np.sqrt(8)])
    assert np.isnan(out["mean"][1]) and np.isnan(out["std"][1])
    assert stats["nan"] == 9 and stats["inf"] == 1 and stats["mean"] == 1.0


def test_dead_feature_maps_render_without_warnings_and_are_counted(tmp_path):
    from convlens.figures import mosaic_figure

    maps = np.zeros((1, 14, 14, 8), np.float32)
    maps[0, 3, 3, :2] = 1.5  # two live channels, six dead (all zero)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image, grid = feature_map_grid(maps[0], None)
        mosaic_figure(image, tmp_path / "maps.png", "viridis", "dead maps", 1.5, grid, 50)
        summary = layer_summary(channel_stats(maps))
    assert (tmp_path / "maps.png").stat().st_size > 0
    assert summary["dead_channels"] == 6 and summary["channels"] == 8
    assert np.nanmax(image) == 1.0 and np.nanmin(image) == 0.0
