"""The config schema: every key of params.yaml described once, checked at every route."""

import math
import shutil
import subprocess
import sys

import pytest
import yaml
from omegaconf import OmegaConf

from convlens.checks import COMMON_COLORMAPS, colormap
from convlens.errors import ConvlensError
from convlens.pipeline import paths
from convlens.pipeline.config import compose, load_config
from convlens.schema import INPUT_CHANNEL_MODES, SCHEMA, check_config, check_filter_range, check_input_channels, flatten
from tests.support.helpers import PROJECT

PARAMS = yaml.safe_load((PROJECT / "params.yaml").read_text(encoding="utf-8"))


def test_the_schema_describes_exactly_the_keys_of_params_yaml():
    assert set(flatten(PARAMS)) == set(SCHEMA)
    check_config(PARAMS)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.subdir=../x", "data.subdir must be a plain name (letters, digits, _ . -; not a path, '..' or empty)"),
        ("data.files.train_images.name=/etc/passwd", "data.files.train_images.name must be a plain name"),
        ("model.file=../../evil.keras", "model.file must be a plain name"),
        ("feature_maps.layers=[conv2d,/tmp/x]", "feature_maps.layers[1] must be a layer name"),
        ("feature_maps.layers=[conv2d,..]", "feature_maps.layers[1] must be a layer name"),
        ("feature_maps.layers=[conv2d,'']", "feature_maps.layers[1] must be a layer name"),
        ("feature_maps.layers=[.hidden]", "feature_maps.layers[0] must be a layer name"),
        ("dataset.layers=[a/../b]", "dataset.layers[0] must be a layer name"),
        ("input.scale=inf", "input.scale must be a finite number in 0.001..1000000, got inf"),
        ("input.scale=-255", "input.scale must be a finite number in 0.001..1000000, got -255"),
        ("render.filter_vmin=nan", "render.filter_vmin must be a finite number"),
        ("render.heatmap_cmap=nope", "render.heatmap_cmap must be a matplotlib colormap name"),
        ("untrained.seed=abc", "untrained.seed must be an integer in 0..4294967295, got 'abc'"),
        ("model=local", "model=local reads model.path, which is not set; set it: -S model=local -S model.path=FILE"),
        ("activation_max.steps=0", "activation_max.steps must be an integer in 1..100000, got 0"),
        ("activation_max.decay=0.9", "activation_max.decay must be a finite number in 0..0.5, got 0.9"),
        (
            "activation_max.learning_rate=0",
            "activation_max.learning_rate must be a finite number above 0 and at most 10, got 0",
        ),
        ("activation_max.layers=[../x]", "activation_max.layers[0] must be a layer name"),
        ("gradcam.layer=/tmp/x", "gradcam.layer must be a layer name"),
        ("gradcam.alpha=2", "gradcam.alpha must be a finite number in 0..1, got 2"),
        ("analyses.activation_max=[trained,trained]", "analyses.activation_max"),
        ("analyses.attribution=[both]", "analyses.attribution[0] must be one of trained_vs_untrained"),
        (  # a dep of report's, pointed elsewhere: refused before DVC reads dvc.yaml
            "analyses.attribution_figures=../../etc",
            "analyses.attribution_figures must be outputs/checked_config.txt while analyses.attribution is empty",
        ),
        (  # set by hand against its list: the report would not wait for the ascent
            "analyses.activation_max_outputs=outputs/activation_max",
            "analyses.activation_max_outputs must be outputs/checked_config.txt while analyses.activation_max is "
            "empty: it follows that list; leave it out (conf/config.yaml sets it from the list) and set only "
            "analyses.activation_max",
        ),
    ],
)
def test_bad_values_are_one_line_at_composition(override, message):
    """The schema's resolver runs while Hydra composes, as it does inside `dvc exp run`."""
    with pytest.raises(ConvlensError) as err:
        compose(PROJECT, [override])
    assert message in str(err.value) and "\n" not in str(err.value)
    assert "resolving interpolation" not in str(err.value)  # our line, unwrapped from OmegaConf's


