"""The climb of activation maximization (TensorFlow): the stopping rule on a real ascent, each regularizer's
effect, selectivity of a hand-built model, and the mosaic marking failed channels."""

import numpy as np
import pytest
from PIL import Image

from convlens.render.analyses import MARK_GLYPHS, activation_max_legend, labelled_mosaic_figure, tile_labels
from tests.support.helpers import tiny_model

FREE = {"learning_rate": 0.05, "jitter": 0, "blur_every": 0, "blur_sigma": 0.5, "decay": 0.0, "seed": 0}


def pointwise(weights: list[float], biases: list[float]):
    """A 1×1 Conv2D with ReLU on a 6×6 gray input: channel k = relu(w_k·x + b_k) at every pixel."""
    from convlens.model.keras_models import keras

    conv = keras.layers.Conv2D(len(weights), 1, activation="relu", name="conv")
    model = keras.Sequential([keras.Input((6, 6, 1)), conv])
    conv.set_weights([np.array(weights, np.float32).reshape(1, 1, 1, -1), np.array(biases, np.float32)])
    return model


def test_the_ascent_stops_once_the_objective_plateaus():
    from convlens.analysis.gradients import Ascent, climb

    model = pointwise([1.0, 2.0], [0.0, 0.0])  # mean(x) and 2·mean(x): all white within a few steps, then flat
    start = np.full((2, 6, 6, 1), 0.5)
    done = climb(
        model, "conv", start, 1.0, Ascent(steps=500, **{**FREE, "learning_rate": 0.2}, tolerance=1e-3, window=4)
    )
    assert done.converged and len(done.curve) < 500 and len(done.curve) % 4 == 0
    np.testing.assert_allclose(done.after, [1.0, 2.0], rtol=1e-6)  # the maximum: every pixel white
    assert done.curve.shape == (len(done.curve), 2)
    np.testing.assert_allclose(done.curve[-1], done.after, rtol=1e-6)  # the curve ends at the objective reached


def test_the_ascent_hits_the_step_cap_while_it_still_climbs():
    from convlens.analysis.gradients import Ascent, climb, noise_start

    model = tiny_model(seed=5)
    start = noise_start(4, (28, 28, 1), 1.0, 0)
    slow = Ascent(steps=12, **{**FREE, "learning_rate": 0.002}, tolerance=1e-6, window=3)  # tiny steps: still rising
    done = climb(model, "conv2d", start, 1.0, slow)
    assert not done.converged and done.curve.shape == (12, 4)
    assert (done.after > done.before).all()
    never = climb(model, "conv2d", start, 1.0, Ascent(steps=12, **FREE))  # tolerance 0: every step, no check
    assert not never.converged and len(never.curve) == 12


def climbed(**options):
    """A tiny model's conv2d inputs after 30 steps from seeded noise with ``options``."""
    from convlens.analysis.gradients import Ascent, climb, noise_start

    model = tiny_model(seed=5)
    return climb(model, "conv2d", noise_start(4, (28, 28, 1), 1.0, 0), 1.0, Ascent(steps=30, **{**FREE, **options}))


def test_the_total_variation_penalty_smooths_and_the_l2_penalty_darkens():
    from convlens.analysis.gradients import total_variation

    plain, smooth, dark = climbed(), climbed(tv=1.0), climbed(l2=1.0)
    tv = {name: total_variation(d.x).numpy().mean() for name, d in (("plain", plain), ("tv", smooth))}
    assert tv["tv"] < 0.8 * tv["plain"], tv
    assert (dark.x**2).mean() < 0.9 * (plain.x**2).mean()
    assert (plain.after >= smooth.after).mean() >= 0.5  # the penalties cost activation, mostly


def test_with_the_stopping_rule_each_channel_keeps_its_best_input_never_worse_than_its_start():
    from convlens.analysis.gradients import Ascent, climb

    model = pointwise([1.0, -1.0], [0.0, 1.0])
    start = np.stack([np.ones((6, 6, 1)), np.zeros((6, 6, 1))])  # each channel's maximum already
    wild = Ascent(steps=8, **{**FREE, "learning_rate": 5.0, "jitter": 1}, tolerance=1e-3, window=2)
    done = climb(model, "conv", start, 1.0, wild)
    assert (done.after >= done.before).all()
    np.testing.assert_allclose(done.after, [1.0, 1.0], rtol=1e-6)


