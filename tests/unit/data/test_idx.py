"""IDX files (``convlens.data.idx``): parsing every type, malformed headers with their full messages, random bytes
(hypothesis), and bad files through ``fetch_data``, which keeps the old data."""

import gzip
import hashlib
import io
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from convlens.data.idx import IdxError, check_images_labels, parse_idx, read_idx
from stages import fetch_data
from tests.support.helpers import DATA_FILES, cli, error_line, hidden, idx_bytes, one_line, snapshot


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_parse_round_trips_every_idx_type(dtype):
    array = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    parsed = parse_idx(idx_bytes(array))
    assert parsed.shape == (2, 3, 4)
    assert parsed.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(parsed, array)


def test_a_parsed_array_is_its_own_writable_copy():
    """Not a read-only view of the file's bytes: callers may scale or edit it in place."""
    data = bytearray(idx_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3)))
    parsed = parse_idx(bytes(data))
    assert parsed.flags.writeable and parsed.flags.owndata
    parsed[0, 0] = 200
    assert parse_idx(bytes(data))[0, 0] == 0


def test_read_idx_gunzips(tmp_path):
    labels = np.array([9, 0, 0, 3], dtype=np.uint8)
    path = tmp_path / "labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(labels)))
    np.testing.assert_array_equal(read_idx(path), labels)


MAGIC = " (want 0x0000 + type code + ndim); the file is not IDX data, check that data.files names the right file"
TRUNCATED = "the file is truncated or corrupt, re-download it"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "0 bytes is too short for an IDX header; re-download the file"),
        (
            b"\x01\x00\x08\x01\x00\x00\x00\x01\x00",
            "bad IDX magic number 0x01000801" + MAGIC,
        ),
        (
            b"\x00\x00\x07\x01\x00\x00\x00\x01\x00",
            "bad IDX magic number 0x00000701" + MAGIC,
        ),
        (b"\x00\x00\x08\x03\x00\x00", "header declares 3 dimensions but the file ends at byte 6"),
        (
            b"\x00\x00\x08\x01\x00\x00\x00\x05\x00\x00",
            "header shape (5,) needs 5 payload bytes but the file has 2; " + TRUNCATED,
        ),
        (
            b"\x00\x00\x08\x01\x00\x00\x00\x01\x00\x00",
            "header shape (1,) needs 1 payload bytes but the file has 2; " + TRUNCATED,
        ),
        # a whole header (4 bytes, 0 dimensions: one number) without its payload is truncated, not too short
        (b"\x00\x00\x08\x00", "header shape () needs 1 payload bytes but the file has 0; " + TRUNCATED),
        (  # 65 dimensions, one of them 0: no payload is due, but NumPy holds at most 64 dimensions
            b"\x00\x00\x08\x41" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x01" * 64,
            f"header shape {(0,) + (1,) * 64} cannot be an array (maximum supported dimension for an ndarray is "
            "currently 64, found 65); the file is corrupt",
        ),
    ],
)
def test_parse_rejects_malformed_headers(data, message):
    with pytest.raises(IdxError) as err:
        parse_idx(data)
    assert str(err.value) == f"IDX data: {message}"


def test_images_and_labels_must_pair():
    images = np.zeros((3, 28, 28), np.uint8)
    check_images_labels(images, np.zeros(3, np.uint8), "train")
    with pytest.raises(IdxError) as err:
        check_images_labels(images, np.zeros(2, np.uint8), "train")
    assert str(err.value) == "train: 3 images but 2 labels; check that data.files names files that belong together"
    with pytest.raises(IdxError, match="expected images"):
        check_images_labels(np.zeros((3, 784), np.uint8), np.zeros(3, np.uint8), "train")


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
HTML = b"<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>"  # an error page saved as the file


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


def _gzip_bomb(declared: np.ndarray, trailing: int) -> bytes:
    """An IDX file whose header declares ``declared``, then ``trailing`` zero bytes more: a few kB of gzip."""
    stream = io.BytesIO()
    with gzip.GzipFile(fileobj=stream, mode="wb", compresslevel=9, mtime=0) as f:
        f.write(idx_bytes(declared))
        for _ in range(trailing >> 20):
            f.write(bytes(1 << 20))
    return stream.getvalue()


def test_a_gzip_bomb_is_read_no_further_than_its_header_declares(tmp_path):
    """Issue 28 §6: a .gz inflating far past the 12 labels its header declares stops 1 MiB past them, its memory
    that of the 12 labels, not of everything it would inflate to."""
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(_gzip_bomb(np.zeros(12, np.uint8), 64 << 20))
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(IdxError) as err:
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert one_line(err) == (
        f"{path}: header shape (12,) needs 12 payload bytes but the file has more than {12 + (1 << 20)}; "
        "the file is truncated or corrupt, re-download it"
    )
    assert peak < 4 << 20  # 1 MiB counted past the payload, and gzip's buffers; not the 64 MiB it inflates to


@pytest.mark.parametrize(("declared", "error"), [(2 << 30, "truncated"), ((2 << 30) + 4, "over the cap")])
def test_a_header_declaring_more_than_2_gib_is_refused_before_any_payload_is_read(declared, error):
    """IDX_CAP: 2 GiB of payload (int32 labels here), 45 times Fashion-MNIST's largest file; one item more is
    refused at the header. At the cap the (missing) payload is looked for, and found truncated."""
    data = bytes([0, 0, 0x0C, 1]) + (declared // 4).to_bytes(4, "big")
    with pytest.raises(IdxError) as err:
        parse_idx(data)
    shape = f"IDX data: header shape ({declared // 4},)"
    messages = {
        "truncated": f"{shape} needs {declared} payload bytes but the file has 0; "
        "the file is truncated or corrupt, re-download it",
        "over the cap": f"{shape} declares 2.0 GiB of data, over the 2 GiB an IDX file may hold "
        "(a corrupt header or a gzip bomb?); check that data.files names the right file",
    }
    assert one_line(err) == messages[error]


def test_a_gzip_bomb_in_the_mirror_from_the_command_line(project, tiny_assets, tmp_path):
    """fetch_data, as a user runs it, on a mirror whose labels file declares 3 GB: one line, exit 1, no data."""
    bomb = gzip.compress(bytes([0, 0, 8, 1]) + (3_000_000_000).to_bytes(4, "big") + bytes(1 << 20))
    mirror, overrides = _mirror_with(tmp_path, tiny_assets, {"train_labels": bomb})
    done = cli(project, "fetch_data", *overrides, env={"CONVLENS_MIRROR": str(mirror)})
    assert error_line(done, "fetch_data") == (
        f"fetch_data: error: {mirror / 'fashion-mnist' / 'train-labels-idx1-ubyte.gz'}: header shape (3000000000,) "
        "declares 2.8 GiB of data, over the 2 GiB an IDX file may hold (a corrupt header or a gzip bomb?); "
        "check that data.files names the right file"
    )
    assert not (project / "outputs" / "data").exists()