@pytest.mark.parametrize(
    ("overrides", "ascent", "attribution"),
    [
        (["analyses=full", "analyses.activation_max=[]"], False, True),  # Grad-CAM alone
        (["analyses=full", "analyses.attribution=[]"], True, False),  # activation maximization alone
        (["analyses=light", "analyses.activation_max=[trained]"], True, False),  # from the default, one model
        (["analyses=light"], False, False),
        (["analyses=full"], True, True),
    ],
)
def test_one_analysis_alone_is_its_list_alone_the_deps_follow(overrides, ascent, attribution):
    """outside tester 3 #18: the deps ``metrics`` and ``report`` take from ``analyses`` follow its lists, so
    ``-S analyses=full -S 'analyses.activation_max=[]'`` runs Grad-CAM alone (was refused, naming a fix that dropped
    both analyses)."""
    analyses = compose(PROJECT, overrides)["analyses"]
    skipped = "outputs/checked_config.txt"
    assert analyses["activation_max_outputs"] == ("outputs/activation_max" if ascent else skipped)
    assert analyses["activation_max_figures"] == ("outputs/figures/activation_max" if ascent else skipped)
    assert analyses["attribution_metrics"] == ("outputs/metrics/gradcam.json" if attribution else skipped)
    assert analyses["attribution_figures"] == ("outputs/figures/gradcam" if attribution else skipped)


@pytest.mark.parametrize(
    ("vmin", "vmax", "message"),
    [
        (0.5, -0.5, "render.filter_vmin (0.5) must be below render.filter_vmax (-0.5)"),
        (0.5, 0.5, "must be below"),
        (float("nan"), 0.5, "must be below"),
        ("low", 0.5, "render.filter_vmin must be a number, got 'low'"),
        (None, 0.5, "render.filter_vmin must be a number, got None"),
        (-0.5, "1", "render.filter_vmax must be a number, got '1'"),
        (True, 0.5, "render.filter_vmin must be a number, got True"),
    ],
)
def test_a_filter_colour_range_that_makes_no_sense_is_refused(vmin, vmax, message):
    with pytest.raises(ConvlensError) as err:
        check_filter_range(vmin, vmax)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_input_channel_modes_are_checked():
    for mode in INPUT_CHANNEL_MODES:
        check_input_channels(mode)
    with pytest.raises(ConvlensError, match="render.input_channels='sum' is not one of first, mean, all"):
        check_input_channels("sum")


def test_a_tilde_path_is_refused_in_conf(tmp_path):
    with pytest.raises(ConvlensError) as err:
        check_config({"model": {**PARAMS["model"], "path": "~/x.keras", "source": "~/x.keras"}}, complete=False)
    assert str(err.value) == (
        "model.path must be a path without ~ (DVC does not expand it), got '~/x.keras'; "
        "e.g. model.path=/home/you/model.keras"
    )


def test_model_source_must_follow_model_path():
    bad = {"model": {**PARAMS["model"], "name": "local", "path": "models/a.keras", "source": "models/b.keras"}}
    with pytest.raises(ConvlensError, match=r"model.source \(models/b.keras\) must be model.path"):
        check_config(bad, complete=False)


def test_a_model_path_given_to_the_books_preset_says_to_choose_model_local():
    """outside tester 4 #9: ``-S model.path=FILE`` without ``-S model=local``, an engineer's likeliest slip, was
    answered about model.source, a key they never set."""
    bad = {"model": {**PARAMS["model"], "path": "models/my-cnn.keras"}}
    with pytest.raises(ConvlensError) as err:
        check_config(bad, complete=False)
    assert str(err.value) == (
        "model.path (models/my-cnn.keras) is your own model, but model=book is a preset that downloads its own; "
        "choose yours with -S model=local -S model.path=models/my-cnn.keras"
    )


@pytest.mark.parametrize("value", [math.nan, math.inf, 0, -1.0, True, "255", 1e-37, 1e-4, 2e6])
def test_input_scale_is_a_finite_number_in_its_range(value):
    with pytest.raises(ConvlensError, match="input.scale must be a finite number in 0.001..1000000"):
        check_config({"input": {"scale": value}}, complete=False)


def test_unknown_and_missing_keys_in_params_yaml():
    with pytest.raises(ConvlensError) as err:
        check_config({**PARAMS, "foo": 1})
    assert str(err.value) == "unknown config key foo; the keys are those of conf/ (see README 'Changing the config')"
    partial = {k: v for k, v in PARAMS.items() if k != "render"}
    with pytest.raises(ConvlensError) as err:
        check_config(partial)
    assert str(err.value) == (  # outside tester 4 #8: -S '~render.dpi' deletes it too, and make params is no fix
        "config key render.dpi is missing; every key of conf/ is needed: drop an override that deletes it "
        "(-S '~render.dpi'), or recompose a hand-edited params.yaml with `make params`"
    )


