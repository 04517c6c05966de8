"""IDX files (the format of MNIST and Fashion-MNIST): bytes or a (gzip) stream in, arrays out; never more read than
the header declares, nor a header declaring more than ``IDX_CAP``."""

from __future__ import annotations

import gzip
import io
import math
import zlib
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import BinaryIO

import numpy as np

from convlens.errors import ConvlensError, size_text

IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class IdxError(ConvlensError):
    """The bytes are not a well-formed IDX file."""


# The most payload an IDX header may declare: 2 GiB, 45 times Fashion-MNIST's largest file (47 MB of training
# images) and 4 times EMNIST's (ByClass, 550 MB), the same bound as a model's weights. The whole split is held in
# memory by every stage that reads it, so the cap bounds them too; a header over it is a corrupt file or a bomb.
IDX_CAP = 2 << 30
CHUNK = 16 << 20  # bytes read at a time from a (gzip) stream
TRAILING = 1 << 20  # bytes past the declared payload counted for the message, at most


def idx_header(read: Callable[[int], bytes], source: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """The shape, dtype and header size an IDX stream declares, its header read with ``read(n)``."""
    magic = read(4)
    if len(magic) < 4:
        raise IdxError(f"{source}: {len(magic)} bytes is too short for an IDX header; re-download the file")
    zero, code, ndim = int.from_bytes(magic[0:2], "big"), magic[2], magic[3]
    if zero != 0 or code not in IDX_DTYPES:
        raise IdxError(
            f"{source}: bad IDX magic number 0x{magic.hex()} (want 0x0000 + type code + ndim); "
            "the file is not IDX data, check that data.files names the right file"
        )
    dims = read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise IdxError(f"{source}: header declares {ndim} dimensions but the file ends at byte {4 + len(dims)}")
    shape = tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
    return shape, IDX_DTYPES[code], 4 + 4 * ndim


def payload_size(shape: tuple[int, ...], dtype: np.dtype, source: str, cap: int = IDX_CAP) -> int:
    """The payload bytes ``shape`` of ``dtype`` needs, refused over ``cap`` before anything is read."""
    size = math.prod(shape) * dtype.itemsize  # Python ints: 4 dims of 2**32-1 cannot overflow
    if size > cap:
        raise IdxError(
            f"{source}: header shape {shape} declares {size_text(size)} of data, over the {size_text(cap)} an IDX "
            "file may hold (a corrupt header or a gzip bomb?); check that data.files names the right file"
        )
    return size


def read_idx_stream(stream: BinaryIO, source: str = "IDX data", cap: int = IDX_CAP) -> np.ndarray:
    """An IDX file read from ``stream`` into an array of the header's shape and dtype (native byte order).

    The header's shape says the payload size: a size over ``cap`` is refused before any payload is read, and no
    more than the payload and 1 byte (up to ``TRAILING`` to say how many) is ever read, so memory stays near the
    declared size whatever the stream would inflate to.
    """
    shape, dtype, _ = idx_header(stream.read, source)
    size = payload_size(shape, dtype, source, cap)
    try:  # NumPy refuses more than 64 dims, or dims whose non-zero product overflows, even with no data
        array = np.empty(shape, dtype.newbyteorder("="))
    except ValueError as e:
        raise IdxError(f"{source}: header shape {shape} cannot be an array ({e}); the file is corrupt") from e
    buffer, got = memoryview(array.reshape(-1)).cast("B"), 0
    while got < size and (n := stream.readinto(buffer[got : got + CHUNK])):
        got += n
    extra = len(stream.read(1)) and 1 + len(stream.read(TRAILING))
    if got != size or extra:
        has = f"more than {size + TRAILING}" if extra > TRAILING else str(got + extra)
        raise IdxError(
            f"{source}: header shape {shape} needs {size} payload bytes but the file has {has}; "
            "the file is truncated or corrupt, re-download it"
        )
    if not dtype.isnative:
        array.byteswap(inplace=True)  # the file's big-endian numbers, now native
    return array


def parse_idx(data: bytes, source: str = "IDX data") -> np.ndarray:
    """Parse an uncompressed IDX file into an array of the header's shape and dtype (its own writable copy)."""
    return read_idx_stream(io.BytesIO(data), source)


def read_idx(path: Path, cap: int = IDX_CAP) -> np.ndarray:
    """Read an IDX file, gunzipping it as it streams when its name ends in ``.gz`` (see :func:`read_idx_stream`)."""
    try:
        with open(path, "rb") as raw, gzip.open(raw, "rb") if path.suffix == ".gz" else nullcontext(raw) as stream:
            return read_idx_stream(stream, str(path), cap)
    except (OSError, EOFError, zlib.error) as e:
        raise IdxError(f"{path}: not a readable gzip file ({e}); delete it and fetch again") from e


def check_images_labels(images: np.ndarray, labels: np.ndarray, split: str) -> None:
    """A split is N images of H×W pixels and N labels."""
    if images.ndim != 3 or labels.ndim != 1:
        raise IdxError(f"{split}: expected images N×H×W and labels N, got {images.shape} and {labels.shape}")
    if len(images) != len(labels):
        raise IdxError(
            f"{split}: {len(images)} images but {len(labels)} labels; "
            "check that data.files names files that belong together"
        )
    if len(images) == 0:
        raise IdxError(f"{split}: the files hold no images; check data.files names the full data set")
