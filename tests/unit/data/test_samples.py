"""Choosing the samples: every index checked against the schema and against the split's size."""

import numpy as np
import pytest

from convlens.data.samples import check_samples
from convlens.errors import ConvlensError


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        ([60000], "samples.indices: image 60000 is out of range: the train split has images 0..59999"),
        ([-1], "samples.indices[0] must be an integer in 0..2147483647, got -1"),
        ([], "samples.indices must be a list of at least 1, got []"),
        ([0.5], "samples.indices[0] must be an integer in 0..2147483647, got 0.5"),
        ([True], "samples.indices[0] must be an integer in 0..2147483647, got True"),
        (["3"], "samples.indices[0] must be an integer in 0..2147483647, got '3'"),
        ([2, 2], "samples.indices lists 2 twice"),
    ],
)
def test_sample_indices_are_checked_with_the_valid_range(samples, message):
    with pytest.raises(ConvlensError) as err:
        check_samples(samples, 60000, "train")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_last_image_of_the_split_is_a_valid_sample():
    chosen = check_samples([0, 59999], 60000, "train")
    assert chosen.dtype == np.int64 and chosen.tolist() == [0, 59999]
