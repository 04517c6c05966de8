"""Each stage's run() on the tiny model and data, in process, with its declared params only."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from convlens.analysis.stats import channel_stats, layer_summary
from convlens.errors import ConvlensError
from convlens.pipeline.config import compose, declared_params, select
from stages import (
    build_untrained,
    extract_weights,
    feature_maps,
    fetch_data,
    fetch_model,
    render_figures,
    render_maps,
    samples,
)
from tests.support.helpers import PIPELINE, configure, copy_project, made_once, one_line, run_stage, snapshot


def test_pipeline_makes_every_artifact(project, run_pipeline, tiny_assets):
    run_pipeline(project)
    out = project / "outputs"
    assert np.load(out / "data" / "train_images.npy").shape == (12, 28, 28)
    assert np.load(out / "data" / "test_labels.npy").dtype == np.uint8
    assert (out / "models" / "trained.keras").read_bytes() == tiny_assets["model"].read_bytes()

    trained = np.load(out / "weights" / "trained" / "conv2d.kernel.npy")
    untrained = np.load(out / "weights" / "untrained" / "conv2d.kernel.npy")
    assert trained.shape == untrained.shape == (3, 3, 1, 4)
    assert not np.allclose(trained, untrained)
    assert np.load(out / "weights" / "untrained" / "conv2d_1.bias.npy").shape == (8,)

    summary = json.loads((out / "metrics" / "weights_trained.json").read_text(encoding="utf-8"))
    assert summary["trained"]["conv2d"]["mean"] == float(str(trained.mean()))
    assert set(summary["trained"]) == {"conv2d", "conv2d_1"}
    maps_summary = json.loads((out / "metrics" / "feature_maps.json").read_text(encoding="utf-8"))
    assert set(maps_summary) == {"trained", "untrained"} and maps_summary["trained"]["conv2d_1"]["channels"] == 8

    assert np.load(out / "feature_maps" / "conv2d" / "trained.npy").shape == (1, 28, 28, 4)
    assert np.load(out / "feature_maps" / "conv2d_1" / "untrained.npy").shape == (1, 14, 14, 8)
    filters_csv = (out / "metrics" / "filters" / "untrained" / "conv2d_1.csv").read_text(encoding="utf-8").splitlines()
    assert filters_csv[0] == "filter,l2_norm,mean,std,bias" and len(filters_csv) == 9
    assert len((out / "metrics" / "channels" / "conv2d" / "trained.csv").read_text(encoding="utf-8").splitlines()) == 5

    figures = {str(p.relative_to(out / "figures")) for p in (out / "figures").rglob("*.png")}
    expected = {
        f"weights/{m}_{layer}_{kind}.png"
        for m in ("trained", "untrained")
        for layer in ("conv2d", "conv2d_1")
        for kind in ("hist", "filters")
    }
    expected |= {f"weights/{layer}_hist_overlay.png" for layer in ("conv2d", "conv2d_1")}
    expected |= {"samples/sample_0.png"}
    dataset_layers = ("conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1")
    expected |= {f"dataset/{m}/{layer}_classes.png" for m in ("trained", "untrained") for layer in dataset_layers}
    expected |= {f"dataset/{m}/examples/{m}_{layer}.png" for m in ("trained", "untrained") for layer in dataset_layers}
    expected |= {f"evaluate/{m}/{m}_confusion.png" for m in ("trained", "untrained")}
    expected |= {
        f"feature_maps/{layer}/{m}_sample_0.png" for m in ("trained", "untrained") for layer in ("conv2d", "conv2d_1")
    }
    expected |= {
        f"activation_max/{m}/{m}_{layer}.png" for m in ("trained", "untrained") for layer in ("conv2d", "conv2d_1")
    }
    expected |= {"gradcam/sample_0.png"}
    assert figures == expected


# Two samples, out of order; a layer by name and one by index (its outputs are filed under the entry, "0").
CHOSEN = ("samples.indices=[3,0]", "feature_maps.layers=[max_pooling2d,0]")
UP_TO_MAPS = PIPELINE[: PIPELINE.index(feature_maps) + 1]


def test_feature_maps_are_the_layer_activations_of_scaled_samples(project, run_pipeline, tiny_assets):
    run_pipeline(project, *CHOSEN, stages=UP_TO_MAPS)
    from convlens.model.keras_models import keras, load_model

    model = load_model(tiny_assets["model"])
    images = np.load(project / "outputs" / "data" / "train_images.npy")[[3, 0]]
    x = images[..., None].astype(np.float32) / 255.0
    probe = keras.Model(model.inputs[0], [model.get_layer("max_pooling2d").output, model.get_layer("conv2d").output])
    want_pool, want_conv = (np.asarray(t) for t in probe(x))
    folder = project / "outputs" / "feature_maps"
    np.testing.assert_allclose(np.load(folder / "max_pooling2d" / "trained.npy"), want_pool, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.load(folder / "0" / "trained.npy"), want_conv, rtol=1e-5, atol=1e-6)
    layer = json.loads((folder / "0" / "layer.json").read_text(encoding="utf-8"))
    assert layer == {"name": "conv2d", "shape": [28, 28, 4], "split": "train", "samples": [3, 0], "labels": [3, 0]}
    per_sample = json.loads((folder / "0" / "samples.json").read_text(encoding="utf-8"))  # the report's captions
    maps = np.load(folder / "0" / "trained.npy")
    assert per_sample["trained"] == [layer_summary(channel_stats(maps[i : i + 1])) for i in (0, 1)]


def test_render_figures_draws_the_chosen_samples(project, run_pipeline):
    run_pipeline(project, *CHOSEN, stages=PIPELINE[: PIPELINE.index(render_figures) + 1])
    assert (project / "outputs" / "figures" / "samples" / "sample_3.png").is_file()


def test_render_maps_draws_each_chosen_layer_by_its_entry_for_each_sample(project, run_pipeline):
    run_pipeline(project, *CHOSEN, stages=[*UP_TO_MAPS, render_maps])
    figures = project / "outputs" / "figures"
    assert (figures / "feature_maps" / "max_pooling2d" / "untrained_sample_0.png").is_file()
    assert (figures / "feature_maps" / "0" / "trained_sample_3.png").is_file()


def test_dense_layer_maps_are_vectors(project, run_pipeline):
    run_pipeline(project, "feature_maps.layers=[flatten,dense]", stages=UP_TO_MAPS)
    assert np.load(project / "outputs" / "feature_maps" / "dense" / "untrained.npy").shape == (1, 10)


def test_dense_layer_maps_are_drawn_as_vectors(project, run_pipeline):
    run_pipeline(project, "feature_maps.layers=[flatten,dense]", stages=[*UP_TO_MAPS, render_maps])
    assert (project / "outputs" / "figures" / "feature_maps" / "flatten" / "trained_sample_0.png").is_file()


def test_untrained_seed_decides_the_untrained_weights(project, stage_config, run_pipeline):
    run_pipeline(project, stages=[fetch_model])
    kernels, archives = [], []
    for seed in (7, 7, 8):
        build_untrained.run(stage_config("build_untrained", f"untrained.seed={seed}"), project)
        kernels.append(np.load(project / "outputs" / "weights" / "untrained" / "conv2d_1.kernel.npy"))
        archives.append((project / "outputs" / "models" / "untrained.keras").read_bytes())
    np.testing.assert_array_equal(kernels[0], kernels[1])
    assert archives[0] == archives[1]  # same seed, same bytes: DVC skips what depends on the model
    assert not np.allclose(kernels[0], kernels[2])


@pytest.fixture(scope="session")
def good_outputs(tmp_path_factory, tiny_assets) -> Path:
    """``outputs/`` of the whole pipeline, run in process (as ``run_pipeline``) in a project configured as
    ``project`` is, once per test run: the good outputs each bad-config case starts from."""

    def make(base: Path) -> dict:
        with pytest.MonkeyPatch.context() as patch:  # what _isolated_env and project give a test
            patch.setenv("CONVLENS_MIRROR", str(tiny_assets["mirror"]))
            patch.setenv("CONVLENS_CACHE", str(base / "cache"))
            patch.delenv("DVC_STAGE", raising=False)
            patch.delenv("DVC_ROOT", raising=False)
            root = copy_project(base / "project")
            configure(root, str(tiny_assets["model"]), tiny_assets["sums"])

            def composed(*overrides):
                return compose(root, list(overrides))

            def stage_config(stage, *overrides):
                return select(composed(*overrides), declared_params(root, stage))

            for module in PIPELINE:
                run_stage(module, stage_config, composed, root)
        return {"outputs": str(root / "outputs")}

    return Path(made_once(tmp_path_factory, "good_outputs", make)["outputs"])


@pytest.mark.parametrize(
    ("module", "override", "message"),
    [
        (
            feature_maps,
            "feature_maps.layers=[conv9]",
            "unknown layer 'conv9'; this model has 0:conv2d, 1:max_pooling2d",
        ),
        (feature_maps, "feature_maps.layers=[9]", "layer index 9 is out of range 0..5"),
        (
            samples,
            "samples.indices=[12]",
            "samples.indices: image 12 is out of range: the train split has images 0..11",
        ),
        (samples, "samples.indices=[-1]", "samples.indices[0] must be an integer in 0..2147483647, got -1"),
        (samples, "samples.indices=[]", "samples.indices must be a list of at least 1"),
        (samples, "samples.indices=[1,1]", "samples.indices lists 1 twice"),
        (samples, "samples.indices=[0.5]", "must be an integer in 0..2147483647, got 0.5"),
        (samples, "samples.split=valid", "samples.split must be one of train, test"),
        (feature_maps, "feature_maps.batch_size=0", "feature_maps.batch_size must be an integer in 1..100000"),
        (feature_maps, "input.scale=0", "input.scale must be a finite number in 0.001..1000000"),
        (
            feature_maps,
            "input.scale=nan",
            "input.scale must be a finite number in 0.001..1000000, got nan",
        ),
        (feature_maps, "feature_maps.layers=[]", "feature_maps.layers must be a list of at least 1"),
        (render_maps, "render.map_cmap=nope", "render.map_cmap must be a matplotlib colormap name"),
        (render_maps, "render.dpi=100000", "render.dpi must be an integer in 10..600, got 100000"),
        (render_figures, "render.filter_vmin=1.0", "must be below render.filter_vmax"),
        (render_figures, "render.input_channels=sum", "render.input_channels must be one of first, mean, all"),
        (render_maps, "render.map_columns=0", "render.map_columns must be an integer in 1..1024, got 0"),
        (extract_weights, "weights.layers=[flatten]", "has no kernel"),
        (extract_weights, "weights.layers=[conv9]", "unknown layer 'conv9'; this model has 0:conv2d, 1:max_pooling2d"),
        (extract_weights, "weights.layers=[6]", "layer index 6 is out of range 0..5; this model has 0:conv2d"),
        (extract_weights, "weights.layers=[-1]", "weights.layers[0] must be a layer index ≥ 0 or a layer name, got -1"),
        (
            extract_weights,
            "weights.layers=[1.5]",
            "weights.layers[0] must be a layer name (letters, digits, _ . -), outer/inner for a nested model's layer, "
            "or an index ≥ 0, got 1.5",
        ),
        (extract_weights, "weights.layers=[]", "weights.layers must be a list of at least 1, got"),
        (
            extract_weights,
            "weights.percentiles=[50,101]",
            "weights.percentiles[1] must be a finite number in 0..100, got 101",
        ),
        (
            extract_weights,
            "weights.percentiles=[-5]",
            "weights.percentiles[0] must be a finite number in 0..100, got -5",
        ),
        (
            extract_weights,
            "weights.percentiles=[median]",
            "weights.percentiles[0] must be a finite number in 0..100, got 'median'",
        ),
        (build_untrained, "untrained.seed=-1", "untrained.seed must be an integer in 0..4294967295, got -1"),
        (build_untrained, "untrained.seed=1.5", "untrained.seed must be an integer in 0..4294967295, got 1.5"),
        (build_untrained, "untrained.seed=abc", "got 'abc'"),
        (build_untrained, "weights.layers=[conv9]", "unknown layer 'conv9'"),
    ],
)
def test_bad_config_fails_clearly_and_leaves_good_outputs_untouched(
    project, stage_config, composed, good_outputs, module, override, message
):
    shutil.copytree(good_outputs, project / "outputs")  # what run_pipeline(project) makes, made once per run
    before = snapshot(project / "outputs")
    with pytest.raises(ConvlensError) as err:
        run_stage(module, stage_config, composed, project, override)
    assert message in one_line(err)
    assert snapshot(project / "outputs") == before
    assert not [p for p in (project / "outputs").rglob(".*") if p.name != ".gitignore"]


def test_a_layer_listed_twice_by_name_and_index_is_refused(project, run_pipeline, tiny_assets):
    """`[conv2d, 0]` names the same layer twice; the schema cannot know it, fetch_model can (before: merged)."""
    with pytest.raises(ConvlensError) as err:
        run_pipeline(project, "feature_maps.layers=[conv2d,0]")
    assert str(err.value) == (
        f"{tiny_assets['model']}: feature_maps.layers names layer 'conv2d' twice (as 0 and another entry); list it once"
    )
    assert not (project / "outputs" / "metrics" / "feature_maps.json").exists()


def test_checksum_mismatch_writes_no_data(project, stage_config):
    with pytest.raises(ConvlensError, match="train-images-idx3-ubyte.gz not found"):
        fetch_data.run(stage_config("fetch_data", "data.files.train_images.sha256=" + "0" * 64), project)
    assert not (project / "outputs" / "data").exists()


def test_local_model_must_exist_and_be_an_archive(project, stage_config, tmp_path):
    with pytest.raises(ConvlensError, match="does not exist"):
        fetch_model.run(stage_config("fetch_model", f"model.path={tmp_path / 'missing.keras'}"), project)
    junk = tmp_path / "junk.keras"
    junk.write_text("<html>", encoding="utf-8")
    with pytest.raises(ConvlensError, match="not a Keras .keras archive"):
        fetch_model.run(stage_config("fetch_model", f"model.path={junk}"), project)
    assert not (project / "outputs" / "models").exists() or not list((project / "outputs" / "models").iterdir())


def test_multichannel_kernels_render_in_every_mode(project, stage_config, run_pipeline):
    run_pipeline(project, stages=PIPELINE[: PIPELINE.index(render_figures)])
    from PIL import Image

    sizes = {}
    for mode in ("first", "mean", "all"):
        render_figures.run(stage_config("render_figures", f"render.input_channels={mode}"), project)
        sizes[mode] = Image.open(project / "outputs" / "figures" / "weights" / "trained_conv2d_1_filters.png").size
    assert sizes["first"] == sizes["mean"]
    assert sizes["all"][1] > sizes["first"][1]  # one row per input channel


def test_dense_kernels_are_extracted_whole(project, run_pipeline):
    run_pipeline(project, "weights.layers=[conv2d,dense]", stages=PIPELINE[: PIPELINE.index(extract_weights) + 1])
    assert np.load(project / "outputs" / "weights" / "trained" / "dense.kernel.npy").shape == (392, 10)


def test_dense_kernels_get_histograms_and_no_filter_grid(project, run_pipeline, caplog):
    caplog.set_level("INFO")
    run_pipeline(project, "weights.layers=[conv2d,dense]", stages=PIPELINE[: PIPELINE.index(render_figures) + 1])
    weights = project / "outputs" / "figures" / "weights"
    assert (weights / "trained_dense_hist.png").is_file() and (weights / "dense_hist_overlay.png").is_file()
    assert not (weights / "trained_dense_filters.png").exists()
    assert "dense: no filter grid, its kernel is 2-D" in caplog.text


def test_samples_from_the_test_split(project, run_pipeline):
    run_pipeline(project, "samples.split=test", "samples.indices=[5,1]", stages=PIPELINE[:3])
    index = json.loads((project / "outputs" / "samples" / "index.json").read_text(encoding="utf-8"))
    test_labels = np.load(project / "outputs" / "data" / "test_labels.npy")
    assert index["split"] == "test" and index["labels"] == test_labels[[5, 1]].tolist()
    images = np.load(project / "outputs" / "samples" / "images.npy")
    np.testing.assert_array_equal(images, np.load(project / "outputs" / "data" / "test_images.npy")[[5, 1]])


def test_a_model_built_for_other_inputs_is_refused_before_any_map(project, stage_config, run_pipeline, tmp_path):
    from convlens.model.keras_models import keras

    colour = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(2, 3, name="conv2d")])
    colour.save(tmp_path / "colour.keras")
    overrides = (f"model.path={tmp_path / 'colour.keras'}", "feature_maps.layers=[conv2d]")
    run_pipeline(project, *overrides, stages=[fetch_model, fetch_data, samples])
    with pytest.raises(ConvlensError, match=r"expects inputs of shape 32×32×3 but the data's samples are 28×28×1"):
        feature_maps.run(stage_config("feature_maps", *overrides), project, "conv2d")
    assert not (project / "outputs" / "feature_maps").exists()
