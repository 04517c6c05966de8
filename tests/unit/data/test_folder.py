"""Image folders (``convlens.data.folder``) through ``write_dataset``: PNG, JPEG and BMP, gray and colour, Keras's
layouts, streamed into the memmap; every hostile or broken folder is one line and nothing decoded into memory whole."""

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convlens.data import folder
from tests.support.datasets import data_config, image_folder, refused, rgb, write, write_image


def gray(n: int, side: int = 6, seed: int = 0) -> list[np.ndarray]:
    return list(np.random.default_rng(seed).integers(0, 256, (n, side, side), dtype=np.uint8))


def by_label(images: np.ndarray, labels: np.ndarray) -> dict[int, list[bytes]]:
    """Each class's images as sorted bytes: what a split holds, whatever its order."""
    return {int(k): sorted(i.tobytes() for i, lab in zip(images, labels, strict=True) if lab == k) for k in set(labels)}


def test_train_and_test_folders_are_read_as_they_are(tmp_path):
    top = tmp_path / "pics"
    train = {"cat": gray(3, seed=1), "dog": gray(2, seed=2)}
    test = {"cat": gray(1, seed=3), "dog": gray(2, seed=4)}
    image_folder(top / "train", train)
    image_folder(top / "test", test, suffix=".bmp")
    (top / "train" / "cat" / ".DS_Store").write_bytes(b"\0junk")  # hidden files are skipped
    (top / "README.md").write_text("not a class", encoding="utf-8")  # files beside the class folders too
    got = write(tmp_path, data_config("folder", path=str(top)))
    assert got["classes"] == ["cat", "dog"]
    for split, classes in (("train", train), ("test", test)):
        want = {label: sorted(i.tobytes() for i in classes[name]) for label, name in enumerate(("cat", "dog"))}
        assert by_label(got[f"{split}_images"], got[f"{split}_labels"]) == want
        assert got[f"{split}_images"].dtype == np.uint8 and got[f"{split}_labels"].dtype == np.uint8


def test_a_folder_without_train_and_test_is_split_by_the_seed(tmp_path):
    top = tmp_path / "pics"
    files = image_folder(top, {"a": gray(6, seed=1), "b": gray(4, seed=2)})
    data = data_config("folder", path=str(top), test_fraction=0.3, seed=7)
    first, again = write(tmp_path, data), write(tmp_path, data, "again")
    assert {k: v.tobytes() for k, v in first.items() if k != "classes"} == {
        k: v.tobytes() for k, v in again.items() if k != "classes"
    }
    assert len(first["test_labels"]) == 3 and len(first["train_labels"]) == 7
    everything = sorted(i.tobytes() for i in (*first["train_images"], *first["test_images"]))
    assert everything == sorted(p.tobytes() for p in files.values())  # every image once, in one split
    other = write(tmp_path, data_config("folder", path=str(top), test_fraction=0.3, seed=8), "other")
    assert other["test_images"].tobytes() != first["test_images"].tobytes()


def test_jpeg_and_colour_images_keep_their_channels(tmp_path):
    top = tmp_path / "pics"
    pixels = rgb(4, side=16, seed=3)
    for i, image in enumerate(pixels):
        write_image(top / ("red" if i % 2 else "blue") / f"{i}.jpg", image)
    got = write(tmp_path, data_config("folder", path=str(top), test_fraction=0.25))
    assert got["train_images"].shape == (3, 16, 16, 3)
    decoded = {np.asarray(Image.open(p)).tobytes() for p in top.rglob("*.jpg")}  # JPEG is lossy: as Pillow decodes
    assert {i.tobytes() for i in (*got["train_images"], *got["test_images"])} == decoded
    assert got["classes"] == ["blue", "red"]


def test_resize_and_color_turn_mixed_folders_into_one_shape(tmp_path):
    top = tmp_path / "pics"
    small, big = gray(1, side=4)[0], rgb(1, side=8, seed=1)[0]
    write_image(top / "a" / "small.png", small)
    write_image(top / "b" / "big.png", big)
    got = write(tmp_path, data_config("folder", path=str(top), resize=[5, 6], color="gray", test_fraction=0.5))
    images = {
        int(label): image
        for label, image in zip(
            [*got["train_labels"], *got["test_labels"]], [*got["train_images"], *got["test_images"]], strict=True
        )
    }
    bilinear = Image.Resampling.BILINEAR
    np.testing.assert_array_equal(images[0], np.asarray(Image.fromarray(small).resize((6, 5), bilinear)))
    np.testing.assert_array_equal(images[1], np.asarray(Image.fromarray(big).convert("L").resize((6, 5), bilinear)))


