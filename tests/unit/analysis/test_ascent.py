"""Activation maximization's arithmetic (no TensorFlow): the stopping rule, the failed channels, selectivity, the
best of several starts, the curve table and the starts."""

import numpy as np
import pytest

from convlens.analysis.ascent import (
    BELOW,
    DEAD,
    ascent_line,
    ascent_summary,
    best_of_starts,
    channel_marks,
    curve_rows,
    plateaued,
    seen_signed,
    selectivity,
    start_inputs,
    start_ratio,
    top_image_indices,
)


def test_the_stopping_rule_stops_on_a_plateau_and_never_without_a_tolerance():
    then = np.array([1.0, 2.0, 0.0])
    assert plateaued(
        then, then + np.array([0.0009, 0.0019, 0.0]), 1e-3
    )  # every channel rose < 0.1 %; a dead one stays 0
    assert not plateaued(then, then + np.array([0.0011, 0.0, 0.0]), 1e-3)  # one channel still climbs
    assert not plateaued(then, then + np.array([0.0, 0.0, 1e-6]), 1e-3)  # a channel leaving 0 is progress
    assert not plateaued(then, then, 0.0)  # tolerance 0: run every step
    assert plateaued(np.array([-2.0]), np.array([-1.999]), 1e-3)  # a negative objective: its size counts


def test_channels_that_stayed_dead_or_ended_below_their_best_image_are_marked():
    achieved = np.array([0.0, -0.1, 0.5, 2.0])
    assert channel_marks(achieved) == [DEAD, DEAD, "", ""]  # without dataset statistics only the dead
    assert channel_marks(achieved, np.array([0.0, 1.0, 1.0, 1.0])) == [DEAD, DEAD, BELOW, ""]


def test_selectivity_counts_channels_their_own_input_excites_most():
    own_best = np.array([[3.0, 0.0, 1.0], [1.0, 2.0, 0.5], [0.0, 1.0, 4.0]])  # inputs × channels
    assert selectivity(own_best) == 1.0
    shared = np.array([[1.0, 2.0], [1.0, 2.0]])  # both inputs alike: a tie is not selective
    assert selectivity(shared) == 0.0
    swapped = np.array([[1.0, 5.0, 0.0], [2.0, 3.0, 0.0], [0.0, 0.0, 1.0]])  # input 0 excites channel 1 more
    assert selectivity(swapped) == pytest.approx(1 / 3)
    assert selectivity(np.array([[1.0]])) is None


def test_each_channel_keeps_its_best_start_and_the_ratio_says_how_far_the_first_fell_short():
    inputs = [np.full((3, 2, 2, 1), k, np.float64) for k in range(3)]
    achieved = np.array([[1.0, 4.0, 0.0], [2.0, 1.0, 0.0], [1.0, 4.0, 0.0]])  # starts × channels
    x, best = best_of_starts(inputs, achieved)
    np.testing.assert_array_equal(best, [2.0, 4.0, 0.0])
    assert [float(t[0, 0, 0]) for t in x] == [1.0, 0.0, 0.0]  # a tie goes to the earlier start
    assert start_ratio(achieved) == pytest.approx(np.median([0.5, 1.0]))  # the dead channel has no ratio
    assert start_ratio(achieved[:1]) is None


def test_the_summary_counts_failures_and_has_no_step_dependent_beats_dataset():
    achieved, top = np.array([0.0, 0.5, 3.0, 2.0]), np.array([1.0, 1.0, 1.0, 0.0])  # dead, below, above, silent
    matrix = np.diag(achieved) + 0.1
    summary = ascent_summary(achieved, top, matrix, 64, True, np.stack([achieved, 2 * achieved]))
    assert summary["dead"] == 1 and summary["below_dataset"] == 1 and summary["silent_on_data"] == 1
    assert summary["ratio_median"] == pytest.approx(0.5) and summary["ratio_min"] == 0.0
    assert summary["selectivity"] == 0.75 and summary["start_ratio_median"] == pytest.approx(0.5)
    assert (summary["steps"], summary["converged"]) == (64, True) and "beats_dataset" not in summary
    alone = ascent_summary(achieved, None, matrix, 10, False)
    assert set(alone) == {"channels", "activation_median", "dead", "selectivity", "steps", "converged"}


def test_the_curve_table_has_a_step_column_summaries_and_every_channel():
    curve = np.array([[1.0, 3.0, 2.0], [2.0, 4.0, 6.0]])
    rows = curve_rows(curve)
    assert [r["step"] for r in rows] == [1, 2]
    assert rows[1] == {"step": 2, "median": 4.0, "min": 2.0, "max": 6.0, "c0": 2.0, "c1": 4.0, "c2": 6.0}


def test_the_top_image_of_each_channel_is_its_rank_0_row_in_channel_order():
    rows = np.array([[1, 0, 70], [1, 1, 3], [0, 1, 9], [0, 0, 12]])  # channel, rank, image
    np.testing.assert_array_equal(top_image_indices(rows), [12, 70])


