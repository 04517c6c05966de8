"""Grid layout and mosaics: many small maps (filters, feature maps) tiled into one image."""

from __future__ import annotations

import math

import numpy as np

from convlens.errors import ConvlensError
from convlens.schema import check_filter_range, check_input_channels


def grid_shape(n: int, columns: int | None = None) -> tuple[int, int]:
    """Rows × columns for ``n`` tiles; without ``columns``, the smallest power of two ≥ √n
    (32 → 4×8 and 64 → 8×8, as the book draws feature maps)."""
    if n < 1:
        raise ConvlensError(f"cannot lay out {n} tiles in a grid")
    if columns is None:
        columns = 1 << math.ceil(math.log2(math.sqrt(n))) if n > 1 else 1
    columns = min(columns, n)
    return math.ceil(n / columns), columns


RGB = 3  # channels of a colour image (the data's (N, H, W, 3) pixels, a colour model's input, an RGB kernel)


def input_tiles(inputs: np.ndarray) -> np.ndarray:
    """Images (N, H, W, C) as 2-D tiles (N, H, W): the one channel, or the mean of several."""
    return inputs[..., 0] if inputs.shape[-1] == 1 else inputs.mean(axis=-1)


def image_tiles(inputs: np.ndarray) -> np.ndarray:
    """Images (N, H, W, C) as they are seen: colour tiles (N, H, W, 3) when C is 3, else :func:`input_tiles`."""
    return inputs if inputs.shape[-1] == RGB else input_tiles(inputs)


def resolve_input_channels(mode: str, kernel: np.ndarray) -> str:
    """The mode a kernel (kh, kw, in, out) is drawn in: ``auto`` is ``rgb`` for exactly 3 input channels
    (a colour model's first layer), else ``first``; any other mode stays as it is."""
    return drawn_mode(mode, kernel.shape[2] if kernel.ndim == 4 else 0)


def drawn_mode(mode: str, input_channels: int) -> str:
    """:func:`resolve_input_channels` for a kernel with ``input_channels`` input channels."""
    check_input_channels(mode)
    if mode != "auto":
        return mode
    return "rgb" if input_channels == RGB else "first"


def filter_tiles(kernel: np.ndarray, input_channels: str = "first") -> tuple[np.ndarray, int | None]:
    """The 2-D tiles of a Conv2D kernel (kh, kw, in, out), and the column count they need, if fixed.

    ``first`` takes input channel 0 (the book's ``kernel[:, :, 0, i]``), ``mean`` averages the
    input channels, ``all`` gives one row per input channel and one column per filter; ``rgb`` gives
    colour tiles (out, kh, kw, 3) of a kernel with 3 input channels; ``auto``: :func:`resolve_input_channels`.
    """
    check_input_channels(input_channels)
    if kernel.ndim != 4:
        raise ConvlensError(f"a kernel of shape {kernel.shape} cannot be drawn as filters (need kh×kw×in×out)")
    input_channels = resolve_input_channels(input_channels, kernel)
    if input_channels == "rgb":
        if kernel.shape[2] != RGB:
            raise ConvlensError(
                f"render.input_channels=rgb needs kernels with 3 input channels, not {kernel.shape[2]} "
                f"(kernel {kernel.shape}); use auto (rgb where a kernel has 3, first elsewhere)"
            )
        return kernel.transpose(3, 0, 1, 2), None
    if input_channels == "first":
        return np.moveaxis(kernel[:, :, 0, :], -1, 0), None
    if input_channels == "mean":
        return np.moveaxis(kernel.mean(axis=2), -1, 0), None
    kh, kw, cin, cout = kernel.shape
    return kernel.transpose(2, 3, 0, 1).reshape(cin * cout, kh, kw), cout


