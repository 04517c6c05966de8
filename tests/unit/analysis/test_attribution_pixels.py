"""The numpy half of pixel-level attribution and its sanity checks: patches, maps, ties, deletion, curves, rows."""

import math

import numpy as np
import pytest

from convlens.analysis.attribution import (
    baseline_input,
    cascade_rows,
    curve_area,
    delete_pixels,
    deletion_fractions,
    deletion_rows,
    figure_rows,
    heat,
    image_streams,
    occlusion_windows,
    removal_order,
    sample_correlations,
    sanity_line,
    sanity_summary,
    sanity_warning,
    similarity,
    spearman,
    tied_share,
    verdict,
)
from convlens.errors import ConvlensError


def test_occlusion_windows_step_by_the_stride_and_reach_the_edges():
    masks = occlusion_windows((5, 5), 2, 2)
    assert masks.shape == (9, 5, 5) and masks.sum(axis=(1, 2)).tolist() == [4] * 9  # starts 0, 2, 3
    assert masks.any(axis=0).all() and masks[-1, 3:, 3:].all()
    assert occlusion_windows((4, 4), 4, 1).shape == (1, 4, 4)
    with pytest.raises(ConvlensError, match=r"attribution.occlusion_window must be in 1..4 for 4×6 images"):
        occlusion_windows((4, 6), 5, 1)


def test_heat_is_the_magnitude_summed_over_colours():
    attribution = np.array([[[[1.0, -2.0, 0.5]]]])  # one image, one pixel, three colours
    assert heat(attribution).tolist() == [[[3.5]]]
    assert heat(np.array([[[-1.0, 2.0]]])).tolist() == [[[1.0, 2.0]]]


def test_ties_are_counted_and_left_out_of_the_nonzero_spearman():
    assert tied_share(np.array([0, 0, 0, 1, 2])) == pytest.approx(0.6)
    assert tied_share(np.arange(4)) == 0 and tied_share(np.zeros(3)) == 1
    a = np.array([0, 0, 0, 0, 1, 2, 3])
    b = np.array([0, 0, 0, 0, 3, 2, 1])
    found = similarity(a, b)
    assert found["spearman_nonzero"] == pytest.approx(-1.0)  # the three pixels lit in both, in reverse order
    assert found["spearman"] == pytest.approx(spearman(a, b)) and found["spearman"] > 0  # the zeros agree
    assert found["tied"] == pytest.approx(4 / 7)
    assert math.isnan(similarity(np.array([0, 1, 2]), np.array([1, 0, 2]))["spearman_nonzero"])  # under 3 pixels


def test_removal_order_takes_the_most_attributed_first_and_ties_at_random():
    maps = np.array([[[0.0, 3.0], [1.0, 0.0]]])
    orders = {tuple(removal_order(maps, [np.random.default_rng(seed)])[0]) for seed in range(20)}
    assert {o[:2] for o in orders} == {(1, 2)} and {o[2:] for o in orders} == {(0, 3), (3, 0)}
    same = [removal_order(maps, [np.random.default_rng(4)]) for _ in range(2)]
    np.testing.assert_array_equal(*same)


def test_each_image_and_method_has_its_own_stream_whatever_comes_with_it():
    maps = np.zeros((3, 4, 4))  # all ties: the order is the stream's
    together = removal_order(maps, image_streams(0, "gradcam", range(3)))
    np.testing.assert_array_equal(together[2], removal_order(maps[2:], image_streams(0, "gradcam", [2]))[0])
    assert len({tuple(row) for row in together}) == 3  # not one order repeated for every image
    assert not np.array_equal(together, removal_order(maps, image_streams(0, "saliency", range(3))))
    assert not np.array_equal(together, removal_order(maps, image_streams(1, "gradcam", range(3))))


def test_deleting_pixels_sets_them_and_every_colour_to_the_baseline():
    x = np.arange(2 * 2 * 2 * 3, dtype=float).reshape(2, 2, 2, 3)
    order = np.array([[3, 0, 1, 2], [0, 1, 2, 3]])
    baseline = np.full((2, 2, 3), -1.0)
    out = delete_pixels(x, order, 1, baseline)
    assert (out[0, 1, 1] == -1).all() and (out[1, 0, 0] == -1).all() and (out == -1).sum() == 6
    np.testing.assert_array_equal(delete_pixels(x, order, 0, baseline), x)
    assert (delete_pixels(x, order, 4, baseline) == -1).all()


def test_the_baselines_are_black_or_the_streamed_mean():
    batches = [np.ones((2, 3, 3)), np.full((1, 3, 3), 4.0)]
    np.testing.assert_array_equal(baseline_input("black", iter(batches)), np.zeros((3, 3)))
    np.testing.assert_allclose(baseline_input("mean", iter(batches)), np.full((3, 3), 2.0))
    with pytest.raises(ConvlensError, match="no image"):
        baseline_input("mean", [])


