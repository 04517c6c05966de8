"""The book's hold-out split without scikit-learn: the same rows, in the same order, as train_test_split."""

import math

import numpy as np
import pytest

from convlens.data.split import holdout_split
from convlens.errors import ConvlensError


def test_ten_rows_split_as_train_test_split_with_random_state_42():
    # RandomState(42).permutation(10) is [8 1 5 0 7 2 9 4 3 6]: ceil(0.2 × 10) = 2 rows held out first
    train, held_out = holdout_split(10, 0.2, 42)
    assert held_out.tolist() == [8, 1]
    assert train.tolist() == [5, 0, 7, 2, 9, 4, 3, 6]


@pytest.mark.parametrize(("n", "fraction"), [(60_000, 0.2), (7, 0.25), (101, 0.5)])
def test_every_row_lands_in_exactly_one_part_and_the_held_out_part_is_rounded_up(n, fraction):
    train, held_out = holdout_split(n, fraction, 42)
    assert len(held_out) == math.ceil(fraction * n)
    assert sorted(np.concatenate([train, held_out]).tolist()) == list(range(n))


def test_it_equals_scikit_learn_where_that_is_installed():
    sklearn = pytest.importorskip("sklearn.model_selection")
    rows = np.arange(1000)
    want_train, want_held_out = sklearn.train_test_split(rows, test_size=0.2, random_state=42)
    train, held_out = holdout_split(1000, 0.2, 42)
    assert train.tolist() == want_train.tolist() and held_out.tolist() == want_held_out.tolist()


@pytest.mark.parametrize(("n", "fraction"), [(10, 0.0), (10, 1.0), (1, 0.5), (3, 0.9)])
def test_a_split_that_leaves_either_part_empty_is_refused(n, fraction):
    with pytest.raises(ConvlensError, match="fraction|at least one"):
        holdout_split(n, fraction, 42)
