"""Dataset examples that show where (issue 24 §4): each top image's patch around its peak, enlarged, beside the top
image whole with that patch outlined; where the patch is the whole image, the images as before."""

from __future__ import annotations

import numpy as np
import pytest

from convlens.analysis.examples import PATCH_COLUMNS, examples_grid, patch_cells
from convlens.analysis.receptive import peak_boxes, receptive_fields
from convlens.pipeline import paths
from convlens.pipeline.files import write_csv, write_json
from convlens.render import analyses as figures_analyses


def book_boxes(layer: str, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """The book model's boxes around map positions of ``layer`` on a 28 × 28 image."""
    conv = {"kernel_size": [3, 3], "strides": [1, 1], "padding": "same"}
    pool = {"pool_size": [2, 2], "strides": None, "padding": "valid"}
    chain = [
        ("Conv2D", {"name": "conv2d", **conv}),
        ("MaxPooling2D", {"name": "max_pooling2d", **pool}),
        ("Conv2D", {"name": "conv2d_1", **conv}),
        ("MaxPooling2D", {"name": "max_pooling2d_1", **pool}),
        ("Flatten", {"name": "flatten"}),
    ]
    return peak_boxes(receptive_fields(chain, (28, 28))[layer], rows, columns, (28, 28))


def test_a_patch_cut_by_the_images_edge_lies_where_the_image_goes_on():
    picture = np.arange(28 * 28, dtype=float).reshape(1, 28, 28)
    boxes = book_boxes("conv2d_1", np.array([[0, 5, 13]]), np.array([[0, 5, 13]]))  # corner, inside, far corner
    assert boxes.tolist() == [[[0, 0, 5, 5], [7, 7, 15, 15], [23, 23, 28, 28]]]
    cells = patch_cells(np.repeat(picture[:, np.newaxis], 3, axis=1), boxes)[0]
    assert cells.shape == (3, 8, 8)
    np.testing.assert_array_equal(cells[1], picture[0, 7:15, 7:15])  # a whole 8 × 8 field
    assert np.isnan(cells[0, :3]).all() and np.isnan(cells[0, :, :3]).all()  # the field's 3 rows above the image
    np.testing.assert_array_equal(cells[0, 3:, 3:], picture[0, :5, :5])
    np.testing.assert_array_equal(cells[2, :5, :5], picture[0, 23:, 23:])  # cut at the foot: against the top
    assert np.isnan(cells[2, 5:]).all()


@pytest.mark.parametrize("colour", [False, True])
def test_each_tile_holds_the_patches_enlarged_and_the_top_image_with_its_patch_outlined(colour):
    rng = np.random.default_rng(4)
    pictures = rng.random((3, 4, 28, 28, 3) if colour else (3, 4, 28, 28))
    rows, columns = rng.integers(0, 14, (2, 3, 4))
    boxes = book_boxes("conv2d_1", rows, columns)
    grid = examples_grid(pictures, columns=2, boxes=boxes)
    assert grid.patch == (8, 8) and grid.grid == (2, 2) and len(grid.outlines) == 3
    scale = 28 // 8  # each 8 × 8 patch drawn 3 × larger, about an image's size
    for c in range(3):
        top, left, bottom, right = grid.outlines[c]
        b = boxes[c, 0]
        np.testing.assert_array_equal(grid.image[top:bottom, left:right], pictures[c, 0, b[0] : b[2], b[1] : b[3]])
        tile_top, tile_left = (
            divmod(c, 2)[0] * (grid.tile[0] + grid.gutter),
            divmod(c, 2)[1] * (grid.tile[1] + grid.gutter),
        )
        cell = patch_cells(pictures, boxes)[c, 0]  # in the layer's 8 × 8 cell
        enlarged = cell.repeat(scale, axis=0).repeat(scale, axis=1)  # rank 0's patch: the tile's first cell
        drawn = grid.image[tile_top : tile_top + 8 * scale, tile_left : tile_left + 8 * scale]
        np.testing.assert_array_equal(np.isnan(drawn), np.isnan(enlarged))
        np.testing.assert_array_equal(drawn[~np.isnan(drawn)], enlarged[~np.isnan(enlarged)])
    assert grid.tile[1] > grid.tile[0] - grid.band  # the top image beside the patches: wider than tall
    if colour:
        assert grid.image.ndim == 3 and grid.image.shape[2] == 3


def test_where_the_patch_is_the_whole_image_the_tile_is_the_images():
    pictures = np.random.default_rng(5).random((2, 4, 28, 28))
    whole = np.broadcast_to(np.array([0, 0, 28, 28]), (2, 4, 4))
    plain, patched = examples_grid(pictures), examples_grid(pictures, boxes=whole)
    np.testing.assert_array_equal(plain.image, patched.image)
    assert patched.patch is None and len(patched.outlines) == 0 and patched.tile == plain.tile
    flat = book_boxes("flatten", np.zeros((2, 4), np.int64), np.zeros((2, 4), np.int64))  # a whole-input layer
    assert examples_grid(pictures, boxes=flat).patch is None


def test_render_dataset_draws_each_channels_patch_outline_and_peak(tmp_path, monkeypatch):
    """render_dataset's examples of a hand-made table whose boxes are conv2d's 3 × 3 fields: one red rectangle per
    channel, on its top image's patch; the caption carries the top image's peak; the title says what is shown."""
    from stages.render_dataset import examples_jobs

    saved = []
    monkeypatch.setattr(figures_analyses, "save_figure", lambda fig, path, dpi: saved.append(fig))
    root = tmp_path
    paths.images(root, "test").parent.mkdir(parents=True)
    np.save(paths.images(root, "test"), np.zeros((10, 28, 28), np.uint8))
    index = {"split": "test", "images": 10, "layers": ["conv2d"], "classes": ["a", "b"], "examples_by": "mean"}
    positions = np.array([[[4, 4], [0, 27]], [[27, 0], [10, 20]]])  # channel × rank × (row, column)
    boxes = book_boxes("conv2d", positions[..., 0], positions[..., 1])
    columns = ("channel", "rank", "image", "label", "activation", "tied", "peak", *PATCH_COLUMNS)
    rows = [(c, r, 3 * c + r, c, 0.5 - r / 10, 1, 2.25 - r, *boxes[c, r]) for c in range(2) for r in range(2)]
    for role in paths.ROLES:
        paths.examples_dir(root, role).mkdir(parents=True)
        write_json(paths.dataset_index(root, role), index)  # each model's own (render_dataset@<model> reads it)
        write_csv(paths.examples_table(root, role, "conv2d"), [dict(zip(columns, r, strict=True)) for r in rows])
    r = type("R", (), {"sample_cmap": "gray_r", "dpi": 20})()
    for job in (job for role in paths.ROLES for job in examples_jobs(tmp_path / "out", root, r, role)):
        job()  # here, where save_figure is watched
    assert len(saved) == 2
    for fig in saved:
        (ax,) = fig.axes
        assert [t.get_text() for t in ax.texts] == ["0: a 2/2 · 2.25", "1: b 2/2 · 2.25"]
        assert "3×3 patch around each image's peak" in fig.texts[0].get_text()
        outlines = [(p.get_y() + 0.5, p.get_x() + 0.5, p.get_height(), p.get_width()) for p in ax.patches]
        assert [o[2:] for o in outlines] == [(3, 3), (2, 2)]  # rank 0's fields: inside, and cut at the corner
        (image,) = ax.get_images()
        assert image.get_array().shape[1] > 2 * 28  # the patches beside the top image, not the images alone


def test_a_layer_whose_field_is_not_known_has_empty_patch_cells_and_says_so():
    """outside tester 3 #1: a layer convlens cannot follow got the whole image as its "patch", as if it saw it all."""
    from convlens.analysis.examples import example_rows, patch_note

    scores, images = np.array([[2.0, 1.0]]), np.array([[0, 1]])  # k = 1, two channels
    boxes = peak_boxes(None, np.zeros((1, 2)), np.zeros((1, 2)), (8, 8))
    peaks = (np.zeros((1, 2), np.int64), np.zeros((1, 2), np.int64), scores, boxes)
    rows = example_rows("pad", scores, images, np.array([3, 4]), peaks=peaks)
    assert all(row[name] is None for row in rows for name in PATCH_COLUMNS)  # empty cells in the CSV
    assert "receptive field is not known" in patch_note(None, known=False)
    assert "not known" not in patch_note(None) and "not known" not in patch_note((3, 3))
