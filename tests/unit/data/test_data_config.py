"""The data presets and keys (``conf/data/``, ``schema``'s data checks) and ``fetch_data`` on each source: presets
through the mirror, your own file, a bad one keeping the old data, and one error line from the command line."""

import gzip
import hashlib
import json
import shutil

import numpy as np
import pytest
import yaml

from convlens.errors import ConvlensError
from convlens.pipeline.config import compose
from stages import fetch_data
from tests.support.datasets import image_folder, keras_npz, tiny_cifar
from tests.support.helpers import PROJECT, cli, error_line, hidden, idx_bytes, one_line, snapshot

PRESETS = sorted(p.stem for p in (PROJECT / "conf" / "data").glob("*.yaml"))


def test_every_preset_declares_the_same_keys_and_composes(tmp_path):
    keys = {
        p: list(yaml.safe_load((PROJECT / "conf" / "data" / f"{p}.yaml").read_text(encoding="utf-8"))) for p in PRESETS
    }
    assert {"fashion_mnist", "mnist", "cifar10", "cifar100", "npz", "folder"} <= set(PRESETS)
    assert all(k == keys["fashion_mnist"] for k in keys.values()), keys
    for preset in PRESETS:
        own = {"npz": tmp_path / "d.npz", "folder": tmp_path}.get(preset)  # data.path is checked at composition
        (tmp_path / "d.npz").write_bytes(b"")
        path = [f"data.path={own}"] if own else []
        data = compose(PROJECT, [f"data={preset}", *path]).data
        assert data.source == (str(own) if own else f"conf/data/{preset}.yaml")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["data=npz"],
            "data.format=npz reads data.path, which is null; set it: -S data=npz -S data.path=FILE (or DIR)",
        ),
        (["data.format=folder"], "data.format=folder reads data.path, which is null"),
        (
            ["data.format=cifar10"],
            "data.format=cifar10 downloads data.files archive, got train_images, train_labels, "
            "test_images, test_labels; use a preset of conf/data/ (-S data=mnist) or your own data.path",
        ),
        (["data.path=x.npz"], "data.format=idx reads the IDX files of data.files, not data.path"),
        (
            ["data=mnist", "data.path=x.npz"],
            "data.path (x.npz) is your own data, so data.files and data.urls must be "
            "empty; start from a preset without them: -S data=npz -S data.path=x.npz",
        ),
        (["data=npz", "data.path=a.npz", "data.source=b.npz"], "data.source (b.npz) must be data.path (a.npz)"),
        (["data=npz", "data.path='~/x.npz'"], "data.path must be a path without ~ (DVC does not expand it)"),
        (["data.resize=[0,5]"], "data.resize must be [H, W], two integers in 1..4096, got [0, 5]"),
        (["data.resize=[28]"], "data.resize must be [H, W], two integers in 1..4096"),
        (["data.color=cmyk"], "data.color must be one of keep, gray, rgb"),
        (["data.format=png"], "data.format must be one of idx, npz, cifar10, cifar100, folder"),
        (["data.test_fraction=1"], "data.test_fraction must be a finite number above 0"),
        (["data=mnist", "data.files.archive.name=../x"], "data.files.archive.name must be a plain name"),
    ],
)
def test_data_keys_that_do_not_fit_together_are_one_line(overrides, message):
    with pytest.raises(ConvlensError) as err:
        compose(PROJECT, overrides)
    assert message in one_line(err)