def normalize_tiles(tiles: np.ndarray, vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """Scale tiles (n, h, w) or colour tiles (n, h, w, 3) to [0, 1]: to a fixed ``vmin``..``vmax`` (clipped),
    or each tile to its own min..max (all its colours together) as ``imshow`` does; a constant tile (a dead
    filter) maps to 0 without warnings."""
    tiles = np.nan_to_num(tiles.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if vmin is not None and vmax is not None:
        check_filter_range(vmin, vmax)
        return np.clip((tiles - vmin) / (vmax - vmin), 0.0, 1.0)
    axes = tuple(range(1, tiles.ndim))
    lo = tiles.min(axis=axes, keepdims=True)
    span = tiles.max(axis=axes, keepdims=True) - lo
    return np.divide(tiles - lo, span, out=np.zeros_like(tiles), where=span > 0)


def mosaic(tiles: np.ndarray, shape: tuple[int, int], gutter: int = 1) -> np.ndarray:
    """Tile (n, h, w) values into one (rows·(h+g)−g, cols·(w+g)−g) image, NaN in gutters and empty cells;
    colour tiles (n, h, w, 3) into one colour image (…, 3)."""
    n, h, w = tiles.shape[:3]
    rows, cols = shape
    if n > rows * cols:
        raise ConvlensError(f"{n} tiles do not fit a {rows}×{cols} grid")
    image = np.full((rows * (h + gutter) - gutter, cols * (w + gutter) - gutter, *tiles.shape[3:]), np.nan)
    for i in range(n):
        r, c = divmod(i, cols)
        image[r * (h + gutter) : r * (h + gutter) + h, c * (w + gutter) : c * (w + gutter) + w] = tiles[i]
    return image


FILTER_GUTTER = 1  # the gutter between filter tiles, in the kernel's pixels


def filter_grid(
    kernel: np.ndarray, input_channels: str, columns: int | None, vmin: float, vmax: float
) -> tuple[np.ndarray, tuple[int, int]]:
    """A Conv2D kernel's filters as one mosaic on a fixed ``vmin``..``vmax`` scale (the book's 2×16); colour
    filters (``rgb``) each min–max scaled to their own range instead, as AlexNet's first layer is drawn."""
    tiles, fixed_columns = filter_tiles(kernel, input_channels)
    grid = grid_shape(len(tiles), fixed_columns or columns)
    scaled = normalize_tiles(tiles) if tiles.ndim == 4 else normalize_tiles(tiles, vmin, vmax)
    return mosaic(scaled, grid, gutter=FILTER_GUTTER), grid


def depthwise_tiles(kernel: np.ndarray) -> np.ndarray:
    """A depthwise kernel's (DepthwiseConv2D's, SeparableConv2D's depthwise) filters: kh × kw × C × m has C·m of
    them, one 2-D filter per input channel and multiplier, not the ``m`` that :func:`filter_tiles` would take from
    input channel 0. The kernel read as kh × kw × 1 × (C·m): tile ``c·m + j`` is input channel ``c``'s ``j``-th
    filter (Keras's order of the layer's outputs)."""
    if kernel.ndim != 4:
        raise ConvlensError(f"a kernel of shape {kernel.shape} cannot be drawn as depthwise filters (need kh×kw×C×m)")
    kh, kw, channels, multiplier = kernel.shape
    return np.moveaxis(kernel.reshape(kh, kw, channels * multiplier), -1, 0)


def depthwise_grid(
    kernel: np.ndarray, columns: int | None, vmin: float, vmax: float
) -> tuple[np.ndarray, tuple[int, int]]:
    """A depthwise kernel's C·m filters (:func:`depthwise_tiles`) as one mosaic on ``vmin``..``vmax``, as
    :func:`filter_grid` draws a Conv2D's."""
    tiles = depthwise_tiles(kernel)
    grid = grid_shape(len(tiles), columns)
    return mosaic(normalize_tiles(tiles, vmin, vmax), grid, gutter=FILTER_GUTTER), grid


def feature_map_grid(maps: np.ndarray, columns: int | None) -> tuple[np.ndarray, tuple[int, int]]:
    """One sample's feature maps (H, W, C) as one mosaic, each map scaled to its own range."""
    tiles = np.moveaxis(maps, -1, 0)
    grid = grid_shape(len(tiles), columns)
    return mosaic(normalize_tiles(tiles), grid, gutter=map_gutter(tiles.shape[1])), grid


def map_gutter(height: int) -> int:
    """The gutter between feature maps ``height`` pixels high: one pixel per 14 (the book's 14 × 14 and 28 × 28
    maps: 1 and 2), at least one."""
    return max(1, height // 14)


def tile_origins(shape: tuple[int, ...], grid: tuple[int, int], gutter: int) -> tuple[tuple[int, int], np.ndarray]:
    """Where :func:`mosaic` put its tiles: the tile size (h, w) and each cell's top-left pixel (row, column), row
    major, in a mosaic of ``shape`` laid out as ``grid`` with ``gutter`` pixels between tiles."""
    rows, cols = grid
    h, w = (shape[0] + gutter) // rows - gutter, (shape[1] + gutter) // cols - gutter
    if h < 1 or w < 1 or rows * (h + gutter) - gutter != shape[0] or cols * (w + gutter) - gutter != shape[1]:
        raise ConvlensError(f"a mosaic of {shape[:2]} is not a {rows}×{cols} grid with {gutter}-pixel gutters")
    r, c = np.divmod(np.arange(rows * cols), cols)
    return (h, w), np.stack([r * (h + gutter), c * (w + gutter)], axis=1)


def filter_labels(kernel_shape: tuple[int, ...], input_channels: str) -> tuple[list[str], list[int]]:
    """The corner labels of a kernel's filter tiles (:func:`filter_tiles`' order, its resolved ``input_channels``
    mode): each tile its filter's index; under ``all`` (one row per input channel, one column per filter) only the
    top row carries the filter indices, and the rows' input channels are returned as the second list (else empty)."""
    filters = kernel_shape[-1]
    if input_channels != "all":
        return [str(i) for i in range(filters)], []
    rows = kernel_shape[2]
    return [str(i) for i in range(filters)] + [""] * (filters * (rows - 1)), list(range(rows))
