"""fetch_model resolves every configured layer list and checks the model's input against the data, so a model
that does not fit the config fails there, in seconds, naming the user's file: not after extract_weights and
build_untrained (TensorFlow) have run."""

from __future__ import annotations

from pathlib import Path

import pytest

from convlens.errors import ConvlensError
from stages import fetch_data, fetch_model

TRAINED = Path("outputs", "models", "trained.keras")


@pytest.fixture(scope="module")
def renamed(tmp_path_factory) -> Path:
    """The tiny architecture with conv layers named as in a notebook that built models before (conv2d_7, _8)."""
    from convlens.model.keras_models import keras

    path = tmp_path_factory.mktemp("renamed") / "renamed.keras"
    keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(4, 3, padding="same", name="conv2d_7"),
            keras.layers.MaxPooling2D(2, name="max_pooling2d"),
            keras.layers.Conv2D(8, 3, padding="same", name="conv2d_8"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(10, name="dense"),
        ]
    ).save(path)
    return path


LISTING = "this model has 0:conv2d_7, 1:max_pooling2d, 2:conv2d_8, 3:flatten, 4:dense"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("feature_maps.layers=[conv2d,conv2d_1]",), f"feature_maps.layers: unknown layer 'conv2d'; {LISTING}"),
        (
            ("feature_maps.layers=[conv2d_7]", "weights.layers=[conv9]"),
            f"weights.layers: unknown layer 'conv9'; {LISTING}",
        ),
        (
            ("feature_maps.layers=[0]", "dataset.layers=[9]"),
            f"dataset.layers: layer index 9 is out of range 0..4; {LISTING}",
        ),
        (
            ("feature_maps.layers=[0]", "activation_max.layers=[conv2d]"),
            f"activation_max.layers: unknown layer 'conv2d'; {LISTING}",
        ),
        (("feature_maps.layers=[0]", "gradcam.layer=conv9"), f"gradcam.layer: unknown layer 'conv9'; {LISTING}"),
    ],
    ids=["book-layers", "weights", "dataset", "activation_max", "gradcam"],
)
def test_layers_the_model_does_not_have_fail_in_fetch_model(project, stage_config, renamed, overrides, message):
    fetch_model.run(stage_config("fetch_model"), project)  # the tiny model: a good previous result
    before = (project / TRAINED).read_bytes()
    with pytest.raises(ConvlensError) as e:
        fetch_model.run(stage_config("fetch_model", f"model.path={renamed}", *overrides), project)
    assert str(e.value) == f"{renamed}: {message}"
    assert (project / TRAINED).read_bytes() == before  # nothing written: the old model stays


def test_by_default_the_renamed_models_own_conv_layers_are_looked_at(project, stage_config, renamed):
    """``feature_maps.layers: null``: every conv layer of the model, whatever their names."""
    cfg = stage_config("fetch_model", f"model.path={renamed}")
    assert list(cfg.feature_maps.each) == ["conv2d_7", "conv2d_8"]
    fetch_model.run(cfg, project)
    assert (project / TRAINED).is_file()


def test_the_renamed_model_with_its_own_layers_passes(project, stage_config, renamed):
    overrides = (f"model.path={renamed}", "feature_maps.layers=[conv2d_7,2]", "dataset.layers=[conv2d_8]")
    fetch_model.run(stage_config("fetch_model", *overrides), project)
    assert (project / TRAINED).is_file()


def test_an_input_that_does_not_fit_the_data_names_the_users_file(project, stage_config, tmp_path):
    from convlens.model.keras_models import keras

    colour = tmp_path / "colour.keras"
    keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(2, 3, name="conv2d")]).save(colour)
    fetch_data.run(stage_config("fetch_data"), project)  # a dependency of fetch_model under DVC
    with pytest.raises(ConvlensError) as e:
        fetch_model.run(stage_config("fetch_model", f"model.path={colour}", "feature_maps.layers=[conv2d]"), project)
    assert str(e.value) == (
        f"{colour} expects inputs of shape 32×32×3 but the data's samples are 28×28×1; make the data fit it "
        "(-S data.resize=[32,32] -S data.color=rgb) or use a model built for this data (keras.Input((28, 28, 1)))"
    )
    assert not (project / TRAINED).exists()


