"""NPZ files and CIFAR archives (``convlens.data.npz``, ``cifar``, ``unpickle``) through ``write_dataset``: what is
written equals what was put in; hostile files are one line, never unpickled, never extracted."""

import os
import pickle
import tarfile

import numpy as np
import pytest
from PIL import Image

from convlens.data import cifar, npz
from convlens.data.unpickle import UnpickleError, load_plain
from convlens.errors import ConvlensError
from tests.support.datasets import (
    cifar_batch,
    data_config,
    keras_npz,
    refused,
    rgb,
    tiny_cifar,
    write,
    write_npz,
)

# --- NPZ ----------------------------------------------------------------------------------------------------------


def test_an_npz_is_written_as_it_is_with_classes_from_its_labels(tmp_path):
    arrays = keras_npz(tmp_path / "d.npz")
    got = write(tmp_path, data_config("npz", path=str(tmp_path / "d.npz")))
    for split in ("train", "test"):
        np.testing.assert_array_equal(got[f"{split}_images"], arrays[f"x_{split}"])
        np.testing.assert_array_equal(got[f"{split}_labels"], arrays[f"y_{split}"])
        assert got[f"{split}_images"].dtype == np.uint8 and got[f"{split}_labels"].dtype == np.uint8
    assert got["classes"] == ["0", "1", "2"]


def test_an_npz_names_its_classes_and_keeps_colour_and_squeezes_single_channels(tmp_path):
    rng = np.random.default_rng(4)
    x_train, x_test = rgb(4, side=5), rng.integers(0, 256, (2, 5, 5, 3), dtype=np.uint8)
    write_npz(
        tmp_path / "c.npz",
        {
            "x_train": x_train,
            "y_train": np.array([[0], [1], [1], [0]], np.int64),  # keras.datasets.cifar10 labels are N×1
            "x_test": x_test,
            "y_test": np.array([[1], [0]], np.int32),
            "class_names": np.array(["cat", "dog"]),
        },
    )
    got = write(tmp_path, data_config("npz", path=str(tmp_path / "c.npz")))
    np.testing.assert_array_equal(got["train_images"], x_train)
    np.testing.assert_array_equal(got["test_labels"], [1, 0])
    assert got["classes"] == ["cat", "dog"]
    write_npz(
        tmp_path / "g.npz",
        {**dict(np.load(tmp_path / "c.npz")), "x_train": x_train[..., :1], "x_test": x_test[..., :1]},
    )
    gray = write(tmp_path, data_config("npz", path=str(tmp_path / "g.npz")), "gray")
    assert gray["train_images"].shape == (4, 5, 5)
    np.testing.assert_array_equal(gray["train_images"], x_train[..., 0])


def test_data_classes_names_the_labels_instead_of_the_file(tmp_path):
    keras_npz(tmp_path / "d.npz", class_names=np.array(["a", "b", "c"]))
    got = write(tmp_path, data_config("npz", path=str(tmp_path / "d.npz"), classes=["x", "y", "z"]))
    assert got["classes"] == ["x", "y", "z"]