def test_a_stage_checks_the_keys_it_reads_in_a_hand_edited_params_yaml(project):
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    params["input"]["scale"] = float("nan")
    (project / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    with pytest.raises(ConvlensError, match="input.scale must be a finite number in 0.001..1000000, got nan"):
        load_config("feature_maps", [], project)


def test_the_check_config_stage_refuses_an_unknown_key_and_a_path_as_layer(project):
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    params["foo"] = 1
    (project / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "stages.check_config"], cwd=project, capture_output=True, text=True, encoding="utf-8"
    )
    assert done.returncode == 1 and done.stderr == (
        "check_config: error: unknown config key foo; the keys are those of conf/ (see README 'Changing the config')\n"
    )
    del params["foo"]
    params["feature_maps"]["layers"] = ["conv2d", "../../../victim"]
    (project / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "stages.check_config"], cwd=project, capture_output=True, text=True, encoding="utf-8"
    )
    assert done.returncode == 1 and "feature_maps.layers[1] must be a layer name" in done.stderr
    assert not paths.config_check_path(project).exists()


def test_the_check_config_stage_names_a_data_path_that_is_gone(project):
    """A hand-edited or older params.yaml whose data.path no longer exists: check_config's line, before DVC's own
    missing-dependency error at fetch_data (the same check as at composition, ``schema.check_data_location``)."""
    (project / "pics" / "a").mkdir(parents=True)
    params = OmegaConf.to_container(compose(project, ["data=folder", "data.path=pics"]), resolve=True)
    (project / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    shutil.rmtree(project / "pics")
    done = subprocess.run(
        [sys.executable, "-m", "stages.check_config"], cwd=project, capture_output=True, text=True, encoding="utf-8"
    )
    assert done.returncode == 1 and done.stderr == (
        f"check_config: error: data.path {project / 'pics'} does not exist; point it at a folder of class folders\n"
    )
    assert not paths.config_check_path(project).exists()


def test_names_that_would_be_paths_are_refused(project, tmp_path):
    with pytest.raises(ConvlensError, match=r"^feature_maps.layers must be a layer name"):
        paths.feature_maps_dir(project, "../../x")
    done = subprocess.run(
        [sys.executable, "-m", "stages.feature_maps", "../../x"],
        cwd=project,
        capture_output=True,
        text=True,
        encoding="utf-8",
    )
    assert done.returncode == 1 and done.stderr == (
        "feature_maps@../../x: error: the layer argument must be a layer name (letters, digits, _ . -), outer/inner "
        "for a nested model's layer, or an index ≥ 0, got '../../x'\n"
    )
    assert not (project / "outputs").exists()


def test_a_model_path_that_is_not_a_regular_file_is_named_by_its_kind(tmp_path, monkeypatch):
    import os
    import socket
    import stat

    from convlens.checks import model_file

    def refusal(value):
        with pytest.raises(ConvlensError) as err:
            model_file(tmp_path, value)
        return str(err.value)

    (tmp_path / "m.keras").write_bytes(b"x")
    assert model_file(tmp_path, "m.keras") == tmp_path / "m.keras"
    assert refusal("nothing.keras") == f"model.path {tmp_path}/nothing.keras does not exist; point it at a .keras file"
    assert refusal(".") == f"model.path {tmp_path} is a directory; point it at a .keras file"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "s.keras"))
        said = refusal("s.keras")
    assert said == f"model.path {tmp_path}/s.keras is a socket, not a regular file; point it at a .keras file"
    real_stat = os.stat
    for mode, kind in (
        (stat.S_IFBLK, "a block device"),
        (stat.S_IFCHR, "a character device"),
        (0, "not a regular file"),
    ):
        monkeypatch.setattr(os, "stat", lambda p, mode=mode: os.stat_result((mode | 0o600, *real_stat(tmp_path)[1:])))
        assert refusal("dev") == f"model.path {tmp_path}/dev is {kind}, not a regular file; point it at a .keras file"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"data": {"classes": ["Trouser", " "]}}, "data.classes[1] must be a non-empty string, got ' '"),
        ({"data": {"classes": ["Bag", "Bag"]}}, "data.classes lists 'Bag' twice; list each once, "),
        ({"data": {"classes": []}}, "data.classes must be a list of at least 1, got []; e.g. "),
        (
            {"data": {"files": {**PARAMS["data"]["files"], "test_labels": ["t10k-labels-idx1-ubyte.gz"]}}},
            "data.files.test_labels must be a mapping with name and sha256, got ['t10k-labels-idx1-ubyte.gz']",
        ),
        (
            {"model": {**PARAMS["model"], "path": " "}},
            "model.path must be null (the book's model) or the path of your .keras file, got ' '",
        ),
        (
            {"feature_maps": {"layers": [-1]}},
            "feature_maps.layers[0] must be a layer index ≥ 0 or a layer name, got -1",
        ),
        (
            {"model": {**PARAMS["model"], "sha256": "ABC"}},
            "model.sha256 must be 64 lowercase hex digits (the file's sha256), got 'ABC'",
        ),
        (
            {"data": {"files": {**PARAMS["data"]["files"], "test_labels": {"name": "t.gz", "sha256": "ABC"}}}},
            "data.files.test_labels.sha256 must be 64 lowercase hex digits (the file's sha256), got 'ABC'",
        ),
    ],
)
def test_text_and_list_values_are_named_with_what_they_must_be(section, message):
    with pytest.raises(ConvlensError) as err:
        check_config(section, complete=False)
    assert str(err.value).startswith(message)


