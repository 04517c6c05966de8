import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convlens.errors import ConvlensError
from convlens.model import archive
from convlens.model.allowlist import foreign_places, unsafe_places
from convlens.model.archive import Archive, read_config
from convlens.model.layers import (
    MAX_LAYERS,
    LayerInfo,
    check_input_shape,
    check_model_config,
    input_shape,
    layer_count,
    layer_infos,
    resolve_layers,
)
from convlens.model.weights_file import WEIGHTS_CAP, declared_size_problem
from stages import build_untrained, extract_weights, fetch_model
from tests.support.helpers import cli, error_line, one_line

LAYERS = [
    LayerInfo(0, "conv2d", "Conv2D"),
    LayerInfo(1, "max_pooling2d", "MaxPooling2D"),
    LayerInfo(2, "conv2d_1", "Conv2D"),
    LayerInfo(3, "dense", "Dense"),
]


def test_archive_layers_match_keras_model_layers(tiny_assets):
    from convlens.model.keras_models import load_model
    from tests.support.keras_reference import model_layers

    config = read_config(tiny_assets["model"])
    assert layer_infos(config) == model_layers(load_model(tiny_assets["model"]))


def test_read_weights_without_tensorflow_equals_keras(tiny_assets):
    from convlens.model.keras_models import load_model

    model = load_model(tiny_assets["model"])
    weights = Archive.read(tiny_assets["model"]).weights(["conv2d", "conv2d_1", "dense"])
    for name, arrays in weights.items():
        expected = model.get_layer(name).get_weights()
        assert len(arrays) == len(expected) == 2
        for got, want in zip(arrays, expected, strict=True):
            np.testing.assert_array_equal(got, want)


def test_resolve_layers_by_name_index_and_default():
    assert resolve_layers(None, LAYERS, ("Conv2D",)) == ["conv2d", "conv2d_1"]
    assert resolve_layers(["conv2d_1", 0], LAYERS, ("Conv2D",)) == ["conv2d_1", "conv2d"]
    assert resolve_layers([1], LAYERS, ("Conv2D",)) == ["max_pooling2d"]
    with pytest.raises(ConvlensError) as err:  # before: silently merged
        resolve_layers(["conv2d_1", 0, "conv2d"], LAYERS, ("Conv2D",), "weights.layers")
    assert str(err.value) == "weights.layers names layer 'conv2d' twice (as 'conv2d' and another entry); list it once"


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["conv9"], "unknown layer 'conv9'; this model has 0:conv2d, 1:max_pooling2d, 2:conv2d_1, 3:dense"),
        ([7], "layer index 7 is out of range 0..3"),
        ([-1], "out of range"),
        ([], "the layer list is empty"),
        ([1.5], "neither a name nor an index"),
        ([True], "neither a name nor an index"),
    ],
)
def test_resolve_layers_errors_list_the_models_layers(specs, message):
    with pytest.raises(ConvlensError, match=message.replace("(", r"\(").replace(".", r"\.")):
        resolve_layers(specs, LAYERS, ("Conv2D",))


def _archive(path, layers):
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": layers}}
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", b"")
        z.writestr("metadata.json", "{}")
    return path


def _layer(kind, name):
    return {"class_name": kind, "config": {"name": name}}


def test_lambda_layers_are_refused(tmp_path):
    path = _archive(tmp_path / "m.keras", [_layer("Conv2D", "conv2d"), _layer("Lambda", "evil")])
    with pytest.raises(ConvlensError, match=r"Lambda layers or Python lambdas \(evil\).*refused"):
        check_model_config(read_config(path), str(path))


def test_models_without_conv2d_are_refused(tmp_path):
    path = _archive(tmp_path / "m.keras", [_layer("Dense", "dense")])
    with pytest.raises(ConvlensError) as err:
        check_model_config(read_config(path), str(path))
    assert str(err.value) == (
        f"{path} has no convolutional layer (layers: dense (Dense)); "
        "convlens needs a model with a Conv2D, DepthwiseConv2D or SeparableConv2D layer"
    )


def test_files_that_are_not_keras_archives_are_refused(tmp_path):
    html = tmp_path / "model.keras"
    html.write_text("<html>Not Found</html>", encoding="utf-8")
    with pytest.raises(ConvlensError, match="is not a Keras .keras archive"):
        read_config(html)
    other = tmp_path / "other.keras"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("readme.txt", "hi")
    with pytest.raises(ConvlensError, match="not a Keras archive"):
        read_config(other)


