"""A colour model's gradients, issue 22 §4: activation maximization climbs in the three input channels of a model
that takes (H, W, 3), and Grad-CAM reads colour images."""

import numpy as np

from convlens.render.grids import image_tiles
from tests.support.helpers import tiny_rgb_model

SIZE = 12


def test_the_ascent_of_a_colour_model_moves_only_the_channels_the_model_reads():
    from convlens.analysis.gradients import Ascent, maximize_channels

    model = tiny_rgb_model(SIZE, red_only=True)  # the first kernel reads red only, positively

    def ascend(steps):
        ascent = Ascent(steps=steps, learning_rate=0.05, jitter=0, blur_every=0, blur_sigma=0.5, decay=0.0, seed=0)
        return maximize_channels(model, "conv2d", (SIZE, SIZE, 3), 1.0, ascent)

    start, _, _ = ascend(0)
    x, before, after = ascend(6)
    assert x.shape == start.shape == (4, SIZE, SIZE, 3)  # one colour input per channel of conv2d
    assert not np.allclose(start[..., 0], start[..., 1])  # the gray noise is drawn for each colour
    np.testing.assert_array_equal(x[..., 1:], start[..., 1:])  # green and blue: no gradient, not moved
    assert (x[..., 0].mean(axis=(1, 2)) > start[..., 0].mean(axis=(1, 2)) + 0.1).all()  # red climbs for every filter
    assert (after > before).all() and x.min() >= 0 and x.max() <= 1


def test_a_colour_models_optimized_inputs_differ_per_channel_and_are_drawn_as_colour_tiles():
    from convlens.analysis.gradients import Ascent, maximize_channels

    model = tiny_rgb_model(SIZE, seed=4)
    ascent = Ascent(steps=8, learning_rate=0.05, jitter=1, blur_every=2, blur_sigma=0.5, decay=0.01, seed=1)
    x, before, after = maximize_channels(model, "conv2d", (SIZE, SIZE, 3), 1.0, ascent)
    assert x.shape == (4, SIZE, SIZE, 3) and (after > before).all()
    for a, b in ((0, 1), (1, 2), (0, 2)):  # each filter weighs the colours differently: no gray input
        assert np.abs(x[..., a] - x[..., b]).mean(axis=(1, 2)).min() > 0.01
    np.testing.assert_array_equal(image_tiles(x), x)  # what activation_max draws: the three channels


def test_gradcam_of_a_colour_model_follows_the_channels_the_model_reads(tmp_path):
    from convlens.analysis.gradients import class_probabilities, gradcam_maps
    from convlens.model.keras_models import load_model

    tiny_rgb_model(SIZE, seed=2, red_only=True).save(tmp_path / "rgb.keras")
    model = load_model(tmp_path / "rgb.keras")
    x = np.random.default_rng(5).random((2, SIZE, SIZE, 3)).astype(np.float32)
    scorer, probs = class_probabilities(model, "conv2d", x)
    targets = [probs.argmax(axis=1), np.array([3, 7])]
    maps = gradcam_maps(scorer, x, targets, (SIZE, SIZE))
    assert maps.shape == (2, 2, SIZE, SIZE) and maps.any() and np.isfinite(maps).all()

    recoloured = x.copy()
    recoloured[..., 1:] = np.random.default_rng(6).random((2, SIZE, SIZE, 2))  # other green and blue
    scores = [np.asarray(scorer(batch, training=False)[1]) for batch in (x, recoloured)]
    np.testing.assert_allclose(scores[1], scores[0], rtol=1e-5, atol=1e-6)  # the class scores ignore them
    np.testing.assert_allclose(gradcam_maps(scorer, recoloured, targets, (SIZE, SIZE)), maps, rtol=1e-4, atol=1e-6)
    redder = x.copy()
    redder[..., 0] = redder[..., 0][:, ::-1]  # the red channel moved: the maps move
    assert not np.allclose(gradcam_maps(scorer, redder, targets, (SIZE, SIZE)), maps, atol=1e-4)
