"""A model whose first Keras call computes and whose later calls fail (docs/robustness.md, the hostile forward-pass
row): in ``gradcam`` the pixel maps (saliency, SmoothGrad, integrated gradients, occlusion) and the sanity batches,
in ``activation_max`` the ascent. Before: a TensorFlow traceback halfway through (``AttributeError: 'NoneType' object
has no attribute 'numpy'`` for a gradient that is None, Keras's input check for a batch of another size), or an
ascent that silently never moved. Now one ``ConvlensError`` line naming the model's file, the layer and the fix,
before any map or ascent is computed, and nothing written.

The models are built with Keras here: a layer of an integer dtype policy (TensorFlow has no gradient through a cast
to an integer), and a BatchNormalization over the batch axis of a model saved with a batch size of 1 (its statistics
are one per image of that batch, so it computes one image at a time only).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from convlens.errors import ConvlensError
from convlens.pipeline import paths
from tests.support.helpers import one_line
from tests.unit.model.test_keras_compute_errors import _stage, _stage_project


def _tail(name: str):
    from convlens.model.keras_models import keras

    return [
        keras.layers.Conv2D(4, 3, activation="relu", name=name),
        keras.layers.Flatten(name="flat"),
        keras.layers.Dense(10, activation="softmax", name="dense"),
    ]


def int_after_conv(folder: Path) -> Path:
    """Conv2D, then an Activation computed in int32 (the feature maps' gradient is None), then the head."""
    from convlens.model.keras_models import keras

    keras.utils.set_random_seed(0)
    conv, flat, dense = _tail("conv")
    cast = keras.layers.Activation("linear", dtype="int32", name="cast")
    model = keras.Sequential([keras.Input((28, 28, 1)), conv, cast, flat, dense])
    model.save(folder / "trained.keras")
    return folder / "trained.keras"


def int_before_conv(folder: Path) -> Path:
    """A Rescaling computed in int32, one back to float32, then Conv2D and the head: Grad-CAM's gradient (feature
    maps onwards) exists, the input's is None."""
    from convlens.model.keras_models import keras

    keras.utils.set_random_seed(0)
    layers = [
        keras.Input((28, 28, 1)),
        keras.layers.Rescaling(255.0, dtype="int32", name="cast"),
        keras.layers.Rescaling(1 / 255.0, name="back"),
        *_tail("conv"),
    ]
    keras.Sequential(layers).save(folder / "trained.keras")
    return folder / "trained.keras"


def one_image_at_a_time(folder: Path) -> Path:
    """Saved with a batch size of 1 and a BatchNormalization over axis 0 (one mean per image of that batch): it
    computes the one sample, and no batch of another size."""
    from convlens.model.keras_models import keras

    keras.utils.set_random_seed(0)
    layers = [keras.Input(batch_shape=(1, 28, 28, 1)), keras.layers.BatchNormalization(axis=0, name="bn")]
    keras.Sequential([*layers, *_tail("conv")]).save(folder / "trained.keras")
    return folder / "trained.keras"


def _outputs(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in (root / "outputs").rglob("*"))


def _refused(root: Path, name: str, item: str, overrides: list[str]) -> str:
    """Run stage ``name`` (``item``): it must end in a ConvlensError and write nothing; its line."""
    before = _outputs(root)
    module, cfg = _stage(root, name, overrides)
    with pytest.raises(ConvlensError) as err:
        module.run(cfg, root, item)
        pytest.fail(f"{name} ran")
    assert _outputs(root) == before, name
    line = one_line(err)
    assert "\x1b" not in line and "Traceback" not in line, line
    return line


GRADCAM = {
    "grad-cam-gradient-none": (
        int_after_conv,
        [],
        "this model has no gradient at layer 'cast' (TensorFlow's gradient of the class score with respect to the "
        "feature maps of gradcam.layer 'conv' is None",
        "choose a gradcam.layer after that layer",
    ),
    "input-gradient-none": (
        int_before_conv,
        ["attribution.methods=[occlusion,smoothgrad]"],
        "this model has no gradient at layer 'cast' (TensorFlow's gradient of the class score with respect to the "
        "input is None",
        "smoothgrad needs it: leave it out of attribution.methods (occlusion needs no gradient)",
    ),
    "one-batch-size": (
        one_image_at_a_time,
        [],
        "Keras cannot compute this model at layer 'bn' (ValueError in Functional.call(): Input 0 with name 'None' of "
        "layer 'bn' is incompatible with the layer: expected axis 0 of input shape to have value 1, but received "
        "input with shape (2, 28, 28, 1)",
        "float32 images of shape (28, 28, 1), any number at a time, or use another one",
    ),
}


@pytest.mark.parametrize("case", list(GRADCAM))
def test_gradcam_refuses_what_its_later_keras_calls_cannot_compute_in_one_line(
    tmp_path, tiny_assets, monkeypatch, case
):
    """The first call (the samples' class probabilities) computes; the maps' gradients, or a batch of another size
    than the one sample, do not: one line, before any map, nothing written."""
    make, overrides, says, fix = GRADCAM[case]
    root, _ = _stage_project(tmp_path, tiny_assets, monkeypatch, make(tmp_path))
    line = _refused(root, "gradcam", paths.ATTRIBUTION, overrides)
    assert line.startswith(f"{paths.model_path(root, 'trained')}: {says}"), line
    assert fix in line, line


def test_a_model_without_an_input_gradient_still_gets_grad_cam_and_occlusion(tmp_path, tiny_assets, monkeypatch):
    """The input-gradient check asks only for what the methods need: Grad-CAM and occlusion differentiate no
    input, so the model whose input gradient is None gets its maps."""
    root, _ = _stage_project(tmp_path, tiny_assets, monkeypatch, int_before_conv(tmp_path))
    module, cfg = _stage(root, "gradcam", ["attribution.methods=[occlusion]", "attribution.sanity_images=0"])
    module.run(cfg, root, paths.ATTRIBUTION)
    assert (paths.gradcam_dir(root) / paths.attribution_name("trained", "occlusion")).is_file()


ASCENT = {
    "gradient-none": (
        int_before_conv,
        "this model has no gradient at layer 'cast' (TensorFlow's gradient of the channels of layer 'conv' with "
        "respect to the input is None",
        "leave the layer out of activation_max.layers",
    ),
    "one-batch-size": (
        one_image_at_a_time,
        "Keras cannot compute this model at layer 'bn' (ValueError in Functional.call(): Input 0 with name 'None' of "
        "layer 'bn' is incompatible with the layer: expected axis 0 of input shape to have value 1, but received "
        "input with shape (2, 28, 28, 1)",
        "any number at a time, or use another one",
    ),
}


@pytest.mark.parametrize("case", list(ASCENT))
def test_activation_max_refuses_a_layer_it_cannot_climb_in_one_line(tmp_path, tiny_assets, monkeypatch, case):
    """``layer_channels`` (one image) computes; the ascent (one input per channel) has no gradient to climb (before:
    it ran, never moved, and wrote its zeros) or is a batch the model does not compute (before: a traceback)."""
    make, says, fix = ASCENT[case]
    root, _ = _stage_project(tmp_path, tiny_assets, monkeypatch, make(tmp_path))
    module, cfg = _stage(root, "dataset", ["dataset.batch_size=1"])  # what activation_max reads
    module.run(cfg, root, "trained")
    line = _refused(root, "activation_max", "trained", [])
    assert line.startswith(f"{paths.model_path(root, 'trained')}: {says}"), line
    assert fix in line, line
