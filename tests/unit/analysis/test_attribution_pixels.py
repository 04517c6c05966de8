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
    occlusion_windows,
    removal_order,
    sample_correlations,
    sanity_line,
    sanity_summary,
    similarity,
    spearman,
    tied_share,
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
    orders = {tuple(removal_order(maps, np.random.default_rng(seed))[0]) for seed in range(20)}
    assert {o[:2] for o in orders} == {(1, 2)} and {o[2:] for o in orders} == {(0, 3), (3, 0)}
    same = [removal_order(maps, np.random.default_rng(4)) for _ in range(2)]
    np.testing.assert_array_equal(*same)


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
    assert curve[1] == {"randomized": 1, "layer": "dense", "spearman": 0.3, "spearman_nonzero": 0.1, "tied": 0.5}
    summary = sanity_summary({"saliency": curve}, {"saliency": rows, "random": rows})
    assert summary["saliency"] == {"deletion_auc": 0.5, "spearman": 0.3, "spearman_nonzero": 0.1, "tied": 0.5}
    assert summary["random"] == {"deletion_auc": 0.5}
    line = sanity_line(8, summary)
    assert line == (
        "sanity checks over 8 images: saliency ρ 0.30 (0.10 nonzero, ties 50%), deletion AUC 0.500; "
        "random deletion AUC 0.500"
    )


def test_sample_correlations_add_the_nonzero_spearman():
    trained = np.zeros((1, 2, 2, 3))
    trained[0, :, 0] = [[0, 1, 2], [0, 0, 0]]
    untrained = trained.copy()
    untrained[0, 0, 0] = [5, 1, 2]
    untrained[0, 1, 0] = [3, 2, 1]
    got = sample_correlations(trained, untrained, [7])
    assert got["spearman"]["sample_7"]["predicted"] == pytest.approx(spearman(trained[0, 0], untrained[0, 0]))
    assert got["spearman_nonzero"]["sample_7"]["predicted"] is None  # two pixels lit in both: undefined
    assert got["spearman_nonzero"]["median"]["predicted"] is None


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
