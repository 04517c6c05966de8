"""A stage run on its own composes conf/ with its overrides into params.yaml; it refuses, writing nothing, when
params.yaml holds values that composition would discard (an applied experiment's: outside tester, finding 4)."""

import pytest
import yaml
from omegaconf import OmegaConf

from convlens.errors import ConvlensError
from convlens.pipeline.config import compose, load_config, run_stage, write_params


def apply_experiment(project, *overrides: str) -> bytes:
    """params.yaml as `dvc exp apply` leaves it: conf/ composed with the experiment's -S options."""
    write_params(project, compose(project, overrides))
    return (project / "params.yaml").read_bytes()


def test_an_applied_experiments_params_yaml_is_not_recomposed_away(project):
    before = apply_experiment(project, "render.map_cmap=gray", "untrained.seed=7", "data.seed=3", "samples.split=test")
    with pytest.raises(ConvlensError) as err:
        load_config("samples", ["samples.indices=[0,5]"], project)
    assert str(err.value) == (
        "params.yaml holds values conf/ does not compose (data.seed=3, render.map_cmap='gray', "
        "samples.split='test' and 1 more), which a stage run on its own would discard (it composes conf/ with "
        "its overrides only): change an experiment with `dvc exp run -S key=value`, or go back to conf/ first "
        "with `git checkout params.yaml` "
        "(or `dvc exp apply HEAD`), then rerun"
    )
    assert (project / "params.yaml").read_bytes() == before  # nothing written


def test_a_group_chosen_by_the_experiment_is_named(project, tmp_path):
    """The tester's case: the experiment chose other presets (data=folder), which conf/ does not choose."""
    for name in ("cat", "dog"):
        (tmp_path / "photos" / name).mkdir(parents=True)
    apply_experiment(project, "data=folder", f"data.path={tmp_path / 'photos'}")
    with pytest.raises(ConvlensError) as err:
        load_config("samples", ["samples.indices=[0,5]"], project)
    assert str(err.value).startswith(
        "params.yaml holds values conf/ does not compose (data.classes=None, data.files={}, data.format='folder' "
        "and 4 more), which"
    )


def test_through_the_stage_entry_point_it_is_one_line_and_exit_1(project, monkeypatch, capsys):
    before = apply_experiment(project, "untrained.seed=7")
    monkeypatch.chdir(project)
    ran = []
    with pytest.raises(SystemExit) as exit_:
        run_stage("samples", lambda cfg, root: ran.append(cfg), ["samples.indices=[0,5]"])
    assert exit_.value.code == 1 and not ran
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("samples: error: params.yaml holds values conf/ does not compose (untrained.seed=7), ")
    assert (project / "params.yaml").read_bytes() == before


def test_the_same_keys_overridden_again_are_not_refused(project):
    """Rerunning a stage with new values of every key it overrode before loses nothing."""
    load_config("samples", ["samples.indices=[0,5]", "samples.split=test"], project)
    cfg = load_config("samples", ["samples.indices=[1]", "samples.split=train"], project)
    assert list(cfg.samples.indices) == [1] and cfg.samples.split == "train"
    # overrides of other keys would drop samples.indices=[1]: refused, naming it
    with pytest.raises(
        ConvlensError, match=r"^params.yaml holds values conf/ does not compose \(samples.indices=\[1\]\)"
    ):
        load_config("feature_maps", ["input.scale=1"], project)
    with pytest.raises(
        ConvlensError, match=r"^params.yaml holds values conf/ does not compose \(samples.indices=\[1\]\)"
    ):
        load_config("samples", ["samples.split=test"], project)


def test_params_yaml_as_conf_composes_it_takes_the_overrides(project):
    """The normal path: params.yaml is conf/'s, so composing conf/ with the overrides loses nothing."""
    cfg = load_config("samples", ["samples.indices=[0,5]"], project)
    assert list(cfg.samples.indices) == [0, 5]
    written = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    assert written == OmegaConf.to_container(compose(project, ["samples.indices=[0,5]"]))


def test_a_missing_params_yaml_is_composed(project):
    (project / "params.yaml").unlink()
    assert list(load_config("samples", ["samples.indices=[2]"], project).samples.indices) == [2]