def test_zoom_and_rotation_change_the_climb_and_keep_the_input_range():
    from convlens.analysis.gradients import affine

    plain, zoomed, turned = climbed(), climbed(scale=0.2), climbed(rotate=20.0)
    for done in (zoomed, turned):
        assert not np.allclose(done.x, plain.x) and done.x.min() >= 0 and done.x.max() <= 1
    np.testing.assert_allclose(affine(1.0, 0.0, (28, 28)), [1, 0, 0, 0, 1, 0, 0, 0], atol=1e-6)  # the identity
    half = affine(2.0, 0.0, (5, 5))  # zoom ×2 about the centre: output (4, 4) reads input (3, 3)
    assert half[0] * 4 + half[2] == pytest.approx(3.0) and half[4] * 4 + half[5] == pytest.approx(3.0)


def test_selectivity_of_a_hand_built_model_whose_answer_is_known():
    from convlens.analysis.ascent import selectivity
    from convlens.analysis.gradients import Ascent, activation_matrix, maximize_layer, noise_start

    opposite = pointwise([1.0, -1.0], [0.0, 1.0])  # channel 0 wants white, channel 1 black: each its own input
    same = pointwise([1.0, 2.0], [0.0, 0.0])  # both want white: channel 0's input excites channel 1 as much
    ascent = Ascent(steps=40, **{**FREE, "learning_rate": 0.2})
    for model, want in ((opposite, 1.0), (same, 0.0)):
        got = maximize_layer(model, "conv", [noise_start(2, (6, 6, 1), 1.0, 0)], 1.0, ascent)
        np.testing.assert_allclose(got.matrix, activation_matrix(model, "conv", got.x), rtol=1e-6)
        assert selectivity(got.matrix) == want, got.matrix


def test_several_starts_keep_each_channels_best_and_report_the_first():
    from convlens.analysis.gradients import Ascent, maximize_layer

    model = pointwise([1.0, -1.0], [0.0, 1.0])
    black, white = np.zeros((2, 6, 6, 1)), np.ones((2, 6, 6, 1))
    got = maximize_layer(model, "conv", [black, white], 1.0, Ascent(steps=1, **{**FREE, "learning_rate": 1e-6}))
    np.testing.assert_allclose(got.achieved, [[0.0, 1.0], [1.0, 0.0]], atol=1e-5)  # each start, barely moved
    np.testing.assert_allclose(got.after, [1.0, 1.0], atol=1e-5)
    assert got.x[0].mean() > 0.99 and got.x[1].mean() < 0.01  # channel 0 keeps white, channel 1 black


def red_pixels(path) -> np.ndarray:
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return (rgb[..., 0] > 200) & (rgb[..., 1] < 60) & (rgb[..., 2] < 60)


def test_failed_channels_are_marked_in_red_and_every_tile_carries_its_activation(tmp_path):
    tiles = np.random.default_rng(0).random((2, 12, 12))
    labels = tile_labels([0.0, 1.23456])
    assert labels == ["0: 0", "1: 1.23"]
    clean, marked = tmp_path / "clean.png", tmp_path / "marked.png"
    labelled_mosaic_figure(tiles, clean, "gray_r", "t", labels, 2, (0.0, 1.0), 80, ["", ""], "pixel")
    labelled_mosaic_figure(tiles, marked, "gray_r", "t", labels, 2, (0.0, 1.0), 80, ["dead", ""], "pixel")
    assert not red_pixels(clean).any()
    red = red_pixels(marked)
    _, cols = np.nonzero(red)
    assert red.sum() > 50 and cols.max() < red.shape[1] / 2  # the border and × of tile 0, the left one
    below = tmp_path / "below.png"
    labelled_mosaic_figure(tiles, below, "gray_r", "t", labels, 2, (0.0, 1.0), 80, ["", "below"], "pixel")
    _, right = np.nonzero(red_pixels(below))
    assert right.min() > cols.max()  # tile 1's mark, right of tile 0's
    legend = activation_max_legend(["dead", "below", "below", ""], "black 0, white 1")
    assert f"{MARK_GLYPHS['dead']} ascent stayed at 0: 1" in legend and f"{MARK_GLYPHS['below']}" in legend
    assert "above 0 but below the mean activation of its best dataset image: 2" in legend  # dead ones not counted


def test_the_colour_bar_widens_the_figure_of_gray_tiles_only(tmp_path):
    tiles = np.random.default_rng(0).random((2, 12, 12))
    plain, barred = tmp_path / "plain.png", tmp_path / "bar.png"
    labelled_mosaic_figure(tiles, plain, "gray_r", "t", ["0", "1"], 2, (0.0, 1.0), 50)
    labelled_mosaic_figure(tiles, barred, "gray_r", "t", ["0", "1"], 2, (0.0, 1.0), 50, (), "pixel")
    assert Image.open(barred).width > Image.open(plain).width