def test_unreadable_weights_are_refused(tmp_path):
    path = _archive(tmp_path / "m.keras", [_layer("Conv2D", "conv2d")])
    with pytest.raises(ConvlensError, match="model.weights.h5 is unreadable"):
        Archive.read(path).weights(["conv2d"])


def test_write_reproducible_drops_save_dates(tmp_path):
    from convlens.model.archive import write_reproducible

    copies = []
    for i, (stamp, when) in enumerate(
        [("2024-01-01@00:00:00", (2024, 1, 1, 0, 0, 0)), ("2026-11-25@22:50:18", (2026, 11, 25, 22, 50, 18))]
    ):
        src = tmp_path / f"src{i}.keras"
        with zipfile.ZipFile(src, "w") as z:
            z.writestr(zipfile.ZipInfo("metadata.json", when), json.dumps({"keras_version": "3", "date_saved": stamp}))
            z.writestr(zipfile.ZipInfo("model.weights.h5", when), b"weights")
        write_reproducible(src, tmp_path / f"out{i}.keras")
        copies.append((tmp_path / f"out{i}.keras").read_bytes())
    assert copies[0] == copies[1]
    with zipfile.ZipFile(tmp_path / "out0.keras") as z:
        assert json.loads(z.read("metadata.json")) == {"keras_version": "3"}
        assert z.read("model.weights.h5") == b"weights"


# --- hostile archives (issue 9 §2): built from the tiny Keras model, one part made hostile ---------------


def _tiny_config(tiny_assets) -> dict:
    with zipfile.ZipFile(tiny_assets["model"]) as z:
        return json.loads(z.read("config.json"))


def _rewrite(src, dst, config=None, raw_config: bytes | None = None, h5_edit=None):
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


def _check(path):
    """What fetch_model checks: the config, then the weights file."""
    archive = Archive.read(path)
    return archive.weights([layer.name for layer in archive.layers if layer.kind == "Conv2D"])


KERNEL = "layers/conv2d/vars/0"  # the tiny model's first kernel, (3, 3, 1, 4) float32


def _replace_kernel(**dataset_args):
    def edit(h5):
        del h5[KERNEL]
        h5.create_dataset(KERNEL, **dataset_args)

    return edit


def _external_storage(secret):
    return _replace_kernel(shape=(3, 3, 1, 4), dtype="f4", external=[(str(secret), 0, 144)])


def _external_link(other):
    def edit(h5):
        del h5[KERNEL]
        h5[KERNEL] = __import__("h5py").ExternalLink(str(other), "/data")

    return edit


def _soft_link(h5):
    del h5[KERNEL]
    h5[KERNEL] = __import__("h5py").SoftLink("/layers/conv2d_1/vars/1")