@pytest.mark.parametrize("preset", ["cifar10", "cifar100", "mnist"])
def test_data_path_on_a_download_preset_names_the_options_that_read_it(tmp_path, preset):
    archive = tmp_path / "mine.tar.gz"
    archive.write_bytes(b"")  # data.path is checked at composition
    with pytest.raises(ConvlensError) as err:
        compose(PROJECT, [f"data={preset}", f"data.path={archive}"])
    options = one_line(err).split("start from a preset without them: ")[1].split()
    assert options[::2] == ["-S"] * (len(options) // 2), options
    data = compose(PROJECT, options[1::2]).data  # what the message says composes, reading the file as the preset did
    fmt = compose(PROJECT, [f"data={preset}"]).data.format
    assert (data.format, data.path, data.source, dict(data.files), list(data.urls)) == (
        fmt,
        str(archive),
        str(archive),
        {},
        [],
    )


def test_fetch_data_writes_your_npz_and_its_classes(project, stage_config, tmp_path):
    arrays = keras_npz(tmp_path / "mine.npz", class_names=np.array(["x", "y", "z"]))
    fetch_data.run(stage_config("fetch_data", "data=npz", f"data.path={tmp_path / 'mine.npz'}"), project)
    out = project / "outputs" / "data"
    np.testing.assert_array_equal(np.load(out / "test_images.npy"), arrays["x_test"])
    assert json.loads((out / "classes.json").read_text(encoding="utf-8")) == ["x", "y", "z"]
    assert sorted(p.name for p in out.iterdir()) == [
        "classes.json",
        "test_images.npy",
        "test_labels.npy",
        "train_images.npy",
        "train_labels.npy",
    ]


def test_fetch_data_writes_the_default_classes(project, stage_config):
    fetch_data.run(stage_config("fetch_data"), project)
    classes = json.loads((project / "outputs" / "data" / "classes.json").read_text(encoding="utf-8"))
    assert classes == list(compose(project).data.classes)


@pytest.mark.parametrize(("preset", "name"), [("mnist", "mnist.npz"), ("cifar10", "cifar-10-python.tar.gz")])
def test_presets_are_read_from_the_mirror_by_checksum(project, stage_config, tmp_path, monkeypatch, preset, name):
    mirror = tmp_path / "mirror"
    subdir = compose(project, [f"data={preset}"]).data.subdir
    (mirror / subdir).mkdir(parents=True)
    if preset == "mnist":
        keras_npz(mirror / subdir / name)
    else:
        tiny_cifar(mirror / subdir / name)
    digest = hashlib.sha256((mirror / subdir / name).read_bytes()).hexdigest()
    monkeypatch.setenv("CONVLENS_MIRROR", str(mirror))
    overrides = [
        f"data={preset}",
        "data.urls=[]",
        "~data.files",
        f"+data.files={{archive:{{name:{name},sha256:{digest}}}}}",
    ]
    fetch_data.run(stage_config("fetch_data", *overrides), project)
    classes = json.loads((project / "outputs" / "data" / "classes.json").read_text(encoding="utf-8"))
    assert classes == ([str(i) for i in range(10)] if preset == "mnist" else ["airplane", "bird", "cat"])
    shutil.rmtree(mirror)
    with pytest.raises(ConvlensError) as err:
        fetch_data.run(stage_config("fetch_data", *overrides), project)
    assert f"{name} not found in" in one_line(err) and f"{name} (checksum sha256 {digest})" not in one_line(err)


def test_your_own_idx_files_are_a_preset_of_your_own_read_from_the_mirror(project, stage_config, tmp_path, monkeypatch):
    """docs/own-data.md's recipe for EMNIST or Kuzushiji-MNIST: fashion_mnist.yaml copied, with the files' names
    and sha256, ``urls: []`` and their ``subdir`` in ``$CONVLENS_MIRROR``."""
    rng = np.random.default_rng(5)
    arrays = {
        "train_images": rng.integers(0, 256, (8, 28, 28), dtype=np.uint8),
        "train_labels": np.arange(8, dtype=np.uint8) % 3,
        "test_images": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        "test_labels": np.array([2, 0, 1, 1], dtype=np.uint8),
    }
    mirror = tmp_path / "mirror"
    (mirror / "kmnist").mkdir(parents=True)
    preset = yaml.safe_load((project / "conf" / "data" / "fashion_mnist.yaml").read_text(encoding="utf-8"))
    preset |= {"name": "kmnist", "subdir": "kmnist", "urls": [], "source": "conf/data/kmnist.yaml"}
    preset["classes"] = ["o", "ki", "su"]
    for role, array in arrays.items():
        name = f"kmnist-{role.replace('_', '-')}.gz"
        (mirror / "kmnist" / name).write_bytes(packed := gzip.compress(idx_bytes(array)))
        preset["files"][role] = {"name": name, "sha256": hashlib.sha256(packed).hexdigest()}
    (project / "conf" / "data" / "kmnist.yaml").write_text(yaml.safe_dump(preset, sort_keys=False), encoding="utf-8")
    monkeypatch.setenv("CONVLENS_MIRROR", str(mirror))
    fetch_data.run(stage_config("fetch_data", "data=kmnist"), project)
    out = project / "outputs" / "data"
    for split in ("train", "test"):
        np.testing.assert_array_equal(np.load(out / f"{split}_images.npy"), arrays[f"{split}_images"])
        np.testing.assert_array_equal(np.load(out / f"{split}_labels.npy"), arrays[f"{split}_labels"])
    assert json.loads((out / "classes.json").read_text(encoding="utf-8")) == ["o", "ki", "su"]


def test_a_broken_image_folder_keeps_the_old_data(project, stage_config, tmp_path):
    fetch_data.run(stage_config("fetch_data"), project)
    before = snapshot(project / "outputs")
    top = tmp_path / "pics"
    image_folder(top, {"a": [np.zeros((5, 5), np.uint8)] * 3, "b": [np.ones((5, 5), np.uint8)] * 3})
    (top / "b" / "2.png").write_bytes((top / "b" / "2.png").read_bytes()[:-30])  # decoded last but one or so
    with pytest.raises(ConvlensError) as err:
        fetch_data.run(stage_config("fetch_data", "data=folder", f"data.path={top}"), project)
    assert "2.png is not a readable image (image file is truncated" in one_line(
        err
    ) or "2.png is not a readable" in one_line(err)
    assert snapshot(project / "outputs") == before and not hidden(project / "outputs")


def test_an_npz_of_objects_from_the_command_line_is_one_line_and_exit_1(project, tmp_path):
    np.savez(tmp_path / "evil.npz", x_train=np.array([print], dtype=object), y_train=[0], x_test=[0], y_test=[0])
    line = error_line(cli(project, "fetch_data", "data=npz", f"data.path={tmp_path / 'evil.npz'}"), "fetch_data")
    assert line == (
        f"fetch_data: error: {tmp_path / 'evil.npz'}: x_train holds Python objects (object), which only unpickling "
        "could read; refused: save plain arrays (uint8 images, integer labels, str class names)"
    )
    assert not (project / "outputs" / "data").exists()
