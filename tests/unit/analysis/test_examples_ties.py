"""Ties in the dataset examples (issue 27 §5): the streamed top k counts the images that share a kept image's score,
the ones left out included, across batches; a tile whose last place falls inside a tie says so and names no class."""

from __future__ import annotations

import numpy as np
import pytest

from convlens.analysis.examples import (
    PATCH_COLUMNS,
    RunningTopK,
    cut_tie,
    cut_ties,
    example_rows,
    majority_caption,
    tie_note,
    tile_captions,
)
from convlens.pipeline import paths
from convlens.pipeline.files import write_csv, write_json
from convlens.render import analyses as figures_analyses


def stream(batches: list[list[float]], k: int) -> RunningTopK:
    """One channel's scores, batch by batch."""
    top = RunningTopK(k, 1)
    for batch in batches:
        top.update(np.array(batch, np.float32)[:, np.newaxis])
    return top


def test_a_tie_at_the_kth_score_counts_the_images_left_out_in_every_batch():
    # images 0..6 score 5, 2, 2 | 2, 2, 7 | 2: five images tie at 2, one of them kept (image 1, the lowest index)
    top = stream([[5, 2, 2], [2, 2, 7], [2]], k=3)
    scores, images = top.result()
    assert scores[:, 0].tolist() == [7, 5, 2] and images[:, 0].tolist() == [5, 0, 1]
    assert top.tied()[:, 0].tolist() == [1, 1, 5]


def test_when_the_kth_score_rises_the_images_tied_below_it_no_longer_count():
    top = stream([[1, 1, 1]], k=2)
    assert top.tied()[:, 0].tolist() == [3, 3]  # three 1s, two kept
    top.update(np.array([[3], [3]], np.float32))
    assert top.tied()[:, 0].tolist() == [2, 2]  # the 1s are gone: the two 3s tie, nothing left out
    top.update(np.array([[3]], np.float32))
    assert top.tied()[:, 0].tolist() == [3, 3]  # a third 3, left out (the higher index)


def test_a_kth_score_that_stays_keeps_its_earlier_left_out_ties():
    top = stream([[1, 1, 1], [4, 1]], k=2)  # the 4 pushes one 1 out; the k-th score is still 1
    assert top.result()[0][:, 0].tolist() == [4, 1]
    assert top.tied()[:, 0].tolist() == [1, 4]  # four 1s: one kept, three left out over two batches


def brute_tied(scores: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Per rank and channel, how many of all the images score what that rank's image scores (0.0 == -0.0)."""
    return np.array([[(scores[:, c] == kept[r, c]).sum() for c in range(kept.shape[1])] for r in range(len(kept))])


@pytest.mark.parametrize("batch_size", [1, 2, 3, 7, 40])
@pytest.mark.parametrize("k", [1, 4, 9])
def test_tie_counts_equal_a_count_over_every_image_whatever_the_batches(batch_size, k):
    rng = np.random.default_rng(batch_size * 100 + k)
    scores = rng.integers(-1, 3, (40, 4)).astype(np.float32)  # four values over 40 images: ties everywhere
    scores[::5, 0] = -0.0  # equal to 0.0: one tie
    scores[:, 3] = 0.5  # every image ties
    top = RunningTopK(k, 4)
    for start in range(0, len(scores), batch_size):
        top.update(scores[start : start + batch_size])
    kept, _ = top.result()
    np.testing.assert_array_equal(top.tied(), brute_tied(scores, kept))
    assert top.tied()[:, 3].tolist() == [40] * k


def test_the_examples_table_carries_each_rows_tie_count():
    top = stream([[5, 2, 2], [2, 2, 7], [2]], k=3)
    rows = example_rows("conv2d", *top.result(), np.arange(7) % 3, top.tied())
    assert [(r["image"], r["activation"], r["tied"]) for r in rows] == [(5, 7.0, 1), (0, 5.0, 1), (1, 2.0, 5)]


def test_a_cut_inside_a_tie_is_its_size_and_a_tie_inside_the_tile_is_no_cut():
    assert cut_tie([7, 5, 2], [1, 1, 5]) == 5  # one of five 2s shown
    assert cut_tie([0.0] * 9, [44] * 9) == 44  # the untrained channel whose top 44 images tie
    assert cut_tie([3, 3, 1], [2, 2, 1]) == 0  # the two 3s both shown, the last place is the 1's alone
    assert cut_tie([5, 5, 3], [2, 2, 2]) == 2  # same counts, but the 3 shares with one image left out
    assert cut_tie([2, 2, 2], [3, 3, 3]) == 0  # all the 2s are shown


def test_a_caption_at_a_cut_tie_says_tied_and_names_no_class():
    classes = ["T-shirt/top", "Trouser", "Sandal"]
    assert majority_caption(18, [2, 2, 2, 0], classes, tie=44) == "18: 44 tied"
    assert majority_caption(3, [2, 1, 2, 0], classes) == "3: Sandal 2/4"  # no tie: the majority, as before
    labels = np.array([[2, 2, 1], [1, 1, 0]])
    ties = cut_ties(np.array([[0.0, 0.0, 0.0], [3, 2, 1]]), np.array([[44, 44, 44], [1, 1, 1]]))
    assert ties.tolist() == [44, 0]
    assert tile_captions(labels, ties, classes) == ["0: 44 tied", "1: Trouser 2/3"]
    assert "first by index" in tie_note(ties) and tie_note(np.zeros(2, np.int64)) == ""


@pytest.fixture
def drawn(monkeypatch):
    saved = []
    monkeypatch.setattr(figures_analyses, "save_figure", lambda fig, path, dpi: saved.append(fig))
    return saved


def test_the_examples_figure_says_tied_on_the_tile_and_in_its_title(tmp_path, drawn):
    """render_dataset's examples of a hand-made table: channel 0's 3 top images are the first of 44 tied."""
    from stages.render_dataset import examples_jobs

    root = tmp_path
    images = np.zeros((50, 8, 8), np.uint8)
    paths.images(root, "test").parent.mkdir(parents=True)
    np.save(paths.images(root, "test"), images)
    index = {"split": "test", "images": 50, "layers": ["conv2d"], "classes": ["a", "b"], "examples_by": "max"}
    for role in paths.ROLES:
        paths.examples_dir(root, role).mkdir(parents=True)
        write_json(paths.dataset_index(root, role), index)  # each model's own (render_dataset@<model> reads it)
    rows = [(0, r, r, 1, 0.0, 44, 0.0) for r in range(3)] + [(1, r, r, r % 2, 9.0 - r, 1, 9.5 - r) for r in range(3)]
    rows = [(*r, 0, 0, 8, 8) for r in rows]  # each patch the whole image: the images are drawn, no outline
    columns = ("channel", "rank", "image", "label", "activation", "tied", "peak", *PATCH_COLUMNS)
    for role in paths.ROLES:
        write_csv(paths.examples_table(root, role, "conv2d"), [dict(zip(columns, r, strict=True)) for r in rows])
    r = type("R", (), {"sample_cmap": "gray_r", "dpi": 20})()
    for job in (job for role in paths.ROLES for job in examples_jobs(tmp_path / "out", root, r, role)):
        job()  # here, where save_figure is watched
    for fig in drawn:
        (ax,) = fig.axes
        assert [t.get_text() for t in ax.texts] == ["0: 44 tied · 0", "1: a 2/3 · 9.5"]
        assert "'n tied': n images share the last place" in fig.texts[0].get_text()
        assert "the number: the top image's peak activation" in fig.texts[0].get_text() and not ax.patches
