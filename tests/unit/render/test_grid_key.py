"""Grids a reader can read (issue 24 §3): each tile's index in its corner and a colourbar with the value range on the
filter and feature-map grids, and neither moves a tile: the book's 2×16, 4×8 and 8×8 grids land on the same pixels
with the key as without it. Checked on the matplotlib layer drawn over a mosaic and on the PNG's pixels."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import pytest
from matplotlib.colors import to_hex
from PIL import Image

from convlens.errors import ConvlensError
from convlens.render.figures import (
    BAR_INCHES,
    FILTER_TILE_INCHES,
    MAP_TILE_INCHES,
    TITLE_INCHES,
    filter_key,
    index_marks,
    map_key,
    mosaic_figure,
    mosaic_layer,
    mosaic_scale,
)
from convlens.render.grids import feature_map_grid, filter_grid, filter_labels, map_gutter, mosaic, tile_origins
from convlens.render.language import Strings, figure_language

RNG = np.random.default_rng(24)


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def book_grids():
    """The book's three grid layouts: conv2d's 32 filters (2×16 on ±0.5), conv2d's 32 maps of 28 × 28 (4×8) and
    conv2d_1's 64 maps of 14 × 14 (8×8), with their keys and tile sizes."""
    kernel = RNG.normal(0, 0.3, (3, 3, 1, 32))
    filters, grid = filter_grid(kernel, "first", 16, -0.5, 0.5)
    yield "filters", filters, grid, FILTER_TILE_INCHES, filter_key(kernel.shape, "first", -0.5, 0.5)
    for shape in ((28, 28, 32), (14, 14, 64)):
        maps = RNG.gamma(1.0, 0.3, shape) * (RNG.random(shape[-1]) > 0.1)  # some dead (all-zero) maps
        image, grid = feature_map_grid(maps, None)
        yield f"maps{shape[-1]}", image, grid, MAP_TILE_INCHES, map_key(maps)


BOOK = list(book_grids())


def index_collections(fig):
    """The tile indices' outline and glyph collections of a layer (``mosaic_layer``)."""
    found = {artist.get_gid(): artist for artist in fig.artists}
    return found.get("tile-index-outline"), found.get("tile-index")


def label_boxes(fig) -> list[tuple[int, int, int, int]]:
    """Each index's pixel box (top, bottom, left, right) in the PNG (rows down from the top), its outline and a
    pixel of anti-aliasing included."""
    outline, _ = index_collections(fig)
    if outline is None:
        return []
    height = round(fig.get_size_inches()[1] * fig.dpi)
    margin = outline.get_linewidth()[0] * fig.dpi / 72 / 2 + 1
    boxes = []
    for path in outline.get_paths():
        box = path.get_extents()
        top, bottom = height - box.y1 - margin, height - box.y0 + margin
        boxes.append((int(top), int(np.ceil(bottom)), int(box.x0 - margin), int(np.ceil(box.x1 + margin))))
    return boxes


def test_tile_origins_are_where_the_mosaic_put_each_tile():
    tiles = RNG.random((7, 5, 3))
    image = mosaic(tiles, (2, 4), gutter=2)
    (h, w), origins = tile_origins(image.shape, (2, 4), 2)
    assert (h, w) == (5, 3) and origins.tolist()[:5] == [[0, 0], [0, 5], [0, 10], [0, 15], [7, 0]]
    for tile, (r, c) in zip(tiles, origins, strict=False):
        np.testing.assert_array_equal(image[r : r + h, c : c + w], tile)
    with pytest.raises(ConvlensError, match=r"is not a 2×4 grid with 1-pixel gutters"):
        tile_origins(image.shape, (2, 4), 1)


def test_filter_labels_are_the_filter_indices_and_under_all_the_top_row_and_each_rows_input_channel():
    assert filter_labels((3, 3, 1, 32), "first") == ([str(i) for i in range(32)], [])
    assert filter_labels((3, 3, 3, 4), "rgb") == (["0", "1", "2", "3"], [])
    labels, rows = filter_labels((3, 3, 2, 3), "all")  # 2 input channels × 3 filters: 2 rows of 3
    assert labels == ["0", "1", "2", "", "", ""] and rows == [0, 1]


