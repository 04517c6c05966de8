"""Dataset examples: each channel's top k images, streamed, against a full sort; the stage and its figures."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import yaml

from convlens.analysis.dataset import stream_pass
from convlens.analysis.examples import (
    MAX_IMAGES,
    PATCH_COLUMNS,
    RunningTopK,
    examples_grid,
    image_scores,
    majority_caption,
    peak_positions,
)
from convlens.errors import ConvlensError
from convlens.model.archive import open_model
from convlens.model.forward import load_network
from convlens.pipeline import paths
from convlens.pipeline.config import run_stage
from stages import check_config, dataset
from tests.support.helpers import PIPELINE, TINY_EXAMPLES


def brute_force(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per channel, every image sorted by (score descending, image index ascending), the first k."""
    order = [sorted(range(len(scores)), key=lambda i, c=c: (-scores[i, c], i))[:k] for c in range(scores.shape[1])]
    images = np.array(order).T
    return np.take_along_axis(scores, images, axis=0), images


def streamed(scores: np.ndarray, k: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    top = RunningTopK(k, scores.shape[1])
    for start in range(0, len(scores), batch_size):
        top.update(scores[start : start + batch_size])
    return top.result()


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 17, 40])
@pytest.mark.parametrize("k", [1, 3, 9])
def test_running_top_k_equals_a_full_sort_ties_to_the_lower_image(batch_size, k):
    rng = np.random.default_rng(batch_size * 10 + k)
    scores = rng.integers(-2, 2, (40, 5)).astype(np.float32)  # four values over 40 images: ties everywhere
    scores[::7, 1] = -0.0  # equal to 0.0
    scores[3, 2], scores[4, 3] = np.inf, -np.inf
    scores[:, 4] = 0.0  # a dead channel: all tied, the first k images win
    got_scores, got_images = streamed(scores, k, batch_size)
    want_scores, want_images = brute_force(scores, k)
    np.testing.assert_array_equal(got_images, want_images)
    np.testing.assert_array_equal(got_scores, want_scores)
    np.testing.assert_array_equal(got_images[:, 4], np.arange(k))


@pytest.mark.parametrize("by", ["max", "mean"])
@pytest.mark.parametrize("batch_size", [1, 4, 7, 30])
def test_top_images_of_feature_maps_by_max_and_by_mean(by, batch_size):
    rng = np.random.default_rng(7)
    maps = np.maximum(rng.normal(size=(30, 4, 3, 6)), 0).astype(np.float32)  # relu-like: zeros tie
    maps[5] = maps[11]  # two identical images: the same score, 5 first
    per_image = maps.reshape(30, -1, 6).astype(np.float64)
    full = per_image.max(axis=1) if by == "max" else per_image.mean(axis=1)
    top = RunningTopK(6, 6)
    for start in range(0, 30, batch_size):
        top.update(image_scores(maps[start : start + batch_size], by))
    scores, images = top.result()
    np.testing.assert_allclose(scores, brute_force(full, 6)[0], rtol=1e-6)
    np.testing.assert_array_equal(images, brute_force(image_scores(maps, by).astype(np.float64), 6)[1])
    if by == "max":
        np.testing.assert_array_equal(images, brute_force(full, 6)[1])  # a max is exact whatever the dtype


@pytest.mark.parametrize("batch_size", [1, 3, 7, 30])
def test_the_peak_positions_stay_with_their_images_through_the_stream(batch_size):
    """What rides beside the scores (each image's peak row, column and value) comes out rank by rank with its
    image, and is numpy's argmax of that image's map."""
    rng = np.random.default_rng(3)
    maps = np.maximum(rng.normal(size=(30, 5, 4, 3)), 0).astype(np.float32)
    maps[:, :, :, 2] = 0.0  # a dead channel: every position ties, the peak is the first, (0, 0)
    top = RunningTopK(4, 3)
    for start in range(0, 30, batch_size):
        part = maps[start : start + batch_size]
        top.update(image_scores(part, "mean"), (*peak_positions(part), part.max(axis=(1, 2))))
    _, images = top.result()
    rows, columns, peaks = top.kept()
    for (r, c), image in np.ndenumerate(images):
        want = np.unravel_index(np.argmax(maps[image, :, :, c]), (5, 4))
        assert (rows[r, c], columns[r, c]) == want and peaks[r, c] == maps[image, :, :, c].max()
    assert rows[:, 2].tolist() == [0] * 4 and columns[:, 2].tolist() == [0] * 4
    assert peak_positions(np.ones((2, 3)))[0].tolist() == [[0, 0, 0], [0, 0, 0]]  # no positions: (0, 0)


