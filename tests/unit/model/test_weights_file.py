"""model.weights.h5 (``model.weights_file``), read without TensorFlow: the same arrays as Keras; weights that point
outside the file (issue 9 §2), stored shapes that do not fit the config, and declared sizes over the caps refused."""

import json
import re
import zipfile

import numpy as np
import pytest

from convlens.errors import ConvlensError
from convlens.model.archive import Archive
from convlens.model.weights_file import WEIGHTS_CAP, declared_size_problem, expected_shapes
from tests.unit.model.archives import (
    KERNEL,
    check_archive,
    external_storage,
    layer_entry,
    replace_kernel,
    rewrite,
    write_archive,
)


def test_read_weights_without_tensorflow_equals_keras(tiny_assets):
    from convlens.model.keras_models import load_model

    model = load_model(tiny_assets["model"])
    weights = Archive.read(tiny_assets["model"]).weights(["conv2d", "conv2d_1", "dense"])
    for name, arrays in weights.items():
        expected = model.get_layer(name).get_weights()
        assert len(arrays) == len(expected) == 2
        for got, want in zip(arrays, expected, strict=True):
            np.testing.assert_array_equal(got, want)


def test_unreadable_weights_are_refused(tmp_path):
    path = write_archive(tmp_path / "m.keras", [layer_entry("Conv2D", "conv2d")])
    with pytest.raises(ConvlensError, match="model.weights.h5 is unreadable"):
        Archive.read(path).weights(["conv2d"])


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
        "external-storage": external_storage(secret),
        "external-link": _external_link(other),
        "soft-link": _soft_link,
        "virtual": _virtual(other),
        "strings": replace_kernel(data=np.full((3, 3, 1, 4), b"abc")),
    }[case]
    path = rewrite(tiny_assets["model"], tmp_path / "m.keras", h5_edit=edit)
    # any read refuses, not only the layer's
    for reader in (check_archive, lambda p: Archive.read(p).weights(["conv2d_1"])):
        with pytest.raises(ConvlensError) as err:
            reader(path)
        assert message.format(secret=secret, other=other) in str(err.value)
        assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            replace_kernel(data=np.zeros((5, 5, 1, 4), "f4")),
            "layer 'conv2d' stores its kernel as (5, 5, 1, 4) but its config says (3, 3, 1, 4); "
            "the weights do not fit the architecture",
        ),
        (
            replace_kernel(data=np.zeros((3, 3, 2, 4), "f4")),
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
    path = rewrite(tiny_assets["model"], tmp_path / "m.keras", h5_edit=edit)
    with pytest.raises(ConvlensError, match=re.escape(message)):
        check_archive(path)
    with pytest.raises(ConvlensError, match=re.escape(message)):
        Archive.read(path).weights(["conv2d_1"])  # extract_weights and build_untrained's reads refuse it too


def test_batch_normalization_shapes_are_checked(tmp_path):
    from convlens.model.keras_models import keras

    model = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3, name="conv2d"), keras.layers.BatchNormalization(name="bn")]
    )
    model.save(tmp_path / "bn.keras")
    assert check_archive(tmp_path / "bn.keras")["conv2d"][0].shape == (3, 3, 3, 2)

    def edit(h5):
        del h5["layers/batch_normalization/vars/2"]
        h5["layers/batch_normalization/vars/2"] = np.zeros(3, "f4")

    bad = rewrite(tmp_path / "bn.keras", tmp_path / "bad.keras", h5_edit=edit)
    with pytest.raises(
        ConvlensError, match=re.escape("layer 'bn' stores its moving_mean as (3,) but its config says (2,)")
    ):
        check_archive(bad)


def test_a_weight_declared_larger_than_a_weights_file_may_hold_is_refused_before_it_is_read(tiny_assets, tmp_path):
    """Issue 28 §6: a kernel declared (3, 3, 1, 1.2e9), chunked and never written (a few bytes in the file), under a
    config that says the same; reading it ended in numpy's `Unable to allocate 1.26 TiB`."""
    huge = 1_200_000_000
    config = json.loads(zipfile.ZipFile(tiny_assets["model"]).read("config.json"))
    first = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Conv2D")
    first["config"]["filters"] = huge
    edit = replace_kernel(shape=(3, 3, 1, huge), dtype="f4", chunks=(3, 3, 1, 1024), compression="gzip")
    path = rewrite(tiny_assets["model"], tmp_path / "huge.keras", config=config, h5_edit=edit)
    assert path.stat().st_size < 1 << 20
    with pytest.raises(ConvlensError) as err:
        Archive.read(path).weights(["conv2d"])
    assert str(err.value) == (
        f"{path}: model.weights.h5 declares {KERNEL} (layer 'conv2d') as (3, 3, 1, {huge}) float32, 40.2 GiB, over "
        "the 2 GiB limit; refused: save the model with model.save('name.keras')"
    )


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


def test_a_weight_of_no_known_layer_is_named_by_its_path_alone():
    """The message names the dataset's layer only when ``owners`` knows its group."""
    got = declared_size_problem([("vars/0", ((1 << 29) + 1,), np.dtype("f4"))], {}, WEIGHTS_CAP)
    assert got == "declares vars/0 as (536870913,) float32, 2.0 GiB, over the 2 GiB limit"


def test_a_channels_first_conv_takes_its_input_channels_from_axis_1():
    entry = {
        "class_name": "Conv2D",
        "config": {"filters": 2, "kernel_size": [3, 3], "data_format": "channels_first"},
        "build_config": {"input_shape": [None, 3, 8, 5]},
    }
    assert expected_shapes(entry) == [(3, 3, 3, 2), (2,)]
    entry["config"]["data_format"] = "channels_last"
    assert expected_shapes(entry) == [(3, 3, 5, 2), (2,)]