def _virtual(other):
    def edit(h5):
        import h5py

        layout = h5py.VirtualLayout((3, 3, 1, 4), "f4")
        layout[...] = h5py.VirtualSource(str(other), "data", shape=(3, 3, 1, 4))
        del h5[KERNEL]
        h5.create_virtual_dataset(KERNEL, layout)

    return edit


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("external-storage", "model.weights.h5 keeps layers/conv2d/vars/0 in the external file {secret}; refused"),
        ("external-link", "model.weights.h5 links layers/conv2d/vars/0 to {other}:/data (an external link); refused"),
        ("soft-link", "links layers/conv2d/vars/0 to /layers/conv2d_1/vars/1 (a soft link); refused"),
        ("virtual", "holds layers/conv2d/vars/0 as a virtual dataset (data read from other files); refused"),
        ("strings", "holds layers/conv2d/vars/0 as |S3, not numbers; refused"),
    ],
)
def test_weights_that_point_outside_the_file_are_refused(tiny_assets, tmp_path, case, message):
    import h5py

    secret = tmp_path / "passwd"
    secret.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n" * 8)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as h5:
        h5["data"] = np.ones((3, 3, 1, 4), "f4")
    edit = {
        "external-storage": _external_storage(secret),
        "external-link": _external_link(other),
        "soft-link": _soft_link,
        "virtual": _virtual(other),
        "strings": _replace_kernel(data=np.full((3, 3, 1, 4), b"abc")),
    }[case]
    path = _rewrite(tiny_assets["model"], tmp_path / "m.keras", h5_edit=edit)
    for reader in (_check, lambda p: Archive.read(p).weights(["conv2d_1"])):  # any read refuses, not only the layer's
        with pytest.raises(ConvlensError) as err:
            reader(path)
        assert message.format(secret=secret, other=other) in str(err.value)
        assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            _replace_kernel(data=np.zeros((5, 5, 1, 4), "f4")),
            "layer 'conv2d' stores its kernel as (5, 5, 1, 4) but its config says (3, 3, 1, 4); "
            "the weights do not fit the architecture",
        ),
        (
            _replace_kernel(data=np.zeros((3, 3, 2, 4), "f4")),
            "layer 'conv2d' stores its kernel as (3, 3, 2, 4) but its config says (3, 3, 1, 4)",
        ),
        (
            lambda h5: (h5.__delitem__("layers/conv2d/vars/1"), h5.create_dataset("layers/conv2d/vars/1", data=[0.0])),
            "layer 'conv2d' stores its bias as (1,) but its config says (4,)",
        ),
        (
            lambda h5: h5.create_dataset("layers/dense/vars/2", data=[0.0]),
            "layer 'dense' stores 3 variables but its config says 2",
        ),
        (
            lambda h5: (
                h5.__delitem__("layers/dense/vars/0"),
                h5.create_dataset("layers/dense/vars/0", data=np.zeros((9, 10))),
            ),
            "layer 'dense' stores its kernel as (9, 10) but its config says (392, 10)",
        ),
        (lambda h5: h5.__delitem__("layers/conv2d_1"), "no weights stored for layer 'conv2d_1'"),
    ],
    ids=["kernel-5x5", "input-channels", "bias", "extra-variable", "dense-kernel", "missing-layer"],
)
def test_stored_shapes_must_match_the_config(tiny_assets, tmp_path, edit, message):
    path = _rewrite(tiny_assets["model"], tmp_path / "m.keras", h5_edit=edit)
    with pytest.raises(ConvlensError, match=re.escape(message)):
        _check(path)
    with pytest.raises(ConvlensError, match=re.escape(message)):
        Archive.read(path).weights(["conv2d_1"])  # extract_weights and build_untrained's reads refuse it too


def test_batch_normalization_shapes_are_checked(tmp_path):
    from convlens.model.keras_models import keras

    model = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3, name="conv2d"), keras.layers.BatchNormalization(name="bn")]
    )
    model.save(tmp_path / "bn.keras")
    assert _check(tmp_path / "bn.keras")["conv2d"][0].shape == (3, 3, 3, 2)

    def edit(h5):
        del h5["layers/batch_normalization/vars/2"]
        h5["layers/batch_normalization/vars/2"] = np.zeros(3, "f4")

    bad = _rewrite(tmp_path / "bn.keras", tmp_path / "bad.keras", h5_edit=edit)
    with pytest.raises(
        ConvlensError, match=re.escape("layer 'bn' stores its moving_mean as (3,) but its config says (2,)")
    ):
        _check(bad)


def _set_activation(config, value):
    config["config"]["layers"][1]["config"]["activation"] = value
    return config