def test_curves_as_rows_and_their_summary():
    fractions = deletion_fractions(4)
    assert fractions.tolist() == [0, 0.25, 0.5, 0.75, 1]
    assert curve_area(fractions, 1 - fractions) == pytest.approx(0.5)
    rows = deletion_rows(fractions, np.array([8, 6, 4, 2, 0]), 8)
    assert [r["accuracy"] for r in rows] == [1.0, 0.75, 0.5, 0.25, 0.0]
    steps = [
        [{"spearman": 1.0, "spearman_nonzero": 1.0, "tied": 0.5}] * 2,
        [{"spearman": 0.2, "spearman_nonzero": math.nan, "tied": 0.4}, {"spearman": 0.4, "spearman_nonzero": 0.1,
                                                                       "tied": 0.6}],
    ]  # fmt: skip
    curve = cascade_rows(steps, ["none", "dense"])
    assert curve[1] == {
        "randomized": 1, "layer": "dense", "spearman": 0.3, "spearman_images": 2, "spearman_nonzero": 0.1,
        "spearman_nonzero_images": 1, "tied": 0.5,
    }  # fmt: skip
    summary = sanity_summary({"saliency": curve}, {"saliency": rows, "random": rows}, 0.5)
    assert summary["saliency"] == {
        "deletion_auc": 0.5, "spearman": 0.3, "spearman_images": 2, "spearman_nonzero": 0.1,
        "spearman_nonzero_images": 1, "tied": 0.5, "passes": None,  # one image with a ρ: too few to decide
    }  # fmt: skip
    assert summary["random"] == {"deletion_auc": 0.5}
    line = sanity_line(2, summary)
    assert line == (
        "sanity checks over 2 images: saliency ρ 0.30 (0.10 nonzero over 1 of 2, ties 50%) too few images to "
        "decide, deletion AUC 0.500; random deletion AUC 0.500"
    )
    assert sanity_warning(summary, 0.5) is None


def test_the_randomization_check_passes_a_low_median_rho_fails_a_high_one_and_needs_ten_images():
    assert [verdict(rho, 10, 0.5) for rho in (0.5, -0.5, 0.51, -0.9, 1.0, None, math.nan)] == [
        1, 1, 0, 0, 0, None, None
    ]  # fmt: skip
    assert verdict(0.0, 9, 0.5) is None and verdict(0.0, 200, 0.5) == 1 and verdict(0.3, 200, 0.2) == 0
    steps = [[{"spearman": 1.0, "spearman_nonzero": 1.0, "tied": 0.1}] * 12] * 2  # the "untrained" model is the same
    curve = cascade_rows(steps, ["none", "dense"])
    rows = deletion_rows(deletion_fractions(2), np.array([12, 6, 0]), 12)
    summary = sanity_summary({"gradcam": curve, "saliency": curve}, {"gradcam": rows, "saliency": rows}, 0.5)
    assert summary["gradcam"]["passes"] == 0 and summary["gradcam"]["spearman_nonzero_images"] == 12
    assert "gradcam ρ 1.00 (1.00 nonzero, ties 10%) fails" in sanity_line(12, summary)
    assert sanity_warning(summary, 0.5) == (
        "warning: gradcam, saliency fail the randomization check: median |ρ| of the trained and untrained maps "
        "(where not both zero) above attribution.sanity_max_rho=0.5; their maps barely depend on what the model "
        "learned"
    )


def test_sample_correlations_add_the_nonzero_spearman():
    trained = np.zeros((1, 2, 2, 3))
    trained[0, :, 0] = [[0, 1, 2], [0, 0, 0]]
    untrained = trained.copy()
    untrained[0, 0, 0] = [5, 1, 2]
    untrained[0, 1, 0] = [3, 2, 1]
    got = sample_correlations(trained, untrained, [7], 0.5)
    assert got["spearman"]["sample_7"]["predicted"] == pytest.approx(spearman(trained[0, 0], untrained[0, 0]))
    assert got["spearman_nonzero"]["sample_7"]["predicted"] is None  # two pixels lit in both: undefined
    assert got["spearman_nonzero"]["median"]["predicted"] is None
    assert got["passes"] == {"predicted": None, "true": None}  # one sample: too few to decide
    many = np.random.default_rng(0).random((10, 2, 2, 3)) + 0.1
    same = sample_correlations(many, many, range(10), 0.5)  # the "untrained" model's maps are the trained ones
    assert same["passes"] == {"predicted": 0, "true": 0}
    assert sample_correlations(many[:9], many[:9], range(9), 0.5)["passes"] == {"predicted": None, "true": None}


def test_the_figure_has_no_true_class_row_when_the_prediction_is_right():
    maps = {"gradcam": {r: np.ones((2, 2, 3, 3)) for r in ("trained", "untrained")}}
    probs = {r: np.array([[0.9, 0.1], [0.2, 0.8]]) for r in ("trained", "untrained")}
    targets = {"predicted": np.array([0, 1]), "true": np.array([0, 0])}
    rho = {"gradcam": {"predicted": 0.25, "true": None}}
    right = figure_rows(maps, probs, 0, targets, ["a", "b"], rho)
    assert [label for label, _ in right] == ["Grad-CAM\npredicted class: a\nρ = 0.25"]
    wrong = figure_rows(maps, probs, 1, targets, ["a", "b"], rho)
    assert [label.split("\n")[1:] for label, _ in wrong] == [
        ["predicted class: b", "ρ = 0.25"],
        ["true class: a", "ρ = –"],
    ]
    headings = [heading for _, heading in wrong[1][1]]
    assert headings == [f"{role}: predicts b 0.80\np(a) = 0.20" for role in ("trained", "untrained")]
