import gzip

import numpy as np
import pytest

from convlens.idx import IdxError, check_images_labels, parse_idx, read_idx
from tests.helpers import idx_bytes


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_parse_round_trips_every_idx_type(dtype):
    array = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    parsed = parse_idx(idx_bytes(array))
    assert parsed.shape == (2, 3, 4)
    assert parsed.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(parsed, array)


def test_read_idx_gunzips(tmp_path):
    labels = np.array([9, 0, 0, 3], dtype=np.uint8)
    path = tmp_path / "labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(labels)))
    np.testing.assert_array_equal(read_idx(path), labels)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "too short"),
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x00", "magic number"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x00", "magic number"),
        (b"\x00\x00\x08\x03\x00\x00", "ends at byte"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05\x00\x00", "truncated"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x01\x00\x00", "truncated"),
    ],
)
def test_parse_rejects_malformed_headers(data, message):
    with pytest.raises(IdxError, match=message):
        parse_idx(data)


def test_read_idx_rejects_non_gzip(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(IdxError, match="not a readable gzip"):
        read_idx(path)


def test_images_and_labels_must_pair():
    images = np.zeros((3, 28, 28), np.uint8)
    check_images_labels(images, np.zeros(3, np.uint8), "train")
    with pytest.raises(IdxError, match="3 images but 2 labels"):
        check_images_labels(images, np.zeros(2, np.uint8), "train")
    with pytest.raises(IdxError, match="expected images"):
        check_images_labels(np.zeros((3, 784), np.uint8), np.zeros(3, np.uint8), "train")