FOREIGN = {
    "module-os": (
        lambda c: _set_activation(c, {"module": "os", "class_name": "system", "config": {}, "registered_name": None}),
        "layer 'conv2d' uses os.system, which is not a Keras built-in",
    ),
    "activation-string": (
        lambda c: _set_activation(c, "os.system"),
        "layer 'conv2d' uses activation 'os.system', which is not a Keras built-in",
    ),
    "builtins-function": (
        lambda c: _set_activation(c, {"module": "builtins", "class_name": "function", "config": "eval"}),
        "layer 'conv2d' uses function builtins.eval, which is not a Keras built-in",
    ),
    "non-modeling-api": (
        lambda c: _set_activation(
            c, {"module": "keras.config", "class_name": "function", "config": "enable_unsafe_deserialization"}
        ),
        "uses function keras.config.enable_unsafe_deserialization, which is not a Keras built-in",
    ),
    "registered-function": (
        lambda c: _set_activation(
            c, {"module": "keras.activations", "class_name": "function", "config": "relu", "registered_name": "x>relu"}
        ),
        "layer 'conv2d' uses function keras.activations.relu, which is not a Keras built-in",
    ),
    "registered-custom": (
        lambda c: _set_activation(
            c, {"module": "keras.layers", "class_name": "ReLU", "config": {}, "registered_name": "evil>ReLU"}
        ),
        "layer 'conv2d' uses keras.layers.ReLU registered as 'evil>ReLU' (a custom object), which is not a Keras",
    ),
    "keras-function-as-class": (
        lambda c: _set_activation(c, {"module": "keras.models", "class_name": "load_model", "config": {}}),
        "uses keras.models.load_model, which is not a Keras built-in",
    ),
    "typespec": (
        lambda c: _set_activation(c, {"module": "keras", "class_name": "__typespec__", "config": [], "spec_name": "X"}),
        "uses keras.__typespec__, which is not a Keras built-in",
    ),
    "custom-layer": (
        lambda c: (
            c["config"]["layers"].append(
                {
                    "module": "my_package.layers",
                    "class_name": "Evil",
                    "config": {"name": "evil"},
                    "registered_name": "Evil",
                }
            )
            or c
        ),
        "layer 'evil' uses my_package.layers.Evil, which is not a Keras built-in",
    ),
    "initializer-string": (
        lambda c: c["config"]["layers"][1]["config"].update(kernel_initializer="subprocess.call") or c,
        "layer 'conv2d' uses initializer 'subprocess.call', which is not a Keras built-in",
    ),
    "not-a-layer": (
        lambda c: (
            c["config"]["layers"].append(
                {"module": "keras.initializers", "class_name": "Zeros", "config": {"name": "z"}}
            )
            or c
        ),
        "layer 'z' uses keras.initializers.Zeros as a layer, which is not a Keras built-in",
    ),
    "tfsm-layer": (
        lambda c: (
            c["config"]["layers"].append(
                {"module": "keras.layers", "class_name": "TFSMLayer", "config": {"name": "saved", "filepath": "/tmp/x"}}
            )
            or c
        ),
        "layer 'saved' uses a TFSMLayer, which loads a TensorFlow SavedModel from outside the archive; refused",
    ),
}


@pytest.mark.parametrize("case", FOREIGN)
def test_anything_not_a_keras_builtin_is_refused(tiny_assets, tmp_path, case):
    mutate, message = FOREIGN[case]
    path = _rewrite(tiny_assets["model"], tmp_path / "m.keras", config=mutate(_tiny_config(tiny_assets)))
    with pytest.raises(ConvlensError) as err:
        check_model_config(read_config(path), str(path))
    assert message in str(err.value) and str(err.value).startswith(f"{path}: ")
    assert "rebuild the model from built-in keras.layers" in str(err.value) and "\n" not in str(err.value)


def test_a_keras_function_object_is_a_builtin(tiny_assets):
    for registered in (None, "relu"):
        relu = {
            "module": "keras.activations",
            "class_name": "function",
            "config": "relu",
            "registered_name": registered,
        }
        assert foreign_places(_set_activation(_tiny_config(tiny_assets), relu)) == []


def test_keras_builtins_in_real_configs_pass(tmp_path):
    """Every kind of object Keras writes for models convlens reads: functional graphs, nested models,
    BatchNormalization, regularizers, constraints, activation layers, and the optimizer of a compiled model."""
    from convlens.model.keras_models import keras

    layers = keras.layers
    inputs = keras.Input((28, 28, 1))
    x = layers.Conv2D(4, 3, kernel_regularizer=keras.regularizers.L2(0.1), kernel_constraint="max_norm")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Add()([x, layers.Conv2D(4, 3, padding="same", activation="gelu")(x)])
    x = layers.LeakyReLU()(layers.Rescaling(0.5)(x))
    inner = keras.Sequential([layers.Conv2D(2, 3, name="inner_conv")], name="inner")
    x = layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling2D()(inner(x)))
    model = keras.Model(inputs, x)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.save(tmp_path / "f.keras")
    assert [layer.kind for layer in check_model_config(read_config(tmp_path / "f.keras"), "f")][:2] == [
        "Conv2D",
        "BatchNormalization",
    ]
    _check(tmp_path / "f.keras")


def test_oversized_members_are_refused_before_they_are_inflated(tmp_path):
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open("config.json", "w", force_zip64=True) as member:
            chunk = b" " * (1 << 20)
            for _ in range(64):
                member.write(chunk)
        z.writestr("model.weights.h5", b"")
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(ConvlensError) as err:
        read_config(bomb)
    assert str(err.value) == (
        f"{bomb}: config.json is 64 MiB uncompressed, over the 16 MiB limit (a zip bomb?); "
        "refused: save the model with model.save('name.keras')"
    )