def test_the_first_start_is_the_top_images_or_noise_and_the_others_noise_of_the_next_seeds():
    noise = lambda seed: np.full((2, 1), float(seed))  # noqa: E731
    assert [s[0, 0] for s in start_inputs(noise, 5, 3, None)] == [5.0, 6.0, 7.0]
    tops = np.array([[0.25], [0.75]])
    first, second = start_inputs(noise, 5, 2, tops)
    np.testing.assert_array_equal(first, tops)
    assert second[0, 0] == 6.0


@pytest.mark.parametrize(
    ("key", "bad", "good"),
    [
        ("activation_max.tolerance", 1.5, 0.01),
        ("activation_max.window", 0, 32),
        ("activation_max.start", "zeros", "top_image"),
        ("activation_max.starts", 0, 4),
        ("activation_max.scale", 0.9, 0.05),
        ("activation_max.rotate", -1, 5),
        ("activation_max.tv", -0.1, 0.1),
        ("activation_max.l2", float("nan"), 0.0),
    ],
)
def test_each_new_ascent_setting_is_checked_by_the_schema(key, bad, good):
    from convlens.errors import ConvlensError
    from convlens.schema import MEANING, SCHEMA

    SCHEMA[key](key, good)
    with pytest.raises(ConvlensError, match=key.replace(".", r"\.")):
        SCHEMA[key](key, bad)
    assert MEANING[key]


def test_a_signed_layer_has_no_dead_or_silent_channels_and_no_ratio_over_a_near_zero_or_negative_mean():
    # a DepthwiseConv2D without ReLU (outside tester 3, finding 4): a channel at ≤ 0 is not dead, a best image of
    # mean -2 or 1e-6 is no denominator
    achieved, top = np.array([-0.5, 3.0, 0.2, 4.0]), np.array([-2.0, 1.5, 1e-6, 2.0])
    matrix = np.diag(achieved) + 0.1
    assert channel_marks(achieved, top, signed=True) == ["", "", "", ""]  # -0.5 beats its best image's -2
    assert channel_marks(achieved, top) == [DEAD, "", "", ""]  # a ReLU layer's: as before
    summary = ascent_summary(achieved, top, matrix, 8, True, signed=True)
    assert summary["signed"] is True and summary["dead"] is None and summary["silent_on_data"] is None
    assert summary["ratio_undefined"] == 2 and summary["ratio_median"] == pytest.approx(2.0)
    assert summary["ratio_min"] == pytest.approx(2.0)  # 3/1.5 and 4/2; 0.2/1e-6 = 200000 left out
    line = ascent_line("trained", "depthwise", 1.0, achieved - 1, achieved, summary)
    assert "signed layer (no ReLU), no dead count" in line and "2 channels' ratio not defined" in line
    relu = ascent_summary(np.abs(achieved), np.abs(top), matrix, 8, True)
    assert "signed" not in relu and "ratio_undefined" not in relu and relu["silent_on_data"] == 0


def test_a_layer_is_seen_signed_from_any_negative_mean_and_a_relu_layer_never():
    relu = np.array([0.0, 0.3, 2.0])  # a ReLU layer's means are ≥ 0: its marks and ratios stay as they were
    assert not seen_signed(relu, relu, None) and not seen_signed(relu, relu, relu)
    assert seen_signed(relu, relu, np.array([1.0, -0.2, 0.5]))  # a best image's mean below 0
    assert seen_signed(np.array([-0.1, 0.2, 0.0]), relu, None)  # a start's mean below 0


def test_the_log_line_says_when_nothing_improved_counts_the_channels_below_the_dataset_and_its_plurals():
    """Outside tester: "converged" where the activation was unchanged (0.0343 → 0.0343), no below_dataset count,
    and "1 steps"."""
    before, top = np.array([0.0, 0.5, 0.2]), np.array([0.3, 0.4, 0.5])
    after = np.array([0.0, 0.6, 0.25])  # channel 0 dead, channel 2 below its best image
    summary = ascent_summary(after, top, np.diag(after) + 0.01, 64, True)
    assert summary["dead"] == 1 and summary["below_dataset"] == 1  # the dead channel is not also below
    line = ascent_line("trained", "conv2d", 1.0, before, after, summary)
    assert "3 channels in 1.0 s, 64 steps (converged)" in line and "1 dead, 1 below their best dataset image" in line
    still = ascent_summary(before, None, np.diag(before) + 0.01, 1, True)
    line = ascent_line("trained", "conv2d", 1.0, before, before, still)
    assert "1 step (did not improve), median mean activation 0.2 → 0.2" in line and "below" not in line
    one = ascent_summary(np.array([0.4]), None, np.array([[0.4]]), 32, False)
    assert "1 channel in 1.0 s, 32 steps (hit the step cap)" in ascent_line("m", "c", 1.0, [0.1], [0.4], one)