def test_resize_and_color_are_pillows_bilinear_and_luma(tmp_path):
    images = rgb(3, side=6, seed=5)
    write_npz(
        tmp_path / "c.npz",
        {"x_train": images, "y_train": np.zeros(3, np.uint8), "x_test": images[:1], "y_test": np.zeros(1, np.uint8)},
    )
    got = write(tmp_path, data_config("npz", path=str(tmp_path / "c.npz"), resize=[4, 3], color="gray"))
    want = np.stack(
        [np.asarray(Image.fromarray(i).convert("L").resize((3, 4), Image.Resampling.BILINEAR)) for i in images]
    )
    assert got["train_images"].shape == (3, 4, 3)
    np.testing.assert_array_equal(got["train_images"], want)
    luma = np.asarray(Image.fromarray(images[0]).convert("L")).astype(float)
    r, g, b = (images[0][..., c].astype(float) for c in range(3))
    assert np.abs(luma - (0.299 * r + 0.587 * g + 0.114 * b)).max() <= 1  # ITU-R 601-2, as MEANING says
    same = write(tmp_path, data_config("npz", path=str(tmp_path / "c.npz"), color="rgb"), "rgb")
    np.testing.assert_array_equal(same["train_images"], images)  # rgb of rgb: unchanged
    gray = write(tmp_path, data_config("npz", path=str(tmp_path / "c.npz"), color="gray"), "gray")
    assert gray["train_images"].shape == (3, 6, 6)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (
            {"x_train": np.array([object()] * 2, dtype=object)},
            "x_train holds Python objects (object), which only unpickling could read",
        ),
        ({"class_names": np.array(["a", None], dtype=object)}, "class_names holds Python objects"),
        ({"x_test": None}, "has no x_test; an NPZ holds x_train, y_train, x_test, y_test"),
        ({"X_extra": np.zeros(1)}, "holds X_extra; an NPZ holds x_train"),
        (
            {"x_train": np.linspace(0, 1, 6 * 8 * 8, dtype=np.float32).reshape(6, 8, 8)},
            "d.npz: x_train holds float32 pixels; convlens stores uint8 pixels 0..255: they run from 0 to 1, "
            "so save (x * 255).round().astype('uint8')",
        ),
        (
            {"x_test": np.full((4, 8, 8), 254.6)},
            "d.npz: x_test holds float64 pixels; convlens stores uint8 pixels 0..255: they run from 254.6 to 254.6, "
            "so save x.round().astype('uint8')",
        ),
        (
            {"x_train": np.linspace(-2, 2, 6 * 8 * 8, dtype=np.float16).reshape(6, 8, 8)},
            "they run from -2 to 2: scale them to 0..255 and save them as uint8",
        ),
        (
            {"x_train": np.full((6, 8, 8), 300, np.int32)},
            "holds pixels from 300 to 300; convlens stores uint8 pixels 0..255",
        ),
        (
            {"x_train": np.zeros((6, 8, 8, 2), np.uint8)},
            "has shape (6, 8, 8, 2); images must be N×H×W (gray) or N×H×W×3 (RGB)",
        ),
        ({"y_train": np.zeros(6, np.float32)}, "holds float32 labels; labels must be integers 0..K-1"),
        ({"y_train": np.array([0, 1, -1, 0, 0, 0])}, "holds the label -1; labels must be class indices 0..K-1"),
        (
            {"y_train": np.zeros(5, np.uint8)},
            "d.npz: x_train holds 6 images but y_train holds 5 labels; they must pair one to one",
        ),
        (
            {"x_train": np.where(np.eye(8, dtype=bool), np.nan, 200.0)[None].repeat(6, 0)},
            "d.npz: x_train holds float64 pixels; convlens stores uint8 pixels 0..255: 48 of them are NaN or "
            "infinite, which no pixel can be: mend or drop those images, then save them as uint8",
        ),
        (
            {"x_test": np.zeros((0, 8, 8), np.uint8), "y_test": np.zeros(0, np.uint8)},
            "d.npz: x_test holds no images; each split needs at least one",
        ),
        (
            {"x_test": np.zeros((4, 9, 8), np.uint8)},
            "train images are 8×8 but test images are 9×8; set data.resize=[H,W]",
        ),
        (
            {"class_names": np.array(["a", "b"])},
            "d.npz: y_train) but there are 2 classes (the data's own class names: labels 0..1)",
        ),
        ({"class_names": np.array(["a", "a", "b"])}, "class_names has an empty or repeated name"),
    ],
    ids=[
        "object-images",
        "object-names",
        "missing",
        "unknown",
        "float-0-1",
        "float-0-255",
        "float-standardized",
        "over-255",
        "channels",
        "float-labels",
        "negative",
        "count",
        "nan-pixels",
        "empty",
        "sizes",
        "names-vs-labels",
        "repeated-names",
    ],
)
def test_bad_npz_files_are_one_line(tmp_path, arrays, message):
    good = keras_npz(tmp_path / "good.npz")
    mixed = {k: v for k, v in {**good, **arrays}.items() if v is not None}
    if any(v.dtype == object for v in mixed.values()):
        np.savez(tmp_path / "d.npz", **mixed)  # np.savez pickles object arrays
    else:
        write_npz(tmp_path / "d.npz", mixed)
    assert message in refused(tmp_path, data_config("npz", path=str(tmp_path / "d.npz")))