def test_a_size_header_that_lies_never_inflates_past_it(tiny_assets, tmp_path):
    """A deflate stream longer than its header's size: zipfile stops at the stated size (and the CRC fails)."""
    path = _rewrite(tiny_assets["model"], tmp_path / "m.keras", raw_config=b" " * (4 << 20) + b"{}")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        local = z.getinfo("config.json").header_offset
    central = next(
        at
        for at in range(len(data) - 4)
        if data[at : at + 4] == b"PK\x01\x02" and data[at + 46 : at + 46 + 11] == b"config.json"
    )
    for offset in (local + 22, central + 24):  # "uncompressed size" in the local and the central header
        data[offset : offset + 4] = (100).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(ConvlensError, match=r"is not a Keras \.keras archive \(Bad CRC-32"):
        read_config(path)


def test_sizes_are_named_in_the_largest_whole_unit():
    sizes = [3 << 30, 1536 << 20, 16 << 20, (1 << 20) + (1 << 19), 2048, 1536, 1023, 0]
    assert [archive._size(n) for n in sizes] == [
        "3 GiB",
        "1.5 GiB",
        "16 MiB",
        "1.5 MiB",
        "2 KiB",
        "1.5 KiB",
        "1023 bytes",
        "0 bytes",
    ]


def test_a_config_checked_after_it_was_read_names_config_json():
    """``Archive.of`` takes a config read elsewhere (a Keras 2 archive's): it is checked again, named the same way."""
    with pytest.raises(ConvlensError) as err:
        check_model_config({"class_name": "Sequential", "config": {"layers": [1]}}, "m.keras")
    assert str(err.value).startswith("m.keras: config.json is not a Keras model config (")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"[]", "it holds a list, not an object"),
        (b"null", "it holds null, not an object"),
        (b'{"class_name": "Sequential", "config": {"layers": []}}\xff', "not UTF-8: invalid start byte at byte 54"),
        (b'{"class_name": "Sequential", "config": {"layers": [5]}}', "layer 0 is 5, not an object"),
        (b'{"config": {"layers": []}}', "no class_name"),
        (
            b'{"class_name": "Sequential", "config": {"layers": [{"class_name": "Conv2D", "config": {}}]}}',
            "layer 0 (Conv2D) has no name",
        ),
        (
            b'{"class_name": "Sequential", "config": {"layers": [{"config": {"name": "c"}}]}}',
            "layer 0 has no class_name",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply to parse"),
        (b'{"a":' * 150 + b"1" + b"}" * 150, "nested more than 100 levels deep"),
        (b'{"class_name": "Sequential", "config": 7}', "no config object"),
        (b"{", "not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        (b"1" * 5000, "not JSON: Exceeds the limit (4300 digits)"),
        (
            b'{"class_name": "Sequential", "config": {"layers": '
            b'[{"class_name": "Conv2D", "config": {"name": "../x"}}]}}',
            "layer 0 is named '../x', which is not a plain name (it would be a path)",
        ),
    ],
    ids=[
        "list",
        "null",
        "utf8",
        "int-layer",
        "no-class",
        "no-name",
        "layer-no-class",
        "deep",
        "deep-parsed",
        "config-not-object",
        "truncated",
        "long-int",
        "name-is-a-path",
    ],
)
def test_malformed_configs_are_one_line(tiny_assets, tmp_path, raw, problem):
    path = _rewrite(tiny_assets["model"], tmp_path / "m.keras", raw_config=raw)
    with pytest.raises(ConvlensError) as err:
        read_config(path)
    assert str(err.value).startswith(f"{path}: config.json is not a Keras model config ({problem}")
    assert str(err.value).endswith("; save the model with model.save('name.keras')") and "\n" not in str(err.value)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
KEYS = st.sampled_from(["class_name", "config", "module", "registered_name", "layers", "name", "activation"])


