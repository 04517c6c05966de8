"""IDX files (the format of MNIST and Fashion-MNIST): bytes in, arrays out."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from convlens.errors import ConvlensError

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


def parse_idx(data: bytes, source: str = "IDX data") -> np.ndarray:
    """Parse an uncompressed IDX file into an array of the header's shape and dtype."""
    if len(data) < 4:
        raise IdxError(f"{source}: {len(data)} bytes is too short for an IDX header; re-download the file")
    zero, code, ndim = int.from_bytes(data[0:2], "big"), data[2], data[3]
    if zero != 0 or code not in IDX_DTYPES:
        raise IdxError(
            f"{source}: bad IDX magic number 0x{data[:4].hex()} (want 0x0000 + type code + ndim); "
            "the file is not IDX data, check that data.files names the right file"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError(f"{source}: header declares {ndim} dimensions but the file ends at byte {len(data)}")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = IDX_DTYPES[code]
    expected = math.prod(shape) * dtype.itemsize  # Python ints: 4 dims of 2**32-1 cannot overflow
    if len(data) - header != expected:
        raise IdxError(
            f"{source}: header shape {shape} needs {expected} payload bytes but the file has "
            f"{len(data) - header}; the file is truncated or corrupt, re-download it"
        )
    try:  # NumPy refuses more than 64 dims, or dims whose non-zero product overflows, even with no data
        array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    except ValueError as e:
        raise IdxError(f"{source}: header shape {shape} cannot be an array ({e}); the file is corrupt") from e
    return array.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file, gunzipping it when its name ends in ``.gz``."""
    try:
        raw = path.read_bytes()
        data = gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (OSError, EOFError, zlib.error) as e:
        raise IdxError(f"{path}: not a readable gzip file ({e}); delete it and fetch again") from e
    return parse_idx(data, str(path))


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