def test_labels_beyond_data_classes_and_files_that_are_not_npz(tmp_path):
    keras_npz(tmp_path / "d.npz", classes=3)
    message = refused(tmp_path, data_config("npz", path=str(tmp_path / "d.npz"), classes=["a", "b"]))
    assert message == (
        f"train labels go up to 2 ({tmp_path / 'd.npz'}: y_train) but there are 2 classes (data.classes: labels "
        "0..1); give one class name per label (data.classes) or fix the labels"
    )
    (tmp_path / "page.npz").write_bytes(b"<html>404</html>")
    assert "is not a readable NPZ file (File is not a zip file)" in refused(
        tmp_path, data_config("npz", path=str(tmp_path / "page.npz"))
    )
    assert refused(tmp_path, data_config("npz", path=str(tmp_path / "none.npz"))).endswith(
        "none.npz does not exist; point it at an .npz or .tar.gz file"
    )
    assert refused(tmp_path, data_config("npz", path=str(tmp_path))) == (
        f"data.path {tmp_path} is a folder, not a file; point it at the .npz or .tar.gz file itself "
        "(-S data.path=DIR/FILE.npz), or read a folder of class folders with -S data=folder"
    )
    os.mkfifo(tmp_path / "fifo.npz")
    assert refused(tmp_path, data_config("npz", path=str(tmp_path / "fifo.npz"))).endswith(
        "is not a regular file; point it at an .npz or .tar.gz file"
    )


def test_an_npz_member_whose_header_declares_more_than_it_holds_is_refused_before_reading(tmp_path):
    import zipfile

    keras_npz(tmp_path / "d.npz")
    with zipfile.ZipFile(tmp_path / "d.npz") as z:
        members = {n: z.read(n) for n in z.namelist()}
    npy = members["x_train.npy"]  # the header is padded with spaces: a longer shape fits in it
    members["x_train.npy"] = npy.replace(b"'shape': (6, 8, 8), }   ", b"'shape': (9999999, 8, 8), }")
    assert members["x_train.npy"] != npy
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    assert "x_train declares (9999999, 8, 8) uint8 (610.4 MiB), but the member has" in refused(
        tmp_path, data_config("npz", path=str(tmp_path / "bomb.npz"))
    )


# --- CIFAR --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["cifar10", "cifar100"])
def test_a_cifar_archive_is_read_without_unpickling_and_written_as_it_is(tmp_path, fmt):
    splits, names = tiny_cifar(tmp_path / "c.tar.gz", fmt)
    got = write(tmp_path, data_config("npz", format=fmt, path=str(tmp_path / "c.tar.gz")))
    for split, (images, labels) in splits.items():
        np.testing.assert_array_equal(got[f"{split}_images"], images)
        np.testing.assert_array_equal(got[f"{split}_labels"], labels)
    assert got["classes"] == names and got["train_images"].shape == (6, 32, 32, 3)


