"""Weight tables and metrics from a layer's variables (``analysis.weights``), and as ``extract_weights`` writes them."""

import json
import logging
import re
import warnings

import numpy as np
import pytest

from convlens.analysis.stats import as_number
from convlens.analysis.weights import SUMMARY_KEYS, kernel_and_bias, layer_weights, weight_metrics
from convlens.errors import ConvlensError
from convlens.render.grids import filter_grid
from stages import extract_weights, fetch_model
from tests.support.helpers import tiny_model


def test_kernel_and_bias_take_the_first_variable_and_a_last_1d_one():
    depthwise, pointwise, bias = np.ones((3, 3, 2, 1)), np.ones((1, 1, 2, 4)), np.zeros(4)
    kernel, got = kernel_and_bias([depthwise, pointwise, bias])  # SeparableConv2D: its depthwise kernel
    assert kernel is depthwise and got is bias
    assert kernel_and_bias([pointwise]) == (pointwise, None)
    assert kernel_and_bias([depthwise, pointwise])[1] is None  # a 4-D last variable is no bias
    assert kernel_and_bias([bias]) == (bias, None)  # a lone variable is never its own bias too


def test_layer_weights_hold_the_kernel_its_statistics_and_one_row_a_filter():
    kernel = np.arange(3 * 3 * 1 * 2, dtype=np.float32).reshape(3, 3, 1, 2) - 4
    bias = np.array([0.5, -0.5], np.float32)
    w = layer_weights("conv2d", [kernel, bias], [50])
    assert w.kernel is kernel and w.bias is bias
    assert w.stats["shape"] == "3x3x1x2" and w.stats["mean"] == as_number(kernel.mean())
    assert w.stats["p50"] == as_number(np.median(kernel))
    assert [row["filter"] for row in w.filters] == [0, 1]
    assert w.filters[1]["mean"] == 5.0 and w.filters[1]["bias"] == -0.5  # (1 + 3 + … + 17) / 9 − 4


@pytest.mark.parametrize("variables", [[], [np.zeros(4)]], ids=["no-variables", "1-d-only"])
def test_a_layer_without_a_kernel_is_refused(variables):
    with pytest.raises(ConvlensError) as err:
        layer_weights("flatten", variables, [50])
    assert str(err.value) == "layer 'flatten' has no kernel; choose layers like Conv2D or Dense in weights.layers"


def test_weight_metrics_are_a_row_a_layer_and_the_summary_keys():
    finite = layer_weights("conv2d", [np.ones((3, 3, 1, 2), np.float32)], [5, 95])
    nan = layer_weights("dense", [np.full((4, 2), np.nan, np.float32)], [5, 95])
    rows, summary = weight_metrics({"conv2d": finite, "dense": nan})
    assert rows == [{"layer": "conv2d", **finite.stats}, {"layer": "dense", **nan.stats}]
    assert "p95" in rows[0] and set(summary["conv2d"]) == set(SUMMARY_KEYS)
    assert summary["conv2d"]["mean"] == 1.0 and summary["conv2d"]["nan"] == 0
    assert summary["dense"] == {"nan": 8, "inf": 0}  # no finite value: no mean made up


def test_nan_and_inf_weights_are_counted_not_averaged_in(project, stage_config, tmp_path, caplog):
    model = tiny_model()
    kernel, bias = model.get_layer("conv2d").get_weights()
    kernel[0, 0, 0, 0], kernel[1, 1, 0, 1], kernel[2, 2, 0, 2] = np.nan, np.inf, -np.inf
    kernel[..., 3] = np.nan  # one filter with no finite weight at all
    model.get_layer("conv2d").set_weights([kernel, bias])
    path = tmp_path / "nan.keras"
    model.save(path)
    fetch_model.run(stage_config("fetch_model", f"model.path={path}"), project)
    caplog.set_level(logging.INFO)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        extract_weights.run(stage_config("extract_weights"), project)
        stats = json.loads((project / "outputs" / "metrics" / "weights_trained.json").read_text(encoding="utf-8"))[
            "trained"
        ]["conv2d"]
        finite = kernel[np.isfinite(kernel)]
        assert stats["nan"] == 10 and stats["inf"] == 2
        assert stats["mean"] == float(str(finite.mean())) and stats["max"] == float(str(finite.max()))
        assert all(np.isfinite(v) for k, v in stats.items() if k not in ("shape",))
        logged = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("trained conv2d kernel"))
        mean, std = map(float, re.fullmatch(r".* mean (\S+) std (\S+)", logged).groups())  # the finite weights'
        assert (mean, std) == pytest.approx((stats["mean"], stats["std"]), rel=1e-6)
        rows = (
            (project / "outputs" / "metrics" / "filters" / "trained" / "conv2d.csv")
            .read_text(encoding="utf-8")
            .splitlines()
        )
        assert rows[4] == "3,0.0,,,0.0"  # the all-NaN filter: mean and std left empty, no number made up
        assert "inf" not in "".join(rows[1:4])
        image, _ = filter_grid(kernel, "first", 16, -0.5, 0.5)
    assert np.isfinite(image[~np.isnan(image)]).all()