def _mutate(node, path, value):
    """``node`` with the item at ``path`` (indices into lists and dict values, in order) replaced by ``value``."""
    if not path or not isinstance(node, dict | list) or not node:
        return value
    index = path[0] % len(node)
    if isinstance(node, list):
        return [_mutate(item, path[1:], value) if i == index else item for i, item in enumerate(node)]
    key = list(node)[index]
    return {**node, key: _mutate(node[key], path[1:], value)}


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        JSON,
        st.tuples(st.lists(st.integers(0, 50), max_size=8), JSON | st.dictionaries(KEYS, JSON, max_size=3)),
        st.binary(max_size=40),
    )
)
def test_fuzzed_configs_give_layers_or_one_convlens_error(tiny_assets, tmp_path_factory, case):
    """Arbitrary JSON, arbitrary bytes, or the tiny model's real config with one part replaced: read_config and
    check_model_config return layers or raise ConvlensError (one line), never another exception."""
    if isinstance(case, tuple):
        case = _mutate(_tiny_config(tiny_assets), *case)
    raw = case if isinstance(case, bytes) else json.dumps(case).encode()
    path = _rewrite(tiny_assets["model"], tmp_path_factory.mktemp("fuzz") / "m.keras", raw_config=raw)
    try:
        layers = check_model_config(read_config(path), str(path))
    except ConvlensError as e:
        assert "\n" not in str(e) and str(e)
    else:
        assert all(isinstance(layer, LayerInfo) for layer in layers)


# --- refused by fetch_model and by every stage that reads a model, in process and as a user runs it ----------


def _save(model, path: Path) -> Path:
    model.save(path)
    return path


def _lambda_models(tmp_path: Path) -> dict[str, Path]:
    """Real ``.keras`` archives holding code: a Lambda layer, and one nested inside an inner model."""
    from convlens.model.keras_models import keras

    conv = keras.layers.Conv2D(2, 3, name="conv2d")
    top = keras.Sequential([keras.Input((28, 28, 1)), conv, keras.layers.Lambda(lambda x: x * 2, name="evil")])
    inner = keras.Sequential([keras.layers.Lambda(lambda x: x + 1, name="hidden_evil")], name="inner")
    nested = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(2, 3, name="conv2d"), inner])
    return {"evil": _save(top, tmp_path / "lambda.keras"), "hidden_evil": _save(nested, tmp_path / "nested.keras")}


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
    from convlens.model.keras_models import keras

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
    from convlens.model.keras_models import keras

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


@pytest.mark.parametrize("extra", [0, 1], ids=["at-the-cap", "one-byte-over"])
def test_a_member_beyond_the_models_own_is_capped_at_16_mib(tiny_assets, tmp_path, extra):
    """Issue 28 §4: an archive may carry other members (assets); each holds at most OTHER_MEMBER_CAP, 16 MiB."""
    path = tmp_path / "assets.keras"
    shutil.copy2(tiny_assets["model"], path)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as z:
        z.writestr("assets/vocabulary.txt", b"\0" * ((16 << 20) + extra))
    assert path.stat().st_size < 1 << 20
    if extra:
        with pytest.raises(ConvlensError) as err:
            read_config(path)
        assert str(err.value) == (
            f"{path}: assets/vocabulary.txt is 16.0 MiB uncompressed, over the 16 MiB limit (a zip bomb?); "
            "refused: save the model with model.save('name.keras')"
        )
    else:
        assert read_config(path) == read_config(tiny_assets["model"])


def test_a_weight_declared_larger_than_a_weights_file_may_hold_is_refused_before_it_is_read(tiny_assets, tmp_path):
    """Issue 28 §6: a kernel declared (3, 3, 1, 1.2e9), chunked and never written (a few bytes in the file), under a
    config that says the same; reading it ended in numpy's `Unable to allocate 1.26 TiB`."""
    huge = 1_200_000_000
    config = json.loads(zipfile.ZipFile(tiny_assets["model"]).read("config.json"))
    first = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Conv2D")
    first["config"]["filters"] = huge
    edit = _replace_kernel(shape=(3, 3, 1, huge), dtype="f4", chunks=(3, 3, 1, 1024), compression="gzip")
    path = _rewrite(tiny_assets["model"], tmp_path / "huge.keras", config=config, h5_edit=edit)
    assert path.stat().st_size < 1 << 20
    with pytest.raises(ConvlensError) as err:
        Archive.read(path).weights(["conv2d"])
    assert str(err.value) == (
        f"{path}: model.weights.h5 declares {KERNEL} (layer 'conv2d') as (3, 3, 1, {huge}) float32, 40.2 GiB, over "
        "the 2 GiB limit; refused: save the model with model.save('name.keras')"
    )