def _info(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size, link
    return info


class Evil:
    def __reduce__(self):
        return (os.system, ("touch evil-ran",))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"extra": [_info("../escape", size=1)]}, "member '../escape' points outside the archive; refused"),
        ({"extra": [_info("/etc/passwd", size=1)]}, "member '/etc/passwd' points outside the archive; refused"),
        (
            {"extra": [_info("cifar-10-batches-py/data_batch_3", tarfile.SYMTYPE, link="/etc/passwd")]},
            "member 'cifar-10-batches-py/data_batch_3' is a link; refused",
        ),
        (
            {"extra": [_info("cifar-10-batches-py/x", tarfile.LNKTYPE, link="cifar-10-batches-py/test_batch")]},
            "is a link; refused",
        ),
        ({"extra": [_info("dev", tarfile.CHRTYPE)]}, "member 'dev' is not a regular file; refused"),
        (
            {"replace": {"test_batch": pickle.dumps(Evil())}},
            "c.tar.gz:test_batch is not a plain data pickle (it names posix.system, which is not numpy data); "
            "refused without running it",
        ),
        (
            {
                "replace": {
                    "test_batch": pickle.dumps(
                        {
                            b"data": np.zeros((1, 3072), np.uint8),
                            b"labels": [0],
                            b"filenames": [],
                            b"batch_label": b"",
                            b"x": 1,
                        }
                    )
                }
            },
            "holds the keys ['batch_label', 'data', 'filenames', 'labels', 'x'], not a CIFAR batch's",
        ),
        (
            {"replace": {"test_batch": pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"filenames": []})}},
            "holds the keys ['data', 'filenames'], not a CIFAR batch's ['batch_label', 'data', 'filenames', 'labels'] "
            "(data and labels at least)",
        ),
        (
            {
                "replace": {
                    "test_batch": pickle.dumps(
                        {**cifar_batch(rgb(2), [0, 1], "cifar10"), b"data": np.zeros((2, 3072), np.int16)}
                    )
                }
            },
            "c.tar.gz:test_batch: data is int16 (2, 3072), not uint8 N×3072 pixels",
        ),
        (
            {"replace": {"test_batch": pickle.dumps({**cifar_batch(rgb(2), [0, 1], "cifar10"), b"labels": [0, 1.5]})}},
            "labels is not a list of 2 integers, one per image",
        ),
        ({"replace": {"test_batch": pickle.dumps([1, 2])}}, "holds list, not a CIFAR dict"),
        ({"replace": {"test_batch": b"\x80\x02}q"}}, "is not a plain data pickle"),
        (
            {"replace": {"test_batch": pickle.dumps(cifar_batch(rgb(2), [0, 1], "cifar10"), protocol=2)}},
            "c.tar.gz:test_batch is not a plain data pickle (it names _codecs.encode, which is not numpy data); "
            "refused without running it: Python 3 pickles bytes that way with protocol 2 or lower; re-pickle your "
            "batches with protocol 3 or later (Python 3's default: pickle.dumps(batch))",
        ),
        (
            {"replace": {"batches.meta": pickle.dumps({b"label_names": [0, 1]})}},
            "batches.meta has no list of class names (label_names)",
        ),
        (
            {"replace": {"test_batch": pickle.dumps({**cifar_batch(rgb(2), [0, 7], "cifar10")})}},
            "c.tar.gz: the labels of test_batch) but there are 3 classes (the data's own class names: labels 0..2)",
        ),
    ],
    ids=[
        "dotdot",
        "absolute",
        "symlink",
        "hardlink",
        "device",
        "os-system",
        "extra-key",
        "no-labels",
        "data-dtype",
        "labels",
        "not-a-dict",
        "cut-pickle",
        "protocol-2",
        "meta",
        "label-range",
    ],
)
def test_hostile_cifar_archives_are_one_line_and_run_nothing(tmp_path, monkeypatch, kwargs, message):
    monkeypatch.chdir(tmp_path)
    tiny_cifar(tmp_path / "c.tar.gz", **kwargs)
    said = refused(tmp_path, data_config("npz", format="cifar10", path=str(tmp_path / "c.tar.gz")))
    assert message in said
    assert "original" not in said and "fetch it again" not in said  # the file is the user's: no download to use
    assert not (tmp_path / "evil-ran").exists() and not (tmp_path.parent / "escape").exists()


@pytest.mark.parametrize("fmt", ["cifar10", "cifar100"])
def test_a_cifar_batch_of_your_own_with_only_data_and_labels_is_read(tmp_path, fmt):
    """Keras's own loader reads a batch's data and labels only; a batch saved without filenames and batch_label (a
    CIFAR-format archive of one's own images) is read as those two, as Keras would."""
    from convlens.data.cifar import LAYOUTS, parse_batch

    layout = LAYOUTS[fmt]
    full = cifar_batch(rgb(2), [1, 0], fmt)
    lean = {key: full[key] for key in (b"data", layout.labels_key.encode())}
    images, labels = parse_batch(lean, layout, "mine.tar.gz:batch")
    want_images, want_labels = parse_batch(full, layout, "mine.tar.gz:batch")
    np.testing.assert_array_equal(images, want_images)
    np.testing.assert_array_equal(labels, want_labels)
    assert images.shape == (2, 32, 32, 3) and labels.tolist() == [1, 0]


def test_oversized_missing_and_unreadable_cifar_members(tmp_path, monkeypatch):
    tiny_cifar(tmp_path / "c.tar.gz")
    data = data_config("npz", format="cifar10", path=str(tmp_path / "c.tar.gz"))
    monkeypatch.setattr(cifar, "MEMBER_CAP", 1000)
    assert (
        "member 'cifar-10-batches-py/data_batch_1' is 6.3 KiB, over the 1000 bytes a CIFAR member may be (a tar bomb?)"
        in refused(tmp_path, data)
    )
    monkeypatch.undo()
    message = refused(tmp_path, data | {"format": "cifar100"})
    assert message.endswith(
        "c.tar.gz has no meta, test, train; it is not the cifar100 python archive (check data.format)"
    )
    (tmp_path / "cut.tar.gz").write_bytes((tmp_path / "c.tar.gz").read_bytes()[:300])
    assert "cut.tar.gz: not a readable tar archive (" in refused(
        tmp_path, data_config("npz", format="cifar10", path=str(tmp_path / "cut.tar.gz"))
    )


