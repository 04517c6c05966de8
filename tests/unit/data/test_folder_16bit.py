"""16-bit PNGs in an image folder are made 8-bit as TensorFlow's ``decode_png(dtype=uint8)`` makes them (and with it
``image_dataset_from_directory``), bit for bit: each value's high byte, never clipped to white; a mode convlens cannot
make 8-bit faithfully is one line naming the file."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convlens.data import folder
from tests.support.datasets import data_config, write

EDGES = [0, 1, 255, 256, 257, 32767, 32768, 65279, 65280, 65535]


@pytest.fixture(scope="module")
def tf():
    import tensorflow

    return tensorflow


def sixteen_bit(seed: int, channels: int, side: int = 10) -> np.ndarray:
    """Random uint16 pixels (H×W×channels), the edge values in the first row."""
    pixels = np.random.default_rng(seed).integers(0, 1 << 16, (side, side, channels), dtype=np.uint16)
    pixels[0, : len(EDGES), 0] = EDGES
    return pixels


def save_png(tf, path: Path, pixels: np.ndarray) -> Path:
    """``pixels`` as a real 16-bit PNG (TensorFlow's encoder writes 16 bits per channel for uint16)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.io.encode_png(pixels).numpy())
    return path


def tf_decoded(tf, path: Path, channels: int) -> np.ndarray:
    """What ``tf.io.decode_png(..., dtype=tf.uint8)`` makes of the file (H×W for one channel)."""
    pixels = tf.io.decode_png(path.read_bytes(), channels=channels, dtype=tf.uint8).numpy()
    return pixels[..., 0] if channels == 1 else pixels


@pytest.mark.parametrize(
    ("channels", "color", "tf_channels"),
    [(1, "keep", 1), (1, "gray", 1), (1, "rgb", 3), (3, "keep", 3), (3, "rgb", 3), (4, "rgb", 3)],
)
def test_16bit_pngs_decode_as_tensorflow_decodes_them(tmp_path, tf, channels, color, tf_channels):
    path = save_png(tf, tmp_path / "a.png", sixteen_bit(channels, channels))
    entry = folder.measured(folder.Entry(path, 0))
    shape = folder.common_shape({"train": [entry]}, None, color)
    got = folder.decode(entry, shape, None, color)
    want = tf_decoded(tf, path, tf_channels)
    assert got.dtype == np.uint8 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    if channels == 1:
        edges = got[0, : len(EDGES)] if got.ndim == 2 else got[0, : len(EDGES), 1]
        assert edges.tolist() == [0, 0, 0, 1, 1, 127, 128, 254, 255, 255]  # the high byte, v >> 8


def test_16bit_pngs_are_resized_after_they_are_made_8bit(tmp_path, tf):
    wide = save_png(tf, tmp_path / "wide.png", sixteen_bit(5, 1, side=12))
    narrow = tmp_path / "narrow.png"  # the same image as TensorFlow makes it 8-bit, saved as an 8-bit PNG
    Image.fromarray(tf_decoded(tf, wide, 1)).save(narrow)
    for color, shape in (("gray", (5, 7)), ("rgb", (5, 7, 3))):
        got, want = (folder.decode(folder.Entry(p, 0), shape, [5, 7], color) for p in (wide, narrow))
        np.testing.assert_array_equal(got, want)


def test_a_folder_of_16bit_gray_pngs_is_not_white(tmp_path, tf):
    """The outside tester's folder: 16-bit gray PNGs with data.color=rgb, once 99.6 % white."""
    top = tmp_path / "pics"
    files = {
        save_png(tf, top / name / f"{i}.png", sixteen_bit(10 * k + i, 1)): name
        for k, name in enumerate(("a", "b"))
        for i in range(3)
    }
    got = write(tmp_path, data_config("folder", path=str(top), color="rgb", test_fraction=0.3))
    images = np.concatenate([got["train_images"], got["test_images"]])
    assert images.shape == (6, 10, 10, 3)
    assert sorted(i.tobytes() for i in images) == sorted(tf_decoded(tf, f, 3).tobytes() for f in files)
    assert (images == 255).mean() < 0.05


@pytest.mark.parametrize("mode", ["I;16", "I;16L", "I;16B", "I"])
def test_every_16bit_gray_mode_keeps_the_high_byte(mode):
    values = np.array([EDGES], dtype=np.uint16)
    picture = Image.new(mode, (len(EDGES), 1))
    picture.putdata(EDGES)
    assert np.asarray(picture).astype(np.int64).tolist() == [EDGES]  # the mode holds the values as they are
    made = folder.eight_bit(picture, Path("x.png"))
    assert made.mode == "L"
    assert np.asarray(made).tolist() == (values >> 8).tolist()


@pytest.mark.parametrize(
    ("picture", "message"),
    [
        (Image.new("F", (2, 2), 0.5), "x.png has Pillow mode F, which convlens cannot make 8-bit"),
        (Image.new("I", (2, 2), 70000), "x.png holds pixels from 70000 to 70000 (Pillow mode I), outside the 16-bit"),
        (Image.new("I", (2, 2), -1), "x.png holds pixels from -1 to -1 (Pillow mode I)"),
    ],
)
def test_modes_that_cannot_be_made_8bit_faithfully_are_one_line(picture, message):
    with pytest.raises(folder.FolderError) as err:
        folder.eight_bit(picture, Path("x.png"))
    assert message in str(err.value) and "\n" not in str(err.value)
