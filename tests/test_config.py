import ast
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError

from stages.lib.config import (
    compose,
    declared_params,
    load_config,
    origin_root,
    project_root,
    run_stage,
    select,
    stage_definition,
)
from stages.lib.errors import ConvlensError
from tests.helpers import PROJECT

STAGES = {
    name: stage_definition(PROJECT, name)
    for name in yaml.safe_load((PROJECT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
}


def test_params_yaml_is_the_composition_of_conf():
    """`dvc repro` reads params.yaml and never recomposes: it must equal conf/ (run `make params`)."""
    composed = OmegaConf.to_container(compose(PROJECT), resolve=True)
    assert yaml.safe_load((PROJECT / "params.yaml").read_text(encoding="utf-8")) == composed


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_declared_params_exist_and_only_they_are_readable(stage):
    cfg = select(compose(PROJECT), declared_params(PROJECT, stage))
    top = {p.split(".")[0] for p in declared_params(PROJECT, stage)}
    assert set(cfg) == top
    undeclared = next(k for k in ("render", "samples", "model") if k not in top)
    with pytest.raises((ConfigAttributeError, ConfigKeyError)):
        cfg[undeclared]


def _lib_imports(path: Path) -> set[str]:
    """``stages/lib/*.py`` files a module imports, transitively."""
    found: set[str] = set()
    todo = [path]
    while todo:
        tree = ast.parse(todo.pop().read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom):
                if node.level == 1:  # from .x import y (inside stages/lib)
                    names = (
                        [f"stages.lib.{node.module}"] if node.module else [f"stages.lib.{a.name}" for a in node.names]
                    )
                elif node.module == "stages.lib":
                    names = [f"stages.lib.{a.name}" for a in node.names]
                elif node.module:
                    names = [node.module]
            for name in names:
                file = PROJECT / (name.replace(".", "/") + ".py")
                if name.startswith("stages.lib.") and file.is_file() and str(file.relative_to(PROJECT)) not in found:
                    found.add(str(file.relative_to(PROJECT)))
                    todo.append(file)
    return found


LIGHT = {"stages/lib/config.py", "stages/lib/errors.py", "stages/lib/io.py", "stages/lib/layout.py"}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_each_stage_depends_on_its_script_and_the_library_code_it_runs(stage):
    """Changing code a stage runs must rerun it; plumbing (config, errors, io, layout) is left out."""
    deps = set(STAGES[stage]["deps"])
    script = f"stages/{stage}.py"
    assert script in deps
    assert _lib_imports(PROJECT / script) - LIGHT <= deps


@pytest.mark.parametrize("stage", sorted(set(STAGES) - {"build_baseline"}))
def test_only_the_baseline_stage_imports_tensorflow(stage):
    imported = _lib_imports(PROJECT / f"stages/{stage}.py")
    assert "stages/lib/keras_models.py" not in imported
    source = " ".join((PROJECT / f).read_text(encoding="utf-8") for f in [f"stages/{stage}.py", *imported])
    assert "import tensorflow" not in source and "import keras" not in source


def test_under_dvc_a_stage_reads_params_yaml(project, monkeypatch):
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    params["baseline"]["seed"] = 7
    (project / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    monkeypatch.setenv("DVC_STAGE", "build_baseline")
    assert load_config("build_baseline", [], project).baseline.seed == 7
    with pytest.raises(ConvlensError, match="dvc exp run -S"):
        load_config("build_baseline", ["baseline.seed=3"], project)


def test_standalone_a_stage_composes_conf_with_overrides(project):
    cfg = load_config("samples", ["feature_maps.split=test", "samples=[0,5]"], project)
    assert cfg.feature_maps.split == "test" and list(cfg.samples) == [0, 5]


def test_per_layer_stages_get_their_layer_as_an_argument(project, monkeypatch, capsys):
    monkeypatch.chdir(project)
    seen = []
    run_stage("feature_maps", lambda cfg, root, item: seen.append((item, cfg.feature_maps.scale)), ["conv2d_1"])
    assert seen == [("conv2d_1", 255.0)]
    with pytest.raises(SystemExit):
        run_stage("samples", lambda cfg, root: None, ["conv2d_1"])
    assert "samples@conv2d_1: error: unexpected arguments ['conv2d_1']" in capsys.readouterr().err


def test_a_queued_experiment_finds_its_origin_repository(tmp_path):
    workspace = tmp_path / "repo" / ".dvc" / "tmp" / "exps" / "tmpabc123"
    assert origin_root(workspace) == tmp_path / "repo"
    assert origin_root(tmp_path / "repo") == tmp_path / "repo"


@pytest.mark.parametrize("override", ["model=nosuchmodel", "nosuchkey=1", "samples=[unclosed"])
def test_bad_overrides_are_one_clear_line(project, override):
    with pytest.raises(ConvlensError, match="bad config override") as err:
        load_config("samples", [override], project)
    assert "\n" not in str(err.value)


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