@pytest.mark.parametrize(
    ("kwargs", "yours", "original"),
    [
        (
            {"extra": [_info("../escape", size=1)]},
            "refused, make the archive again from the batch files themselves (tar czf FILE.tar.gz FOLDER)",
            "refused, use the original archive",
        ),
        (
            {"replace": {"test_batch": pickle.dumps([1, 2])}},
            "not a CIFAR dict; pickle each batch as a dict with str keys, as CIFAR's",
            "not a CIFAR dict; use the original archive",
        ),
        (
            {"replace": {"test_batch": b"\x80\x02}q"}},
            "refused without running it: pickle your batches as dicts of NumPy arrays, lists, str and int "
            "(pickle.dumps(batch))",
            "refused without running it: use the original archive",
        ),
        (
            {"replace": {"test_batch": pickle.dumps({**cifar_batch(rgb(2), [0, 1], "cifar10"), b"labels": [0, 1.5]})}},
            "one per image; save the labels as a list of int",
            "one per image; use the original archive",
        ),
        (
            {"replace": {"batches.meta": pickle.dumps({b"label_names": [0, 1]})}},
            "(label_names); give it label_names, a list of str",
            "(label_names); use the original archive",
        ),
    ],
    ids=["member", "not-a-dict", "pickle", "labels", "meta"],
)
def test_your_own_cifar_archive_is_mended_by_you_and_the_download_by_the_original(tmp_path, kwargs, yours, original):
    tiny_cifar(tmp_path / "c.tar.gz", **kwargs)
    assert refused(tmp_path, data_config("npz", format="cifar10", path=str(tmp_path / "c.tar.gz"))).endswith(yours)
    with pytest.raises(ConvlensError) as downloaded:
        cifar.read_cifar(tmp_path / "c.tar.gz", "cifar10")
    assert str(downloaded.value).endswith(original)


def test_a_cut_archive_of_your_own_is_not_fetched_again(tmp_path):
    tiny_cifar(tmp_path / "c.tar.gz")
    (tmp_path / "cut.tar.gz").write_bytes((tmp_path / "c.tar.gz").read_bytes()[:300])
    said = refused(tmp_path, data_config("npz", format="cifar10", path=str(tmp_path / "cut.tar.gz")))
    assert said.endswith("; point data.path at the whole .tar.gz (tar tzf FILE lists it)")
    with pytest.raises(ConvlensError, match="; delete it and fetch it again$"):
        cifar.read_cifar(tmp_path / "cut.tar.gz", "cifar10")


def test_an_npz_array_over_the_cap_is_too_large_not_corrupt(tmp_path):
    import zipfile

    keras_npz(tmp_path / "d.npz")
    with zipfile.ZipFile(tmp_path / "d.npz") as archive:
        info = archive.getinfo("x_train.npy")
        with pytest.raises(npz.NpzError) as raised:
            npz.check_member(archive, info, "d.npz", cap=100)
    assert str(raised.value) == (
        "d.npz: x_train declares (6, 8, 8) uint8 (384 bytes), over the 100 bytes one array may hold; too large: save "
        "fewer or smaller images"
    )


def test_the_plain_unpickler_reads_numpy_1_and_2_pickles_and_nothing_else():
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    new = pickle.dumps({b"a": array, "b": [1, b"x"]}, protocol=3)  # bytes as bytes, as in CIFAR's own
    assert b"numpy._core.multiarray" in new or b"numpy.core.multiarray" in new
    old = new.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")  # as NumPy 1 and CIFAR's own files spell it
    for data in (new, old):
        got = load_plain(data, "x")
        np.testing.assert_array_equal(got[b"a"], array)
        assert got["b"] == [1, b"x"]
    with pytest.raises(UnpickleError, match=r"it names builtins.eval, which is not numpy data"):
        load_plain(b"cbuiltins\neval\n(S'1'\ntR.", "x")
    huge = b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n(I99999999999\ntS'b'\ntR."
    with pytest.raises(UnpickleError, match=r"is not how numpy pickles an array"):
        load_plain(huge, "x")  # an empty array of 10^11 bytes is never allocated
    with pytest.raises(UnpickleError, match="persistent reference"):
        load_plain(b"P1\n.", "x")


def test_a_split_too_large_for_memory_is_refused_before_anything_is_decoded():
    from convlens.data.writer import check_size

    check_size("train", 60000, (28, 28))
    with pytest.raises(ConvlensError) as err:
        check_size("train", 50000, (224, 224, 3))
    assert str(err.value) == (
        "train: 50000 images of 224×224×3 pixels take 7.0 GiB, over the 4 GiB a split may (every stage holds it in "
        "memory); shrink them with data.resize=[H,W]"
    )
