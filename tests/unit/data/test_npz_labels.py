"""NPZ labels that are one-hot (or scores per class) are one line with the fix, ``y.argmax(1)``."""

import numpy as np
import pytest

from tests.support.datasets import data_config, keras_npz, refused, write


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_one_hot_labels_are_refused_with_argmax(tmp_path, dtype):
    one_hot = np.eye(3, dtype=dtype)[np.arange(6) % 3]  # what keras.utils.to_categorical gives
    keras_npz(tmp_path / "d.npz", y_train=one_hot)
    message = refused(tmp_path, data_config("npz", path=str(tmp_path / "d.npz")))
    assert message == (
        f"{tmp_path / 'd.npz'}: y_train has shape (6, 3) ({np.dtype(dtype)}): one-hot labels or "
        "scores per class, not class indices; save y.argmax(1), a vector of N class indices 0..K-1"
    )


def test_labels_of_shape_n_by_1_are_still_read(tmp_path):
    arrays = keras_npz(tmp_path / "d.npz", y_test=np.array([[2], [1], [0], [2]], dtype=np.uint8))
    got = write(tmp_path, data_config("npz", path=str(tmp_path / "d.npz")))
    np.testing.assert_array_equal(got["test_labels"], arrays["y_test"][:, 0])