STREAMED = """
import sys, tracemalloc
from pathlib import Path
from convlens.data.sources import write_dataset
from tests.support.datasets import data_config
root = Path(sys.argv[1])
for name in ("warm", "pics"):  # the first pass imports what reading needs: modules are not pixels
    (root / name / "out").mkdir()
    data = data_config("folder", path=str(root / name / "in"))
    tracemalloc.start()
    write_dataset(data, root / name, root / name / "out")
    print(tracemalloc.get_traced_memory()[1])
    tracemalloc.stop()
"""


def test_a_large_folder_is_streamed_not_held_in_memory(tmp_path):
    """The peak of Python's allocations while 2.9 MB of pixels are read stays a fraction of them. Measured in a fresh
    interpreter after a small warm-up pass: other tests' threads and first imports are not the reader's memory."""
    for name, count in (("warm", 3), ("pics", 120)):
        for c in "ab":
            for i in range(count):
                write_image(tmp_path / name / "in" / c / f"{i}.png", np.full((64, 64, 3), i, np.uint8))
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", STREAMED, str(tmp_path)], cwd=root, capture_output=True, text=True, check=True
    )
    peak = int(done.stdout.split()[-1])
    total = 240 * 64 * 64 * 3  # 2.9 MB of pixels
    assert peak < total / 3, peak
    assert np.load(tmp_path / "pics" / "out" / "train_images.npy").shape == (192, 64, 64, 3)


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


GOOD = _png(gray(1)[0])  # noise: its pixel data outweighs its header


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda top: (top / "a" / "x.png").write_bytes(GOOD[:-40]),
            "x.png is not a readable image (image file is truncated",
        ),
        (
            lambda top: (top / "a" / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40),
            "x.png is not a readable PNG, JPEG or BMP image",
        ),
        (
            lambda top: (top / "a" / "x.png").write_bytes(b""),
            "x.png is empty (0 bytes); remove it or replace it with the image",
        ),
        (
            lambda top: (top / "a" / "notes.txt").write_text("hi", encoding="utf-8"),
            "holds 1 file(s) in its class folders that are not PNG, JPEG or BMP images (a/notes.txt); remove them "
            "or move them out of",
        ),
        (
            lambda top: (top / "a" / "x.png").write_bytes(b"GIF89a" + b"\0" * 30),
            "x.png is not a readable PNG, JPEG or BMP image",
        ),
        (lambda top: (top / "c").mkdir(), "c holds no images; remove it or add its images"),
        (lambda top: (top / "a" / "x.png").symlink_to("/etc/hostname"), "x.png is a link leading out of"),
        (lambda top: (top / "c").symlink_to(top.parent), "c is a link leading out of"),
        (lambda top: (top / "c").symlink_to(top.parent), "; put a copy of the folder in its place"),
        (lambda top: (top / "a" / "x.png").symlink_to(top / "a" / "gone.png"), "x.png is a broken link (to"),
        (
            lambda top: (top / "a" / "sub").symlink_to(top / "b"),
            "a/sub is a link to a folder, which convlens does not follow; copy the folder in its place, as Keras "
            "reads it with follow_links=True, or remove the link, as with follow_links=False (the default)",
        ),
        (
            lambda top: (top / "c").symlink_to(top / "a"),
            "c is a link to a folder, which convlens does not follow; copy the folder in its place (Keras reads a "
            "linked class folder as a class)",
        ),
        (lambda top: (top / "a" / "x.png").symlink_to(top / "b" / "0.png"), None),  # a link inside the folder: read
        (lambda top: os.mkfifo(top / "a" / "x.png"), "x.png is not a regular file; remove it from"),
        (lambda top: write_image(top / "a" / "x.png", np.zeros((7, 6), np.uint8)), "is 6×6 but"),
        (lambda top: write_image(top / "a" / "x.png", np.zeros((6, 6, 3), np.uint8)), "is gray but"),
    ],
    ids=[
        "truncated",
        "corrupt",
        "zero-bytes",
        "not-an-image",
        "gif",
        "empty-class",
        "link-out",
        "folder-link-out",
        "folder-link-out-wording",
        "broken-link",
        "subfolder-link",
        "class-folder-link",
        "link-inside",
        "fifo",
        "mixed-sizes",
        "mixed-colour",
    ],
)
def test_broken_and_hostile_folders_are_one_line(tmp_path, make, message):
    top = tmp_path / "pics"
    image_folder(top, {"a": gray(2), "b": gray(2, seed=1)})
    make(top)
    data = data_config("folder", path=str(top))
    if message is None:
        assert len(write(tmp_path, data)["classes"]) == 2
    else:
        assert message in refused(tmp_path, data)


@pytest.mark.parametrize(("suffix", "fmt"), [(".png", "GIF"), (".jpg", "TIFF"), (".bmp", "WEBP"), (".png", "ICO")])
def test_an_image_of_another_format_under_an_allowed_name_is_named_with_its_format(tmp_path, suffix, fmt):
    top = tmp_path / "pics"
    image_folder(top, {"a": gray(2), "b": gray(2, seed=1)})
    Image.fromarray(gray(1)[0]).save(top / "a" / f"x{suffix}", format=fmt)
    assert refused(tmp_path, data_config("folder", path=str(top))).endswith(
        f"a/x{suffix} is a {fmt} image, not a PNG, JPEG or BMP one, whatever its name; save it as PNG (or JPEG or "
        "BMP) or remove it"
    )


