import ast
import fcntl
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ReadonlyConfigError

from convlens.errors import ConvlensError
from convlens.pipeline import conf_record, paths
from convlens.pipeline.config import (
    compose,
    declared_params,
    hydra_message,
    load_config,
    origin_root,
    project_root,
    run_stage,
    select,
    stage_definition,
    write_params,
)
from convlens.pipeline.repo_lock import check_params_unchanged, params_drift, repository_lock
from tests.support.helpers import PROJECT, cli, error_line, full_analyses, imported_files

STAGES = {
    name: stage_definition(PROJECT, name)
    for name in yaml.safe_load((PROJECT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
}


def test_params_yaml_is_the_composition_of_conf():
    """`dvc repro` reads params.yaml and never recomposes: it must equal conf/ (run `make params`)."""
    composed = OmegaConf.to_container(compose(PROJECT), resolve=True)
    assert yaml.safe_load((PROJECT / "params.yaml").read_text(encoding="utf-8")) == composed


def test_the_committed_record_of_conf_is_conf_as_composed():
    """The record of conf/ as params.yaml was composed (git-tracked) is conf/ now: `make params` rewrites it; a stale
    one would make a fresh clone's dvc repro ask params.yaml about edits it never had."""
    record = conf_record.read_record(paths.composed_conf_path(PROJECT))
    assert record is not None and record.digest == conf_record.conf_digest(PROJECT / "conf")
    params = yaml.safe_load((PROJECT / "params.yaml").read_text(encoding="utf-8"))
    assert record.settings == conf_record.conf_settings(PROJECT / "conf", params)


def test_a_foreach_instance_is_defined_by_its_stage():
    assert stage_definition(PROJECT, "feature_maps@conv2d_1") == stage_definition(PROJECT, "feature_maps")
    assert declared_params(PROJECT, "feature_maps@conv2d") == [
        "input.scale",
        "feature_maps.batch_size",
        "model.train_runs",
    ]


def test_params_yaml_holds_values_not_interpolations(tmp_path):
    """DVC reads params.yaml as plain YAML: ``model.source: ${model.path}`` must be written as the path itself."""
    overrides = ["model=local", "model.path=models/mine.keras", "feature_maps.layers=[conv2d]"]  # no file to read
    write_params(tmp_path, compose(PROJECT, overrides))
    text = (tmp_path / "params.yaml").read_text(encoding="utf-8")
    assert "${" not in text
    assert yaml.safe_load(text)["model"]["source"] == "models/mine.keras"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_declared_params_exist_and_only_they_are_readable(stage):
    cfg = select(compose(PROJECT), declared_params(PROJECT, stage))
    top = {p.split(".")[0] for p in declared_params(PROJECT, stage)}
    assert set(cfg) == top
    undeclared = next(k for k in ("render", "samples", "model") if k not in top)
    with pytest.raises((ConfigAttributeError, ConfigKeyError)):
        cfg[undeclared]
    for key in top:  # a stage cannot change what DVC recorded
        with pytest.raises(ReadonlyConfigError):
            cfg[key] = 1


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_load_config_gives_a_stage_its_declared_params_and_nothing_else(stage):
    """What a stage really gets (``load_config`` on params.yaml): reading an undeclared key raises."""
    declared = declared_params(PROJECT, stage)
    cfg = load_config(stage, [], PROJECT)
    full = OmegaConf.create(yaml.safe_load((PROJECT / "params.yaml").read_text(encoding="utf-8")))
    for key in declared:
        assert OmegaConf.select(cfg, key) == OmegaConf.select(full, key), key
    top = {p.split(".")[0] for p in declared}
    assert set(cfg) == top
    undeclared = next(k for k in ("render", "samples", "model") if k not in top)
    assert undeclared in full  # a key params.yaml has, which this stage did not declare
    with pytest.raises((ConfigAttributeError, ConfigKeyError)):
        getattr(cfg, undeclared)
    with pytest.raises((ConfigAttributeError, ConfigKeyError)):
        cfg[undeclared]
    for parent in top & {d.split(".")[0] for d in declared if "." in d}:  # e.g. feature_maps.batch_size only
        for key in set(full[parent]) - {d.split(".")[1] for d in declared if d.startswith(f"{parent}.")}:
            with pytest.raises((ConfigAttributeError, ConfigKeyError)):
                cfg[parent][key]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_module_a_stage_imports_is_one_of_its_dependencies(stage):
    """Editing any code a stage runs must rerun it: each imported file is a dep or lies in a dep folder."""
    deps = [Path(d) for d in STAGES[stage]["deps"]]
    script = f"stages/{stage}.py"
    assert Path(script) in deps
    imported = imported_files(PROJECT / script) | {script, "stages/__init__.py"}  # python -m runs the package init
    assert {"convlens/__init__.py", "convlens/pipeline/config.py", "convlens/schema.py"} <= imported
    uncovered = {f for f in imported if not any(Path(f) == d or d in Path(f).parents for d in deps)}
    assert not uncovered, f"{stage} imports {sorted(uncovered)} but dvc.yaml does not list them as deps"


@pytest.mark.parametrize("stage", sorted(set(STAGES) - {"fetch_model"}))
def test_no_stage_imports_tensorflow_at_module_level(stage):
    """``forward.open_network`` imports Keras lazily, for a model numpy does not compute (``test_any_model.py``
    checks that a chain model never starts TensorFlow), and so does ``initial.write_untrained``, for a model whose
    initialisation it does not replay (``test_initial.py`` checks the book's architecture never starts it)."""
    imported = imported_files(PROJECT / f"stages/{stage}.py", lazy=False)
    assert "convlens/model/keras_models.py" not in imported
    source = " ".join((PROJECT / f).read_text(encoding="utf-8") for f in [f"stages/{stage}.py", *imported])
    assert "import tensorflow" not in source and "import keras" not in source


def test_fetch_model_imports_keras_only_to_convert_a_legacy_h5(tmp_path):
    """At module level fetch_model imports nothing that starts TensorFlow; only ``convert_legacy`` (an ``.h5``) does."""
    script = PROJECT / "stages/fetch_model.py"
    tree = ast.parse(script.read_text(encoding="utf-8"))
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    modules = [n.module if isinstance(n, ast.ImportFrom) else a.name for n in top for a in n.names]
    assert not [m for m in modules if m and ("keras" in m or "tensorflow" in m)]
    lazy = [
        (f.name, ast.unparse(n))
        for f in tree.body
        if isinstance(f, ast.FunctionDef)
        for n in ast.walk(f)
        if isinstance(n, ast.ImportFrom) and "keras" in (n.module or "")
    ]
    assert lazy == [("convert_legacy", "from convlens.model.keras_models import convert_h5")]
    shaken = tmp_path / "fetch_model.py"
    shaken.write_text("\n".join(ast.unparse(n) for n in top), encoding="utf-8")
    imported = imported_files(shaken)
    assert "convlens/model/keras_models.py" not in imported
    source = " ".join((PROJECT / f).read_text(encoding="utf-8") for f in imported)
    assert "import tensorflow" not in source and "import keras" not in source


def test_a_stage_reads_params_yaml_and_under_dvc_refuses_arguments(project, monkeypatch):
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    params["untrained"]["seed"] = 7
    (project / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    assert load_config("build_untrained", [], project).untrained.seed == 7
    monkeypatch.setenv("DVC_STAGE", "build_untrained")
    assert load_config("build_untrained", [], project).untrained.seed == 7
    with pytest.raises(ConvlensError, match="dvc exp run -S"):
        load_config("build_untrained", ["untrained.seed=3"], project)


def test_standalone_overrides_go_through_params_yaml(project):
    """One route: the overrides are composed into params.yaml (as `dvc exp run -S` does), then read from it."""
    cfg = load_config("samples", ["samples.split=test", "samples.indices=[0,5]"], project)
    assert cfg.samples.split == "test" and list(cfg.samples.indices) == [0, 5]
    written = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    assert written["samples"] == {"split": "test", "indices": [0, 5]}
    assert load_config("samples", [], project).samples.indices == [0, 5]


def test_an_override_of_a_key_the_stage_does_not_read_is_refused(project):
    """The README's old example `feature_maps conv2d_1 'samples=[0,5]'` silently did nothing with samples."""
    before = (project / "params.yaml").read_bytes()
    with pytest.raises(ConvlensError) as err:
        load_config("feature_maps", ["samples.indices=[0,5]"], project)
    assert str(err.value) == (
        "feature_maps does not read samples.indices (it reads input.scale, feature_maps.batch_size, model.train_runs); "
        "set it with dvc exp run -S 'samples.indices=…', which reruns every stage that reads it"
    )
    assert (project / "params.yaml").read_bytes() == before


def test_per_layer_stages_get_their_layer_as_an_argument(project, monkeypatch, capsys):
    monkeypatch.chdir(project)
    seen = []
    run_stage("feature_maps", lambda cfg, root, item: seen.append((item, cfg.input.scale)), ["conv2d_1"])
    assert seen == [("conv2d_1", 255.0)]
    with pytest.raises(SystemExit):
        run_stage("samples", lambda cfg, root: None, ["conv2d_1"])
    assert "samples@conv2d_1: error: unexpected arguments ['conv2d_1']" in capsys.readouterr().err


def test_a_stage_logs_to_stdout_under_its_label_and_takes_overrides_beside_its_layer(project, monkeypatch, capsys):
    monkeypatch.chdir(project)
    seen = []

    def run(cfg, root, item):
        seen.append((item, cfg.input.scale))
        logging.getLogger("feature_maps").info("mapped %s", item)

    run_stage("feature_maps", run, ["input.scale=1", "conv2d_1"])
    assert seen == [("conv2d_1", 1.0)]
    assert capsys.readouterr().out == (
        "feature_maps@conv2d_1: params.yaml recomposed from conf/ with input.scale=1\n"
        "feature_maps@conv2d_1: mapped conv2d_1\n"
    )


@pytest.mark.parametrize(
    ("message", "line"),
    [
        (
            "In 'config': Could not find 'model/foo'\n\nAvailable options in 'model':\n\tbook\n\tlocal\n"
            "Config search path:\n\tprovider=hydra, path=pkg://hydra.conf",
            "In 'config': Could not find 'model/foo'. Available options in 'model': book, local",
        ),
        (
            "Could not override 'foo'.\nTo append to your config use +foo=1\nKey 'foo' is not in struct",
            "Could not override 'foo'. It is not a key of conf/; params.yaml lists the keys",
        ),
        (
            "Error merging override x=1.\nValue 'a' could not be converted:\n\tInteger",
            ("Error merging override x=1. Value 'a' could not be converted: Integer"),
        ),
    ],
)
def test_hydras_errors_become_one_line_without_the_search_path(message, line):
    assert hydra_message(message) == line


def test_a_queued_experiment_finds_its_origin_repository(tmp_path):
    workspace = tmp_path / "repo" / ".dvc" / "tmp" / "exps" / "tmpabc123"
    assert origin_root(workspace) == tmp_path / "repo"
    assert origin_root(tmp_path / "repo") == tmp_path / "repo"


@pytest.mark.parametrize("override", ["model=nosuchmodel", "nosuchkey=1", "samples.indices=[unclosed"])
def test_bad_overrides_are_one_clear_line(project, override):
    with pytest.raises(ConvlensError, match="bad config override") as err:
        compose(project, [override])
    assert "\n" not in str(err.value)


def test_config_errors_from_the_command_line(project, tiny_assets):
    assert error_line(cli(project, "fetch_model", "model=foo"), "fetch_model") == (
        "fetch_model: error: bad config override: In 'config': Could not find 'model/foo'. "
        "Available options in 'model': book, local, train"
    )
    assert error_line(cli(project, "params", "foo=1"), "params") == (
        "params: error: bad config override: Could not override 'foo'. It is not a key of conf/; "
        "params.yaml lists the keys"
    )
    assert error_line(cli(project, "samples", "foo=1"), "samples") == (
        "samples: error: samples does not read foo (it reads samples); "
        "set it with dvc exp run -S 'foo=…', which reruns every stage that reads it"
    )
    assert error_line(cli(project, "build_untrained", "untrained.seed=-3"), "build_untrained") == (
        "build_untrained: error: untrained.seed must be an integer in 0..4294967295, got -3; e.g. untrained.seed=42"
    )
    assert not (project / "outputs").exists()


def test_the_project_root_is_where_the_stage_runs_not_dvc_root(project, tmp_path, monkeypatch):
    """A queued experiment runs in its own workspace while $DVC_ROOT names the original repository."""
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.chdir(project / "stages")
    assert project_root() == project
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConvlensError, match="is not inside a convlens project"):
        project_root()


def test_skip_teardown_exits_at_once_only_after_a_successful_run(project, monkeypatch, capsys):
    monkeypatch.chdir(project)
    exits = []
    monkeypatch.setattr("os._exit", lambda code: exits.append(code))
    run_stage("samples", lambda cfg, root: print("written"), [], skip_teardown=True)
    assert exits == [0] and "written" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        run_stage("samples", lambda cfg, root: (_ for _ in ()).throw(ConvlensError("bad")), [], skip_teardown=True)
    assert exits == [0]


def test_layout_paths_are_the_outputs_dvc_yaml_declares(tmp_path):
    """``pipeline.paths`` and ``dvc.yaml`` name the same files: a stage writing elsewhere would leave DVC's output
    missing and its own file untracked."""
    pipeline = yaml.safe_load((PROJECT / "dvc.yaml").read_text(encoding="utf-8"))
    stages, plots = pipeline["stages"], {p if isinstance(p, str) else next(iter(p)) for p in pipeline["plots"]}

    def outputs(stage: str) -> set[str]:
        body = stages[stage].get("do", stages[stage])
        declared = [*body.get("outs", []), *body.get("metrics", []), *body.get("plots", [])]
        return {o if isinstance(o, str) else next(iter(o)) for o in declared}

    def at(path: Path) -> str:
        return path.relative_to(tmp_path).as_posix()

    assert at(paths.config_check_path(tmp_path)) in outputs("check_config")
    assert at(paths.data_dir(tmp_path)) in outputs("fetch_data")
    assert at(paths.model_path(tmp_path, "trained")) in outputs("fetch_model")
    assert at(paths.model_path(tmp_path, "untrained")) in outputs("build_untrained")
    assert at(paths.samples_dir(tmp_path)) in outputs("samples")
    assert at(paths.weights_dir(tmp_path, "trained")) in outputs("extract_weights")
    assert at(paths.weights_dir(tmp_path, "untrained")) in outputs("build_untrained")
    for role, stage in (("trained", "extract_weights"), ("untrained", "build_untrained")):
        assert at(paths.filter_metrics_dir(tmp_path, role)) in outputs(stage)
        assert {at(paths.weight_metrics(tmp_path, role, ext)) for ext in ("csv", "json")} <= outputs(stage)
    assert {at(paths.channels_dir(tmp_path)), at(paths.feature_map_metrics(tmp_path))} <= outputs("map_metrics")
    per_model = {  # the per-model stages: each instance's outputs, "${item}" the model
        "dataset": (paths.dataset_dir, paths.confusion_dir),
        "activation_max": (paths.activation_max_dir, paths.activation_max_curves_dir),
        "render_activation_max": (paths.activation_max_figures_dir,),
    }
    full = full_analyses()
    for stage, made in per_model.items():  # a literal list, or the opt-in one of -S analyses=full
        foreach = stages[stage]["foreach"]
        assert (full["activation_max"] if foreach == "${analyses.activation_max}" else foreach) == list(paths.ROLES)
        assert {at(where(tmp_path, "trained")).replace("trained", "${item}") for where in made} == outputs(stage)
    assert paths.examples_dir(tmp_path, "trained").parent == paths.dataset_dir(tmp_path, "trained")
    for role in paths.ROLES:  # what ``metrics`` merges: inside each model's outputs, and a dependency of ``metrics``
        assert at(paths.dataset_summary(tmp_path, role)) in stages["metrics"]["deps"]
        assert paths.activation_max_summary(tmp_path, role).is_relative_to(tmp_path / full["activation_max_outputs"])
    assert "${analyses.activation_max_outputs}" in stages["metrics"]["deps"]
    assert {  # what metrics and report depend on with -S analyses=full: the opt-in stages' outputs
        key: full[key]
        for key in ("activation_max_outputs", "activation_max_figures", "attribution_metrics", "attribution_figures")
    } == {
        "activation_max_outputs": at(paths.activation_max_dir(tmp_path)),
        "activation_max_figures": at(paths.activation_max_figures_dir(tmp_path)),
        "attribution_metrics": at(paths.gradcam_metrics(tmp_path)),
        "attribution_figures": at(paths.gradcam_figures_dir(tmp_path)),
    }
    assert {"${analyses.activation_max_figures}", "${analyses.attribution_metrics}"} <= set(stages["report"]["deps"])
    assert "${analyses.attribution_figures}" in stages["report"]["deps"]
    for stage in ("gradcam", "render_gradcam"):
        assert stages[stage]["foreach"] == "${analyses.attribution}" and full["attribution"] == [paths.ATTRIBUTION]
    merged = (paths.dataset_metrics, paths.evaluate_metrics, paths.input_range_path, paths.activation_max_metrics)
    assert {at(where(tmp_path)) for where in merged} == {next(iter(m)) for m in stages["metrics"]["metrics"]}
    for stage, made in {
        "gradcam": (paths.gradcam_dir, paths.gradcam_metrics),
        "render_gradcam": (paths.gradcam_figures_dir,),
        "report": (paths.report_dir,),
    }.items():
        assert {at(where(tmp_path)) for where in made} <= outputs(stage), stage
    assert at(paths.map_figures_dir(tmp_path, "${item}")) in outputs("render_maps")
    assert at(paths.feature_maps_dir(tmp_path, "conv2d")) == "outputs/feature_maps/conv2d"
    assert at(paths.feature_maps_dir(tmp_path, "block/dw")) == "outputs/feature_maps/block/dw"  # a nested layer
    assert paths.layer_stem("block/dw") == "block.dw" and paths.layer_stem("conv2d") == "conv2d"  # file names
    assert "outputs/feature_maps/${item}" in outputs("feature_maps")
    assert {at(paths.figures_dir(tmp_path) / kind) for kind in ("weights", "samples")} == outputs("render_figures")
    per_model = (paths.dataset_figures_dir, paths.evaluate_figures_dir)  # render_dataset@<model>: one folder each
    assert {f"{at(where(tmp_path))}/${{item}}" for where in per_model} == outputs("render_dataset")
    for role in paths.ROLES:
        assert all(where(tmp_path, role) == where(tmp_path) / role for where in per_model)
        assert paths.examples_figures_dir(tmp_path, role).parent == paths.dataset_figures_dir(tmp_path, role)
    figures = (paths.weight_figures_dir, paths.sample_figures_dir, paths.dataset_figures_dir)
    assert {at(where(tmp_path)) for where in figures[:2]} == outputs("render_figures")
    plotted = (
        *figures,
        paths.map_figures_dir,
        paths.evaluate_figures_dir,
        paths.confusion_dir,
        paths.channels_dir,
    )
    assert {at(where(tmp_path)) for where in plotted} <= plots
    opt_in = {  # the opt-in analyses' plots are their stages' own: `dvc plots show` has them only when they run
        "render_activation_max": [f"{at(paths.activation_max_figures_dir(tmp_path))}/${{item}}"],
        "render_gradcam": [at(paths.gradcam_figures_dir(tmp_path))],
        "activation_max": [at(paths.activation_max_curves_dir(tmp_path, "trained")).replace("trained", "${item}")],
        "gradcam": [at(paths.sanity_dir(tmp_path) / curve) for curve in paths.SANITY_CURVES],
    }
    for stage, plotted_here in opt_in.items():
        body = stages[stage]["do"]
        assert [p if isinstance(p, str) else next(iter(p)) for p in body["plots"]] == plotted_here, stage
        assert not any(p.startswith(tuple(plotted_here)) or any(h.startswith(p) for h in plotted_here) for p in plots)


def test_the_file_names_stay_those_the_stages_have_always_written(tmp_path):
    """The names ``pipeline.paths`` gives each stage's files (a layer's address ``block/dw`` as ``block.dw``): a
    changed name would leave an old run's files unread by the report and ``compare``. The per-model stages' files
    moved into one folder per model (issue 25, docs/pipeline.md: a run from before reruns them); the metric files
    kept their names."""
    layer = "block/dw"
    made = {
        paths.images(tmp_path, "test"): "data/test_images.npy",
        paths.labels(tmp_path, "train"): "data/train_labels.npy",
        paths.sample_images(tmp_path): "samples/images.npy",
        paths.sample_index(tmp_path): "samples/index.json",
        paths.kernel(tmp_path, "trained", layer): "weights/trained/block.dw.kernel.npy",
        paths.weights_dir(tmp_path, "trained") / paths.bias_name(layer): "weights/trained/block.dw.bias.npy",
        paths.weight_layers(tmp_path, "untrained"): "weights/untrained/layers.json",
        paths.filter_metrics_dir(tmp_path, "trained") / paths.filter_metrics_name(layer): (
            "metrics/filters/trained/block.dw.csv"
        ),
        paths.weight_metrics(tmp_path, "untrained", "csv"): "metrics/weights_untrained.csv",
        paths.maps(tmp_path, layer, "trained"): "feature_maps/block/dw/trained.npy",
        paths.map_channels(tmp_path, layer, "untrained"): "feature_maps/block/dw/channels_untrained.csv",
        paths.map_layer(tmp_path, layer): "feature_maps/block/dw/layer.json",
        paths.map_summary(tmp_path, layer): "feature_maps/block/dw/summary.json",
        paths.channels_dir(tmp_path) / paths.channels_name(layer, "trained"): "metrics/channels/block.dw/trained.csv",
        paths.feature_map_metrics(tmp_path): "metrics/feature_maps.json",
        paths.dataset_metrics(tmp_path): "metrics/dataset.json",
        paths.dataset_index(tmp_path): "metrics/dataset/trained/index.json",
        paths.dataset_table(tmp_path, "trained", layer): "metrics/dataset/trained/trained_block.dw.csv",
        paths.examples_table(tmp_path, "untrained", layer): "metrics/dataset/untrained/examples/untrained_block.dw.csv",
        paths.dataset_summary(tmp_path, "untrained"): "metrics/dataset/untrained/summary.json",
        paths.evaluate_metrics(tmp_path): "metrics/evaluate.json",
        paths.input_range_path(tmp_path): "metrics/input_range.json",
        paths.confusion_dir(tmp_path, "trained")
        / paths.confusion_name("trained"): "metrics/confusion/trained/trained.csv",
        paths.activation_max_dir(tmp_path, "trained") / paths.activation_max_name("trained", layer): (
            "activation_max/trained/trained_block.dw.npy"
        ),
        paths.activation_max_summary(tmp_path, "trained"): "activation_max/trained/summary.json",
        paths.activation_max_metrics(tmp_path): "metrics/activation_max.json",
        paths.gradcam_dir(tmp_path) / paths.gradcam_name("untrained"): "gradcam/untrained.npy",
        paths.gradcam_dir(tmp_path) / paths.INDEX_NAME: "gradcam/index.json",
        paths.gradcam_metrics(tmp_path): "metrics/gradcam.json",
        paths.histogram(tmp_path, "trained", layer): "figures/weights/trained_block.dw_hist.png",
        paths.histogram_overlay(tmp_path, layer): "figures/weights/block.dw_hist_overlay.png",
        paths.filters_figure(tmp_path, "untrained", layer): "figures/weights/untrained_block.dw_filters.png",
        paths.sample_figure(tmp_path, 7): "figures/samples/sample_7.png",
        paths.map_figure(tmp_path, layer, "trained", 7): "figures/feature_maps/block/dw/trained_sample_7.png",
        paths.class_heatmap(tmp_path, "untrained", layer): "figures/dataset/untrained/block.dw_classes.png",
        paths.examples_figures_dir(tmp_path, "trained") / paths.examples_figure_name("trained", layer): (
            "figures/dataset/trained/examples/trained_block.dw.png"
        ),
        paths.confusion_figure(tmp_path, "untrained"): "figures/evaluate/untrained/untrained_confusion.png",
        paths.activation_max_figures_dir(tmp_path, "untrained")
        / paths.activation_max_figure_name("untrained", layer): (
            "figures/activation_max/untrained/untrained_block.dw.png"
        ),
        paths.gradcam_figures_dir(tmp_path) / paths.gradcam_figure_name(7): "figures/gradcam/sample_7.png",
        paths.report_page(tmp_path): "report/index.html",
        paths.compare_dir(tmp_path): "compare",
    }
    assert [paths.relative(tmp_path, path) for path in made] == [f"outputs/{name}" for name in made.values()]
    assert paths.images_name("*") == "*_images.npy" and paths.gradcam_figure_name("*") == "sample_*.png"


def test_params_drift_names_each_changed_key_with_both_values():
    ran_with = {"untrained": {"seed": 43}, "weights": {"layers": None, "percentiles": [1, 50]}}
    now = {"untrained": {"seed": 42}, "weights": {"layers": None, "percentiles": [1, 50]}, "render": {"dpi": 50}}
    assert params_drift(ran_with, now) == ["render.dpi '(absent)' → 50", "untrained.seed 43 → 42"]
    assert params_drift(now, now) == []
    check_params_unchanged(now, now)
    with pytest.raises(ConvlensError, match=r"^params.yaml changed while this stage ran \(untrained.seed 43 → 42\)"):
        check_params_unchanged({"untrained": {"seed": 43}}, {"untrained": {"seed": 42}})


def test_a_stage_holds_dvcs_repository_lock_and_waits_for_another_holder(tmp_path):
    with repository_lock(tmp_path) as held:  # not a DVC repository: nothing to lock
        assert held is None
    (tmp_path / ".dvc").mkdir()
    with repository_lock(tmp_path) as held:
        assert held == tmp_path / ".dvc" / "tmp" / "lock"
        fd = os.open(held, os.O_RDWR)
        try:  # what `dvc exp run` meets: DVC's backend (zc.lockfile) is this flock
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        with (
            pytest.raises(ConvlensError, match="another DVC command holds this repository's lock"),
            repository_lock(tmp_path, wait=0.3),
        ):
            pass
    with repository_lock(tmp_path, wait=0):  # released at the end of the block
        pass


@pytest.mark.parametrize(
    "module", ["stages.check_config", "stages.map_metrics", "stages.metrics", "hydra_plugins.convlens"]
)
def test_the_stages_that_read_no_array_start_without_numpy(module):
    """They head every changed run (check_config) or only merge JSON: importing numpy (~0.05 s of a
    0.15 s stage) would be paid for nothing. ``files.read_csv_columns`` and ``artifacts``' loaders import it where
    an array is read. The resolvers DVC imports to compose ``conf/`` (every ``dvc exp run``) read no array either."""
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'numpy')[:1])"
    found = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"