def test_a_pipeline_model_is_named_by_its_path_in_the_project(tmp_path, tiny_assets):
    """Later stages open outputs/models/<role>.keras (``model.archive.open_model``): their errors name it as the project
    does, not by an absolute path that differs on every machine."""
    import shutil

    from convlens.model.archive import open_model

    (tmp_path / TRAINED).parent.mkdir(parents=True)
    shutil.copyfile(tiny_assets["model"], tmp_path / TRAINED)
    with pytest.raises(ConvlensError) as err:
        open_model(tmp_path, "trained").check_input((32, 32))
    assert str(err.value).startswith(f"{TRAINED} expects inputs of shape 28×28×1 "), str(err.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("samples.indices=[0,12]",), "samples.indices: image 12 is out of range: the train split has images 0..11"),
        (
            ("samples.split=test", "samples.indices=[6]"),
            "samples.indices: image 6 is out of range: the test split has images 0..5",
        ),
        (
            ("dataset.examples.k=7",),
            "dataset.examples.k=7 is more than the 6 test images streamed; use dataset.examples.k=6 or less",
        ),
        (
            ("dataset.limit=7",),
            "dataset.limit=7 is beyond the test split's 6 images; use null for every image or a number up to 6",
        ),
    ],
    ids=["sample-train", "sample-test", "examples-k", "dataset-limit"],
)
def test_what_the_datas_size_decides_fails_in_fetch_model(project, stage_config, overrides, message):
    """Only the data knows its splits' sizes, so ``check_config`` cannot check these; ``fetch_model`` (which reads
    the data's shapes) does, before DVC deletes ``samples``' outputs or ``dataset@<model>``'s git-tracked metrics to
    rerun them, and leaves its own previous model."""
    fetch_data.run(stage_config("fetch_data"), project)
    fetch_model.run(stage_config("fetch_model"), project)
    before = (project / TRAINED).read_bytes()
    with pytest.raises(ConvlensError) as e:
        fetch_model.run(stage_config("fetch_model", *overrides), project)
    assert str(e.value) == message
    assert (project / TRAINED).read_bytes() == before
    fetch_model.run(stage_config("fetch_model", "samples.indices=[11]", "dataset.examples.k=6"), project)  # the edges


@pytest.fixture(scope="module")
def nested(tmp_path_factory) -> Path:
    """A transfer-learning-style model: every conv layer inside the nested model ``base``, then GAP and Dense."""
    from convlens.model.keras_models import keras

    path = tmp_path_factory.mktemp("nested") / "nested.keras"
    base = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(4, 3, padding="same", name="c1"),
            keras.layers.MaxPooling2D(2, name="p1"),
            keras.layers.Conv2D(4, 3, padding="same", name="c2"),
        ],
        name="base",
    )
    x = keras.Input((28, 28, 1))
    out = keras.layers.Dense(10, name="dense")(keras.layers.GlobalAveragePooling2D(name="gap")(base(x)))
    keras.Model(x, out).save(path)
    return path


GRADCAM = "analyses=full"  # analyses.attribution=[trained_vs_untrained]


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (
            "gradcam.layer=base/c2",
            "gradcam.layer 'base/c2' is inside the nested model 'base'; name the nested model itself, "
            "gradcam.layer=base (its output is a feature map), or a layer of the model itself",
        ),
        (
            "gradcam.layer=null",
            "gradcam.layer: the model has no conv layer of its own for Grad-CAM; its conv layers are inside the nested "
            "model 'base', whose output is a feature map: gradcam.layer=base",
        ),
        (
            "gradcam.layer=gap",
            "gradcam.layer 'gap' (GlobalAveragePooling2D) does not output H×W×C feature maps (the model has flattened "
            "or globally pooled them by then); choose a layer before that: here base (null: the last conv layer)",
        ),
    ],
    ids=["inner-layer", "default", "pooled"],
)
def test_a_gradcam_layer_gradcam_refuses_fails_in_fetch_model_naming_the_nested_model(
    project, stage_config, nested, layer, message
):
    """Grad-CAM's own rule (``attribution.gradcam_layer``) applied in fetch_model, when the analyses run Grad-CAM:
    refused in seconds, not after every other stage ran, naming the choice that works (the nested model itself)."""
    with pytest.raises(ConvlensError) as e:
        fetch_model.run(stage_config("fetch_model", f"model.path={nested}", GRADCAM, layer), project)
    assert str(e.value) == f"{nested}: {message}"
    assert not (project / TRAINED).exists()


def test_the_nested_model_itself_passes_and_without_gradcam_its_layer_is_not_refused(project, stage_config, nested):
    fetch_model.run(stage_config("fetch_model", f"model.path={nested}", GRADCAM, "gradcam.layer=base"), project)
    assert (project / TRAINED).is_file()
    (project / TRAINED).unlink()
    fetch_model.run(stage_config("fetch_model", f"model.path={nested}", "analyses=light"), project)
    assert (project / TRAINED).is_file()  # gradcam does not run: its default layer is not needed


def test_only_a_nested_model_whose_output_is_a_feature_map_is_named_for_gradcam():
    """A nested model that pools or flattens its maps away after its last conv layer is no Grad-CAM layer: the
    refusal then names none (the generic fix), and a layer inside it is refused without naming it."""
    from convlens.analysis.attribution import feature_map_models, gradcam_layer
    from convlens.model.layers import LayerInfo

    maps = [LayerInfo(1, "base", "Sequential"), LayerInfo(None, "base/c", "Conv2D"), LayerInfo(2, "gap", "Dense")]
    pooled = [*maps[:2], LayerInfo(None, "base/gap", "GlobalAveragePooling2D"), LayerInfo(2, "dense", "Dense")]
    assert feature_map_models(maps) == ["base"] and feature_map_models(pooled) == []
    with pytest.raises(ConvlensError, match=r"^the model has no conv layer of its own for Grad-CAM; name one with "):
        gradcam_layer(pooled, None)
    with pytest.raises(ConvlensError, match=r"inside the nested model 'base'; name a layer of the model itself$"):
        gradcam_layer(pooled, "base/c")