@pytest.mark.parametrize(("split", "depth"), [("", 2), ("train/", 3)], ids=["classes", "train-test"])
def test_every_file_that_is_not_an_image_is_named_in_one_line_with_the_command_that_lists_them(tmp_path, split, depth):
    top = tmp_path / "my pics"
    image_folder(top / split, {"a": gray(2), "b": gray(2, seed=1)})
    if split:
        image_folder(top / "test", {"a": gray(1, seed=2), "b": gray(1, seed=3)})
    others = ["a/Thumbs.db", "a/notes.txt", "b/deep/desktop.ini", "b/x.gif", "b/y.PNG.txt"]
    for name in others:
        (top / split / name).parent.mkdir(parents=True, exist_ok=True)
        (top / split / name).write_bytes(b"x")
    for skipped in ("a/.DS_Store", ".git/notes.txt", "README.md", *(["train/README.md"] if split else [])):
        (top / skipped).parent.mkdir(parents=True, exist_ok=True)
        (top / skipped).write_bytes(b"x")  # hidden, or beside the class folders: not read, not named
    message = refused(tmp_path, data_config("folder", path=str(top)))
    named = [f"{split}{name}" for name in others]
    assert message.startswith(
        f"{top} holds 5 file(s) in its class folders that are not PNG, JPEG or BMP images "
        f"({', '.join(named[:3])} and 2 more); remove them or move them out of {top}; list them all: "
    )
    command = message.split("list them all: ")[1]
    listed = subprocess.run(command, shell=True, capture_output=True, text=True, check=True).stdout.split()
    assert sorted(listed) == [f"./{name}" for name in named]


def test_mixed_sizes_name_both_files_and_the_fix(tmp_path):
    top = tmp_path / "pics"
    write_image(top / "a" / "0.png", np.zeros((6, 6), np.uint8))
    write_image(top / "b" / "0.png", np.zeros((6, 6), np.uint8))
    write_image(top / "b" / "1.png", np.zeros((7, 5), np.uint8))
    message = refused(tmp_path, data_config("folder", path=str(top), seed=0, test_fraction=0.5))
    sizes = {f"{top}/a/0.png is 6×6", f"{top}/b/0.png is 6×6", f"{top}/b/1.png is 7×5"}
    first, second = message.split(" but ")
    assert first in sizes and second.split(";")[0] in sizes and "7×5" in message
    assert message.endswith("the images must have one size: set data.resize=[H,W] to resize them all")


def test_decompression_bombs_are_refused_before_decoding(tmp_path, monkeypatch):
    top = tmp_path / "pics"
    image_folder(top, {"a": gray(3, side=40), "b": gray(2, side=40, seed=1)})
    monkeypatch.setattr(folder, "MAX_PIXELS", 1000)
    assert refused(tmp_path, data_config("folder", path=str(top))).endswith(
        "declares 40×40 pixels, over the 1000 an image may have; refused as a decompression bomb: shrink the image"
    )
    monkeypatch.undo()
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # Pillow's own check: its warning (over) and error (2× over)
    assert "declares too many pixels (Image size (1600 pixels) exceeds limit of 1000 pixels" in refused(
        tmp_path, data_config("folder", path=str(top))
    )


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        (["train/a/0.png"], "has train/ but no test/; add"),
        (["train/a/0.png", "test/b/0.png"], "train/ and test/ must have the same class folders; a, b is in one only"),
        (["0.png"], "has no class folders; put each class's images in DIR/<class>/"),
        (["a/0.png", "a/1.png", "b/0.png", "b/1.png"], "holds 4 image(s); data.test_fraction=0.2 of them makes 0 test"),
    ],
)
def test_folder_layouts_that_cannot_be_read(tmp_path, layout, message):
    top = tmp_path / "pics"
    for name in layout:
        write_image(top / name, np.zeros((4, 4), np.uint8))
    assert message in refused(tmp_path, data_config("folder", path=str(top)))
    (tmp_path / "file").write_text("x", encoding="utf-8")
    assert refused(tmp_path, data_config("folder", path=str(tmp_path / "file"))).endswith(
        "is a regular file; point it at a folder of class folders"
    )


def test_labels_beyond_data_classes_name_the_folder(tmp_path):
    top = tmp_path / "pics"
    image_folder(top, {"a": gray(3), "b": gray(3, seed=1)})
    message = refused(tmp_path, data_config("folder", path=str(top), classes=["only"]))
    assert f"labels go up to 1 (the class folders of {top.resolve()}) but there are 1 classes" in message
