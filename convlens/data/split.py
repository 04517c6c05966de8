"""The book's hold-out split: ``train_test_split(x, y, test_size=0.2, random_state=42)`` without scikit-learn.

scikit-learn's ``train_test_split`` (``ShuffleSplit`` underneath) draws one permutation of the rows from
``numpy.random.RandomState(random_state)``; the first ``ceil(test_size × n)`` rows of it are held out, the rest (in
the permutation's order) are the training rows. The same four lines here give the same rows in the same order, so
chapter 8-2's split is reproduced exactly (``tests/unit/data/test_split.py`` pins it; checked against scikit-learn
1.x where it is installed).
"""

from __future__ import annotations

import math

import numpy as np

from convlens.errors import ConvlensError


def holdout_split(n: int, test_size: float, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, held_out)`` of ``n`` rows, as scikit-learn's ``train_test_split`` picks them."""
    if not 0 < test_size < 1:
        raise ConvlensError(f"the held-out fraction must be in (0, 1), got {test_size}")
    n_test = math.ceil(test_size * n)
    if n_test < 1 or n_test >= n:
        raise ConvlensError(
            f"holding out {test_size} of {n} images leaves {n - n_test} to train on and {n_test} to validate; "
            "each needs at least one: use more images or another train.validation_fraction"
        )
    permutation = np.random.RandomState(random_state).permutation(n)
    return permutation[n_test:], permutation[:n_test]