@pytest.mark.parametrize(("name", "image", "grid", "inches", "key"), BOOK, ids=[b[0] for b in BOOK])
def test_each_tile_of_the_books_grids_carries_its_index_in_its_top_left_corner(name, image, grid, inches, key):
    dpi = 100
    scale = mosaic_scale(image, inches, grid, dpi)
    marks = index_marks(image.shape, grid, scale, key, dpi)
    assert [m.text for m in marks] == [str(i) for i in range(grid[0] * grid[1])] and {m.anchor for m in marks} == {
        "top"
    }
    (h, w), origins = tile_origins(image.shape, grid, key.gutter)
    assert {m.size for m in marks} == {min(0.2 * min(h, w) * scale, 9 * dpi / 72)}  # a fifth of the tile, ≤ 9 pt
    fig = mosaic_layer("t", image.shape, grid, scale, "viridis", dpi, key)
    assert [t.get_text() for t in fig.texts] == ["t"]
    outline, glyphs = index_collections(fig)
    assert len(outline.get_paths()) == len(glyphs.get_paths()) == len(marks)
    top = round(TITLE_INCHES * dpi)
    for (row, column), box in zip(origins, label_boxes(fig), strict=True):
        tile_top, tile_left = top + row * scale, column * scale  # the tile's pixels in the PNG
        assert tile_top <= box[0] and box[1] <= tile_top + h * scale // 2  # in the tile's upper half…
        assert tile_left <= box[2] and box[3] <= tile_left + w * scale // 2  # …and its left half
    # white glyphs over a black outline: legible on the darkest and the lightest colour
    assert to_hex(glyphs.get_facecolor()[0]) == "#ffffff" and to_hex(outline.get_edgecolor()[0]) == "#000000"


def test_the_filter_grid_has_a_colourbar_of_the_fixed_range_with_arrows_for_the_clipped_weights():
    _, image, grid, inches, key = BOOK[0]
    fig = mosaic_layer("t", image.shape, grid, mosaic_scale(image, inches, grid, 100), "viridis", 100, key)
    (bar,) = fig.axes
    colourbar = bar._colorbar
    assert (colourbar.norm.vmin, colourbar.norm.vmax) == (-0.5, 0.5) and colourbar.cmap.name == "viridis"
    assert colourbar.extend == "both" and bar.get_xlabel() == "weight"
    fig.canvas.draw()
    assert [t.get_text() for t in bar.get_xticklabels()] == ["−0.50", "−0.25", "0.00", "0.25", "0.50"]  # both ends
    height = fig.get_size_inches()[1] * 100
    assert bar.get_position().y1 * height < round(BAR_INCHES * 100)  # in the band under the mosaic


def test_the_map_grid_colourbar_says_each_map_runs_from_its_own_min_to_its_own_max():
    maps = np.zeros((14, 14, 4))
    maps[3, 3, 0], maps[5, 5, 2] = 2.5, -0.125  # channels 1 and 3 dead
    key = map_key(maps)
    assert key.labels == ["0", "1", "2", "3"] and key.gutter == map_gutter(14) == 1
    assert (key.bar.low, key.bar.high, key.bar.ends) == (0.0, 1.0, ("its min", "its max"))
    assert key.bar.label == "activation, each map on its own range (this image's maps: -0.125 to 2.5)"
    image, grid = feature_map_grid(maps, None)
    fig = mosaic_layer("t", image.shape, grid, 10, "magma", 80, key)
    colourbar = fig.axes[0]._colorbar
    assert (colourbar.norm.vmin, colourbar.norm.vmax, colourbar.extend) == (0.0, 1.0, "neither")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["its min", "its max"]
    with figure_language("ko"):  # the page's language: the catalogue's Korean words
        ko = map_key(maps).bar
    t = Strings("ko")
    assert ko.label == t("map_colorbar", low="-0.125", high="2.5") and ko.ends == (t("map_min"), t("map_max"))