def layer_entry(kind: str, input_shape: list, **config) -> dict:
    return {"class_name": kind, "config": {"name": "x", **config}, "build_config": {"input_shape": input_shape}}


def test_the_shapes_a_layers_config_implies():
    from convlens.model.weights_file import expected_shapes

    nhwc = [None, 5, 5, 6]
    assert expected_shapes(layer_entry("Conv2D", nhwc, kernel_size=3, filters=4)) == [(3, 3, 6, 4), (4,)]
    assert expected_shapes(layer_entry("Conv2D", nhwc, kernel_size=[1, 3], filters=4, groups=2, use_bias=False)) == [
        (1, 3, 3, 4)
    ]
    depthwise = layer_entry("DepthwiseConv2D", nhwc, kernel_size=3, depth_multiplier=2)
    assert expected_shapes(depthwise) == [(3, 3, 6, 2), (12,)]
    separable = layer_entry("SeparableConv2D", nhwc, kernel_size=3, filters=8)  # depth_multiplier defaults to 1
    assert expected_shapes(separable) == [(3, 3, 6, 1), (1, 1, 6, 8), (8,)]
    assert expected_shapes(layer_entry("BatchNormalization", nhwc, axis=[3])) == [(6,)] * 4  # Keras saves [3]
    assert expected_shapes(layer_entry("BatchNormalization", nhwc, axis=1, center=False)) == [(5,)] * 3
    assert expected_shapes(layer_entry("BatchNormalization", nhwc, scale=False, center=False)) == [(6,)] * 2
    assert expected_shapes(layer_entry("Dense", [None, 7], units=3)) == [(7, 3), (3,)]
    assert expected_shapes(layer_entry("Conv2D", nhwc, kernel_size="3", filters=4)) == [(None, None, 6, 4), (4,)]


def test_a_variables_group_must_hold_datasets_numbered_from_0(tmp_path):
    import h5py

    from convlens.model.weights_file import _variables

    with h5py.File(tmp_path / "w.h5", "w") as h5:
        for key in ("0", "1", "2", "3", "4", "6", "7"):
            h5.create_dataset(f"gap/vars/{key}", data=[0.0])
        h5.create_dataset("ok/vars/1", data=[1.0, 2.0])
        h5.create_dataset("ok/vars/0", data=[0.0])
        h5.create_group("nested/vars/0")
        h5.create_group("empty")
        assert [v.shape for v in _variables(h5, "ok")] == [(1,), (2,)]
        assert _variables(h5, "empty") is None
        with pytest.raises(KeyError, match=re.escape("gap/vars holds ['0', '1', '2', '3', '4'], not variables 0..6")):
            _variables(h5, "gap")
        with pytest.raises(KeyError, match="nested/vars holds a group where a variable belongs"):
            _variables(h5, "nested")


def test_a_model_file_that_cannot_be_read_is_named_with_the_reason(tmp_path):
    from convlens.model.archive import is_hdf5

    with pytest.raises(ConvlensError) as err:
        is_hdf5(tmp_path)
    assert str(err.value) == f"cannot read {tmp_path} (Is a directory); check the file and its permissions"
    (tmp_path / "m.h5").write_bytes(b"\x89HDF\r\n\x1a\nrest")
    (tmp_path / "m.keras").write_bytes(b"PK\x03\x04")
    assert is_hdf5(tmp_path / "m.h5") and not is_hdf5(tmp_path / "m.keras")


def test_the_weight_stage_records_each_layers_class_for_drawing_its_filters(project, stage_config, tmp_path):
    """``render_figures`` draws a depthwise kernel as its C·m filters: it reads which layers are depthwise from
    ``kinds.json`` beside the kernels (the weights hold no class)."""
    from convlens.model.keras_models import keras
    from convlens.pipeline import paths
    from convlens.pipeline.artifacts import load_kinds

    x = keras.Input((28, 28, 1))
    y = keras.layers.Conv2D(4, 3, name="conv2d")(x)
    y = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="dw")(y)
    y = keras.layers.Dense(10, name="dense")(keras.layers.Flatten()(y))
    path = tmp_path / "dw.keras"
    keras.Model(x, y).save(path)
    fetch_model.run(stage_config("fetch_model", f"model.path={path}", "weights.layers=[conv2d,dw]"), project)
    extract_weights.run(stage_config("extract_weights", "weights.layers=[conv2d,dw]"), project)
    assert load_kinds(project, "trained") == {"conv2d": "Conv2D", "dw": "DepthwiseConv2D"}
    assert np.load(paths.kernel(project, "trained", "dw")).shape == (3, 3, 4, 2)  # 8 filters