def test_fewer_images_than_k_keeps_them_all_and_k_below_one_is_refused():
    top = RunningTopK(5, 2)
    top.update(np.array([[1.0, 2.0], [3.0, 2.0]], np.float32))
    scores, images = top.result()
    assert scores.tolist() == [[3.0, 2.0], [1.0, 2.0]] and images.tolist() == [[1, 0], [0, 1]]
    with pytest.raises(ConvlensError, match="dataset.examples.k must be at least 1"):
        RunningTopK(0, 2)
    with pytest.raises(ConvlensError, match="not one of max, mean"):
        image_scores(np.zeros((1, 2, 2, 3)), "median")


def test_examples_grid_puts_each_channels_images_in_its_own_tile():
    pictures = np.arange(3 * 4 * 2 * 2, dtype=float).reshape(3, 4, 2, 2) / 48  # 3 channels × 4 images of 2 × 2
    grid = examples_grid(pictures, columns=2)
    assert grid.grid == (2, 2) and grid.tile == (5 + grid.band, 5)  # 2 × 2 images, 1-pixel gutter, caption band
    g = grid.gutter
    tile = grid.image[grid.tile[0] + g :, : grid.tile[1]]  # row 1, column 0: channel 2
    np.testing.assert_array_equal(tile[:2, :2], pictures[2, 0])
    np.testing.assert_array_equal(tile[3:5, 3:5], pictures[2, 3])
    assert np.isnan(tile[5:, :]).all()  # the caption band
    assert np.isnan(grid.image[grid.tile[0] + g :, grid.tile[1] + g :]).all()  # no fourth channel


def test_a_caption_names_the_channel_and_its_most_frequent_class():
    assert majority_caption(3, [2, 1, 2, 0], ["a", "b", "c"]) == "3: c 2/4"
    assert majority_caption(0, [1, 0], ["a", "b"]) == "0: a 1/2"  # a tie: the lower class
    assert majority_caption(1, [5, 5, 0], ["a", "b"]) == "1: 5 2/3"  # a label beyond the class names: its number


def test_sort_keys_decode_to_their_scores_and_images_whatever_the_sign():
    from convlens.analysis.examples import decode_keys, sort_keys

    scores = np.array([[-2.5, 0.0], [3.0, -0.0], [-np.inf, 1e-38], [np.inf, -1e-38]], dtype=np.float32)
    keys = sort_keys(scores, 7)
    got, images = decode_keys(keys)
    np.testing.assert_array_equal(got, scores)
    assert got.dtype == np.float32 and images.tolist() == [[7, 7], [8, 8], [9, 9], [10, 10]]
    order = np.argsort(-keys[:, 0].astype(np.float64), kind="stable")
    assert scores[order, 0].tolist() == [np.inf, 3.0, -2.5, -np.inf]  # larger key, larger score


def test_stream_pass_examples_match_the_whole_split_at_once(project, run_pipeline):
    """The streamed top images of the tiny model equal a full sort of one forward pass over every image."""
    run_pipeline(project, stages=PIPELINE[:2])
    images = np.load(project / "outputs" / "data" / "test_images.npy")
    labels = np.load(project / "outputs" / "data" / "test_labels.npy").astype(np.int64)
    names = ["conv2d", "max_pooling2d_1"]
    network = load_network(open_model(project, "trained"), upto=names[-1])
    whole = network.activations(images / np.float32(255), names)
    for by in ("max", "mean"):
        tables, _ = stream_pass(network, images, labels, names, 10, 255.0, 4, "test", (3, by))
        for name, maps in zip(names, whole, strict=True):
            scores, order = brute_force(image_scores(maps, by), 3)
            np.testing.assert_array_equal(tables[name]["example_images"], order)
            np.testing.assert_allclose(tables[name]["example_scores"], scores, rtol=1e-6)
            for (r, c), image in np.ndenumerate(order):  # the peak of that image's map, by numpy's argmax
                row, column = np.unravel_index(np.argmax(maps[image, :, :, c]), maps.shape[1:3])
                assert (tables[name]["example_peak_rows"][r, c], tables[name]["example_peak_columns"][r, c]) == (
                    row,
                    column,
                ), (by, name, r, c)
                assert tables[name]["example_peaks"][r, c] == maps[image, :, :, c].max()
        if by == "mean":  # rank 0 by mean is the channel's top image mean
            np.testing.assert_allclose(tables["conv2d"]["example_scores"][0], tables["conv2d"]["top_image_mean"])