@pytest.mark.parametrize(("name", "image", "grid", "inches", "key"), BOOK, ids=[b[0] for b in BOOK])
def test_the_key_moves_no_tile_of_the_books_grids(tmp_path, name, image, grid, inches, key):
    """With and without the key, the PNG is as wide, its mosaic starts at the same pixel, and every pixel of it is
    the same except under an index; the colourbar has a band of its own under the mosaic."""
    dpi = 100
    mosaic_figure(image, tmp_path / "plain.png", "viridis", "t", inches, grid, dpi)
    mosaic_figure(image, tmp_path / "keyed.png", "viridis", "t", inches, grid, dpi, key)
    plain, keyed = pixels(tmp_path / "plain.png"), pixels(tmp_path / "keyed.png")
    scale, top = mosaic_scale(image, inches, grid, dpi), round(TITLE_INCHES * dpi)
    assert plain.shape == (top + image.shape[0] * scale, image.shape[1] * scale, 3)
    assert keyed.shape == (plain.shape[0] + round(BAR_INCHES * dpi), plain.shape[1], 3)
    layer = mosaic_layer("t", image.shape, grid, scale, "viridis", dpi, key)
    under_labels = np.zeros(plain.shape[:2], bool)
    for r0, r1, c0, c1 in label_boxes(layer):
        under_labels[max(r0, 0) : r1, max(c0, 0) : c1] = True
    body = slice(top, plain.shape[0])
    same = np.all(keyed[body] == plain[body], axis=-1)
    assert same[~under_labels[body]].all()
    assert not same.all()  # the indices are drawn
    expected = mpl.colormaps["viridis"].with_extremes(bad="white")(image, bytes=True)[..., :3]
    expected = np.repeat(np.repeat(expected, scale, axis=0), scale, axis=1)
    np.testing.assert_array_equal(plain[body], expected)  # the tiles where the layout puts them
    (h, w), origins = tile_origins(image.shape, grid, key.gutter)
    assert len(origins) == grid[0] * grid[1] == {"filters": 32, "maps32": 32, "maps64": 64}[name]
    for r, c in origins:  # each tile's lower-right quarter, clear of its index: the tile's own colours
        rows = slice(top + (r + h // 2) * scale, top + (r + h) * scale)
        columns = slice((c + w // 2) * scale, (c + w) * scale)
        np.testing.assert_array_equal(keyed[rows, columns], expected[rows.start - top : rows.stop - top, columns])


def test_the_all_mode_labels_its_columns_filters_and_its_rows_input_channels():
    kernel = RNG.normal(0, 0.3, (3, 3, 2, 3))
    image, grid = filter_grid(kernel, "all", 16, -0.5, 0.5)
    key = filter_key(kernel.shape, "all", -0.5, 0.5)
    assert grid == (2, 3) and list(key.row_labels) == ["in 0", "in 1"]
    marks = index_marks(image.shape, grid, 30, key, 100)
    texts = [(m.text, m.anchor) for m in marks]
    assert texts == [("0", "top"), ("1", "top"), ("2", "top"), ("in 0", "bottom"), ("in 1", "bottom")]
    boxes = label_boxes(mosaic_layer("t", image.shape, grid, 30, "viridis", 100, key))
    (h, _), origins = tile_origins(image.shape, grid, 1)
    for (r, c), box in zip(origins[::3], boxes[3:], strict=True):  # each row's first tile, its bottom-left corner
        assert c == 0 and box[1] <= 50 + (r + h) * 30 and box[0] >= 50 + (r + h // 2) * 30


def test_colour_filters_get_their_indices_and_no_colourbar():
    kernel = RNG.normal(0, 0.3, (3, 3, 3, 4))
    image, grid = filter_grid(kernel, "rgb", 16, -0.5, 0.5)
    key = filter_key(kernel.shape, "rgb", -0.5, 0.5)
    assert key.bar is None and list(key.labels) == ["0", "1", "2", "3"]
    fig = mosaic_layer("t", image.shape, grid, 30, "viridis", 100, key)
    assert not fig.axes and [m.text for m in index_marks(image.shape, grid, 30, key, 100)] == ["0", "1", "2", "3"]
    assert len(index_collections(fig)[1].get_paths()) == 4


def test_tiles_too_small_for_a_legible_number_get_none_but_keep_their_colourbar():
    _, image, grid, inches, key = BOOK[0]
    dpi = 30  # a 3 × 3 filter of 27 pixels: a number of 5.4 pixels (its em), its digits 4
    scale = mosaic_scale(image, inches, grid, dpi)
    assert index_marks(image.shape, grid, scale, key, dpi) == []
    fig = mosaic_layer("t", image.shape, grid, scale, "viridis", dpi, key)
    assert index_collections(fig) == (None, None) and len(fig.axes) == 1
    assert len(index_marks(image.shape, grid, mosaic_scale(image, inches, grid, 60), key, 60)) == 32  # 42-px tiles


def tile_runs(line: np.ndarray) -> list[tuple[int, int]]:
    """The (start, length) of each run of non-white pixels along one line of RGB pixels: the tiles it crosses."""
    coloured = np.concatenate([[False], ~np.all(line == 255, axis=-1), [False]])
    edges = np.flatnonzero(np.diff(coloured.astype(np.int8)))
    return [(int(a), int(b - a)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def test_the_books_grid_figures_from_the_stages_keep_the_books_layout_tile_for_tile(tmp_path):
    """The book's filter figures (trained and untrained conv2d, 2×16) and feature-map figures (conv2d 4×8, conv2d_1
    8×8), drawn by the stages with the book's render settings: along a line through the tiles' middles, the PNG
    crosses exactly the book's columns and rows of tiles, each where the layout puts it."""
    from omegaconf import OmegaConf

    from convlens.pipeline import paths
    from convlens.pipeline.files import write_json
    from stages import render_maps
    from stages.render_figures import draw_kernel

    book = OmegaConf.load("conf/render/book.yaml")
    figures = {}
    for role in paths.ROLES:
        draw_kernel(tmp_path, role, "conv2d", RNG.normal(0, 0.2, (3, 3, 1, 32)), book)
        figures[f"{role} filters"] = (tmp_path / paths.filters_figure_name(role, "conv2d"), (2, 16), 3, 1)
    root = tmp_path / "project"
    write_json(paths.classes(root), [f"class {i}" for i in range(10)])
    cfg = OmegaConf.create({"render": book, "report": {"language": "en"}})
    for layer, (size, channels) in {"conv2d": (28, 32), "conv2d_1": (14, 64)}.items():
        write_json(paths.map_layer(root, layer), {"name": layer, "split": "train", "samples": [0], "labels": [9]})
        for role in paths.ROLES:
            np.save(paths.maps(root, layer, role), RNG.gamma(1.0, 0.3, (1, size, size, channels)))
        render_maps.run(cfg, root, layer)
        grid = (4, 8) if channels == 32 else (8, 8)
        for role in paths.ROLES:
            figures[f"{role} {layer} maps"] = (paths.map_figure(root, layer, role, 0), grid, size, map_gutter(size))
    assert len(figures) == 6
    top = round(TITLE_INCHES * book.dpi)
    for name, (path, (rows, columns), tile, gutter) in figures.items():
        drawn = pixels(path)
        scale = round(
            columns
            * (FILTER_TILE_INCHES if tile == 3 else MAP_TILE_INCHES)
            * book.dpi
            / (columns * (tile + gutter) - gutter)
        )
        pitch, middle = (tile + gutter) * scale, tile * scale // 2
        across = tile_runs(drawn[top + middle])  # through the first row of tiles
        down = tile_runs(drawn[top : top + rows * pitch, middle])  # through the first column
        assert across == [(c * pitch, tile * scale) for c in range(columns)], name
        assert down == [(r * pitch, tile * scale) for r in range(rows)], name
        assert drawn.shape[:2] == (
            top + rows * pitch - gutter * scale + round(BAR_INCHES * book.dpi),
            columns * pitch - gutter * scale,
        ), name
