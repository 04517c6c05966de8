"""Activations that overflow to infinity or NaN are refused with one line naming the likely cause, not written as
NaN statistics (outside tester: input.scale=1e-37 wrote NaN into summary.json and exited 0)."""

import numpy as np
import pytest

from convlens.errors import ConvlensError
from convlens.model.inputs import InputScale
from convlens.pipeline import paths
from stages import build_untrained, dataset, feature_maps, fetch_data, fetch_model, samples
from tests.support.helpers import run_stage
from tests.unit.model.test_input_range import small_cnn


def test_finite_values_pass_and_non_finite_ones_name_the_scale_or_the_weights():
    InputScale(255.0).refuse_non_finite(np.ones((2, 3)), "x")  # nothing to refuse
    with pytest.raises(ConvlensError) as err:
        InputScale(255.0).refuse_non_finite(np.array([1.0, np.nan, np.inf, -np.inf]), "the trained model's conv2d maps")
    assert str(err.value) == (
        "3 of 4 values of the trained model's conv2d maps are NaN or infinite: is input.scale=255 right (inputs up "
        "to 1; the book's is 255)? Otherwise the model stores NaN or infinite weights"
    )
    own = InputScale(1.0, "Rescaling (scale 0.00392157, offset 0)")
    with pytest.raises(ConvlensError, match=r"^1 of 1 values of m are NaN or infinite: the model \(Rescaling"):
        own.refuse_non_finite(np.array([np.nan]), "m")  # input.scale is ignored: not named


def overflowing_model(path):
    """The small CNN with conv kernels of 1e38: a 3×3 sum of bright pixels is beyond float32, infinity."""
    kernels = [np.full((3, 3, 1, 8), 1e38, np.float32), np.zeros(8, np.float32)]
    small_cnn(conv_weights=kernels).save(path)
    return path


@pytest.mark.parametrize("stage", [dataset, feature_maps])
def test_a_stage_computing_statistics_refuses_infinite_maps_and_writes_none(
    stage, project, stage_config, composed, run_pipeline, tmp_path
):
    overrides = (f"model.path={overflowing_model(tmp_path / 'big.keras')}", "feature_maps.layers=[conv2d]")
    overrides += ("feature_maps.each=[conv2d]", "dataset.layers=[conv2d]")
    run_pipeline(project, *overrides, stages=[fetch_model, fetch_data, samples, build_untrained])
    with pytest.raises(ConvlensError, match=r"values of the trained model's conv2d maps are NaN or infinite: is inp"):
        run_stage(stage, stage_config, composed, project, *overrides)
    assert not paths.dataset_summary(project, "trained").exists()
    assert not (project / "outputs" / "feature_maps" / "conv2d").exists()


def test_maps_of_a_model_storing_nan_name_its_layer_first_not_the_input_scale(
    project, stage_config, composed, run_pipeline, tmp_path
):
    """``feature_maps@conv2d`` of a model whose conv2d stores NaN led with ``is input.scale=255 right …?``."""
    model = tmp_path / "nan.keras"
    small_cnn(conv_weights=[np.full((3, 3, 1, 8), np.nan, np.float32), np.zeros(8, np.float32)]).save(model)
    overrides = (f"model.path={model}", "feature_maps.layers=[conv2d]", "feature_maps.each=[conv2d]")
    run_pipeline(project, *overrides, stages=[fetch_model, fetch_data, samples, build_untrained])
    with pytest.raises(ConvlensError) as err:
        run_stage(feature_maps, stage_config, composed, project, *overrides)
    assert str(err.value).endswith(
        "values of the trained model's conv2d maps are NaN or infinite: the model stores numbers that are not finite "
        "(NaN or infinity) in 'conv2d'"
    )