def test_a_model_of_more_layers_than_convlens_reads_is_refused_at_once(tiny_assets, tmp_path):
    """Issue 28 §6: a 10,000-layer model's Keras stages never finished; its config is refused in fetch_model."""
    config = json.loads(zipfile.ZipFile(tiny_assets["model"]).read("config.json"))
    own = len(config["config"]["layers"])
    dropout = {"class_name": "Dropout", "config": {"rate": 0.0}}
    nested = {"class_name": "Sequential", "config": {"name": "block", "layers": []}}
    for count, room in ((MAX_LAYERS, "fits"), (10_000, "too many")):
        extra = count - own - 1  # the nested model is a layer, its layers too
        nested["config"]["layers"] = [{**dropout, "config": {"rate": 0.0, "name": f"d{i}"}} for i in range(extra)]
        grown = {**config, "config": {**config["config"], "layers": [*config["config"]["layers"], nested]}}
        assert layer_count(grown) == count
        path = _rewrite(tiny_assets["model"], tmp_path / f"{count}.keras", config=grown)
        if room == "fits":
            assert read_config(path) == grown
            continue
        with pytest.raises(ConvlensError) as err:
            read_config(path)
        assert str(err.value) == (
            f"{path}: the model has 10000 layers (nested models' included), over the {MAX_LAYERS} convlens reads; "
            "look inside a part of it: keras.Model(model.inputs, model.get_layer(NAME).output).save('part.keras')"
        )


def _declaring(tiny_assets: dict, path: Path, filters: dict[str, int]) -> Path:
    """The tiny model with ``filters`` for some conv layers in its config, each kernel and bias declared to fit them
    (chunked and never written: the file stays a few kB)."""
    config = _tiny_config(tiny_assets)
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

    return _rewrite(tiny_assets["model"], path, config=config, h5_edit=edit)


def test_models_declaring_too_much_from_the_command_line(project, tiny_assets, tmp_path):
    """Issue 28 §6, through fetch_model as a user runs it: a kernel declared over 2 GiB (numpy's `Unable to allocate
    40.2 GiB`), two kernels of 1.5 GiB each under it but 3 GiB together (read in full and passed on), and a model of
    10,000 layers (Keras stages that never finished): one line each, exit 1, no model written."""
    config = _tiny_config(tiny_assets)
    nested = {"class_name": "Sequential", "config": {"name": "block", "layers": []}}
    nested["config"]["layers"] = [
        {"class_name": "Dropout", "config": {"rate": 0.0, "name": f"d{i}"}}
        for i in range(10_000 - len(config["config"]["layers"]) - 1)
    ]
    config["config"]["layers"].append(nested)
    models = {
        "one": _declaring(tiny_assets, tmp_path / "one.keras", {"conv2d": 1_200_000_000}),
        "in-all": _declaring(tiny_assets, tmp_path / "all.keras", {"conv2d": 40_000_000, "conv2d_1": 11_000_000}),
        "layers": _rewrite(tiny_assets["model"], tmp_path / "layers.keras", config=config),
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


@pytest.mark.parametrize(
    ("shapes", "problem"),
    [
        ([(1 << 29,)], None),
        ([(1 << 29, 1), (0,)], None),
        (
            [((1 << 29) + 1,)],
            "declares layers/conv2d/vars/0 (layer 'conv2d') as (536870913,) float32, 2.0 GiB, over the ",
        ),
        ([(1 << 28,), (1 << 28,)], None),
        ([(1 << 28,), (1 << 28,), (1,)], "declares 2.0 GiB of variables in all (the largest: layers/conv2d/vars/0 "),
    ],
    ids=["one-at-2-gib", "with-an-empty-one", "one-4-bytes-over", "two-at-2-gib", "two-4-bytes-over"],
)
def test_weights_declared_are_capped_at_2_gib_one_by_one_and_in_all(shapes, problem):
    """WEIGHTS_CAP, the model.weights.h5 member's own cap: no variable, nor all of them, may declare more."""
    datasets = [(f"layers/conv2d/vars/{i}", shape, np.dtype("f4")) for i, shape in enumerate(shapes)]
    got = declared_size_problem(datasets, {"layers/conv2d": "conv2d"}, WEIGHTS_CAP)
    if problem is None:
        assert got is None
    else:
        assert got.startswith(problem) and got.endswith("over the 2 GiB limit")