LONG = "a" * 200


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            f"feature_maps.layers=[conv2d,{LONG}]",
            "feature_maps.layers[1] is 200 characters long, over the 128 a layer name may have (it becomes a file or "
            "folder name); name one of the model's layers, e.g. feature_maps.layers[1]=conv2d",
        ),
        (
            f"gradcam.layer=outer/{'b' * 129}",
            "a layer name in gradcam.layer is 129 characters long, over the 128 a layer name may have (it becomes a "
            "file or folder name); name one of the model's layers, e.g. gradcam.layer=conv2d",
        ),
        (
            f"data.subdir={'d' * 129}",
            "data.subdir is 129 characters long, over the 128 a name may have (it becomes a file or folder name); "
            "shorten it",
        ),
    ],
)
def test_a_name_over_128_characters_is_refused_for_its_length_not_as_a_path(override, message):
    """Issue 28 §6: the reason is the length (a 128-character name still passes), not "would be a path"."""
    with pytest.raises(ConvlensError) as err:
        compose(PROJECT, [override])
    assert str(err.value) == message
    compose(
        PROJECT, [override.replace("a" * 200, "a" * 128).replace("b" * 129, "b" * 128).replace("d" * 129, "d" * 128)]
    )


def test_a_model_layer_named_over_128_characters_is_refused_for_its_length():
    from convlens.model.layers import config_problem

    config = {"class_name": "Sequential", "config": {"layers": [{"class_name": "Conv2D", "config": {"name": LONG}}]}}
    assert config_problem(config) == (
        "the name of layer 0 is 200 characters long, over the 128 a layer name may have (it becomes a file or folder "
        "name): rename the layer"
    )
    config["config"]["layers"][0]["config"]["name"] = "a" * 128
    assert config_problem(config) is None


def test_samples_indices_holds_at_most_100_samples():
    """Issue 28 §6: 60,000 indices meant gigabytes of feature maps and a report no browser opens."""
    message = (
        "samples.indices must be a list of at most 100 (the report embeds every sample's feature maps of every "
        "layer), got {n} entries; e.g. samples.indices='[0,1]'"
    )
    with pytest.raises(ConvlensError) as err:
        compose(PROJECT, [f"samples.indices=[{','.join(map(str, range(101)))}]"])
    assert str(err.value) == message.format(n=101)
    with pytest.raises(ConvlensError) as err:
        check_config({"samples": {"split": "train", "indices": list(range(60_000))}}, complete=False)
    assert str(err.value) == message.format(n=60000)
    assert compose(PROJECT, [f"samples.indices=[{','.join(map(str, range(100)))}]"])["samples"]["indices"] == list(
        range(100)
    )


def test_the_full_preset_with_one_model_composes_and_light_has_no_analysis():
    one = compose(PROJECT, ["analyses=full", "analyses.activation_max=[trained]"]).analyses
    assert list(one.activation_max) == ["trained"] and one.activation_max_figures == "outputs/figures/activation_max"
    light = compose(PROJECT).analyses
    assert light.name == "light" and not light.activation_max and not light.attribution


def test_the_colormaps_known_without_matplotlib_are_matplotlib_colormaps():
    """``checks.colormap`` passes these without importing matplotlib (DVC's process, while it composes conf/); any
    other name is looked up there, so a name outside both is refused."""
    import matplotlib as mpl

    assert COMMON_COLORMAPS and COMMON_COLORMAPS.issubset(mpl.colormaps)
    colormap("render.map_cmap", "magma_r")
    colormap("render.map_cmap", "twilight_shifted")  # not in the set: matplotlib knows it
    with pytest.raises(ConvlensError, match="render.map_cmap must be a matplotlib colormap name"):
        colormap("render.map_cmap", "magma_rr")