def test_the_stage_writes_each_layers_examples_and_render_dataset_draws_them(project, run_pipeline):
    run_pipeline(project, stages=[m for m in PIPELINE if m.__name__ != "stages.render_maps"])
    labels = np.load(project / "outputs" / "data" / "test_labels.npy")
    for role in ("trained", "untrained"):
        for stem in ("conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1"):
            path = paths.examples_table(project, role, stem)
            with open(path, encoding="utf-8", newline="") as f:
                rows = list(csv.DictReader(f))
            columns = ["layer", "channel", "rank", "image", "label", "activation", "tied"]
            assert list(rows[0]) == [*columns, "peak_row", "peak_column", "peak", *PATCH_COLUMNS]
            # the book's fields (3×3, 4×4, 8×8, 10×10; jumps 1, 2, 2, 4) around each peak, clipped to the image
            size, jump, start = {"conv2d": (3, 1, -1), "max_pooling2d": (4, 2, -1), "conv2d_1": (8, 2, -3)}.get(
                stem, (10, 4, -3)
            )
            for r in rows:
                first = [start + int(r[axis]) * jump for axis in ("peak_row", "peak_column")]
                want = [max(first[0], 0), max(first[1], 0), min(first[0] + size, 28), min(first[1] + size, 28)]
                assert [int(r[c]) for c in PATCH_COLUMNS] == want, (stem, r)
            channels = 4 if stem.endswith("conv2d") or stem == "max_pooling2d" else 8
            assert len(rows) == channels * TINY_EXAMPLES
            assert [int(r["rank"]) for r in rows[:TINY_EXAMPLES]] == list(range(TINY_EXAMPLES))
            for r in rows:
                assert int(r["label"]) == labels[int(r["image"])] and r["layer"] == stem
            activations = [float(r["activation"]) for r in rows[:TINY_EXAMPLES]]
            assert activations == sorted(activations, reverse=True)
            figure = project / "outputs" / "figures" / "dataset" / role / "examples" / f"{role}_{stem}.png"
            assert figure.stat().st_size > 2000


def edit_params(root, **values) -> None:
    """params.yaml edited by hand (``dataset__examples__k=0``), as a user would before ``dvc repro``."""
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    for key, value in values.items():
        *parents, last = key.split("__")
        node = params
        for part in parents:
            node = node[part]
        node[last] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"dataset__examples__k": 0},
            "dataset.examples.k must be an integer in 1..1024, got 0; e.g. dataset.examples.k=9",
        ),
        ({"dataset__examples__by": "median"}, "dataset.examples.by must be one of max, mean, got 'median'"),
        (
            {"dataset__examples__k": 6, "dataset__limit": 5},
            "dataset.examples.k=6 is more than the dataset.limit=5 images streamed; "
            "use dataset.examples.k=5 or less, or a larger dataset.limit",
        ),
    ],
)
def test_bad_examples_params_fail_at_check_config_in_one_line(project, values, message, monkeypatch, capsys):
    edit_params(project, **values)
    monkeypatch.chdir(project)
    with pytest.raises(SystemExit) as exit_:
        run_stage("check_config", check_config.run, argv=[])
    assert exit_.value.code == 1
    assert capsys.readouterr().err.endswith(f"check_config: error: {message}\n")
    assert not (project / "outputs" / "checked_config.txt").exists()


def test_more_examples_than_the_splits_images_fail_before_any_output(project, run_pipeline, monkeypatch, capsys):
    """check_config cannot know the split's size: the dataset pass says it, before writing anything."""
    run_pipeline(project, stages=PIPELINE[:5])
    edit_params(project, dataset__examples__k=7)
    monkeypatch.chdir(project)
    with pytest.raises(SystemExit):
        run_stage("dataset", dataset.run, argv=["untrained"])
    # the last line: logging may have written noise about an earlier test's closed stream before it
    assert capsys.readouterr().err.splitlines()[-1] == (
        "dataset@untrained: error: dataset.examples.k=7 is more than the 6 test images streamed; "
        "use dataset.examples.k=6 or less"
    )
    assert not (project / "outputs" / "metrics" / "dataset").exists()


def test_a_stream_of_more_images_than_a_sort_key_can_index_is_refused():
    top = RunningTopK(2, 3)
    top.update(np.ones((2, 3), np.float32))
    top.seen = MAX_IMAGES - 1  # as if 2**32 - 1 images had been streamed
    with pytest.raises(ConvlensError) as err:
        top.update(np.ones((2, 3), np.float32))
    assert str(err.value) == "more than 4,294,967,296 images; use dataset.limit"
