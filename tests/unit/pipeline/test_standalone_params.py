"""A stage run on its own composes conf/ with its overrides into params.yaml, as `dvc exp run -S` does. Values of
params.yaml that composition drops (an applied experiment's, an earlier standalone run's) are named in a warning with
the way back, no longer replaced without a word (outside tester, finding 4). Refusing instead broke the pages' own
flow: a stage run on its own after `dvc exp run` left an experiment's params.yaml in the workspace."""

import logging

import yaml
from omegaconf import OmegaConf

from convlens.pipeline.config import compose, load_config, run_stage, write_params

WARNING = (
    "params.yaml held values conf/ does not compose ({}), now replaced by conf/'s: a stage run on its own composes "
    "conf/ with its overrides only; an applied experiment comes back with `dvc exp apply <name>`, and "
    "`dvc exp run -S key=value` changes one without losing it"
)


def apply_experiment(project, *overrides: str) -> None:
    """params.yaml as `dvc exp apply` leaves it: conf/ composed with the experiment's -S options."""
    write_params(project, compose(project, overrides))


def written(project) -> dict:
    return yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_an_applied_experiments_values_are_named_when_recomposed_away(project, caplog):
    apply_experiment(project, "render.map_cmap=gray", "untrained.seed=7", "data.seed=3", "samples.split=test")
    with caplog.at_level(logging.INFO):
        cfg = load_config("samples", ["samples.indices=[0,5]"], project)
    assert warnings(caplog) == [WARNING.format("data.seed=3, render.map_cmap='gray', samples.split='test' and 1 more")]
    assert list(cfg.samples.indices) == [0, 5]
    assert written(project) == OmegaConf.to_container(compose(project, ["samples.indices=[0,5]"]))


def test_a_group_chosen_by_the_experiment_is_named(project, tmp_path, caplog):
    """The tester's case: the experiment chose other presets (data=folder), which conf/ does not choose."""
    for name in ("cat", "dog"):
        (tmp_path / "photos" / name).mkdir(parents=True)
    apply_experiment(project, "data=folder", f"data.path={tmp_path / 'photos'}")
    with caplog.at_level(logging.INFO):
        load_config("samples", ["samples.indices=[0,5]"], project)
    (line,) = warnings(caplog)
    assert line.startswith(
        "params.yaml held values conf/ does not compose (data.classes=None, data.files={}, data.format='folder' "
        "and 4 more), now replaced"
    )


def test_through_the_stage_entry_point_the_warning_is_one_line(project, monkeypatch, capsys):
    apply_experiment(project, "untrained.seed=7")
    monkeypatch.chdir(project)
    ran = []
    run_stage("samples", lambda cfg, root: ran.append(list(cfg.samples.indices)), ["samples.indices=[0,5]"])
    assert ran == [[0, 5]]
    out = capsys.readouterr().out.splitlines()
    assert f"samples: {WARNING.format('untrained.seed=7')}" in out


def test_the_same_keys_overridden_again_lose_nothing(project, caplog):
    """Rerunning a stage with new values of every key it overrode before: no warning; other keys: the earlier
    override is named."""
    with caplog.at_level(logging.INFO):
        load_config("samples", ["samples.indices=[0,5]", "samples.split=test"], project)
        cfg = load_config("samples", ["samples.indices=[1]", "samples.split=train"], project)
    assert list(cfg.samples.indices) == [1] and cfg.samples.split == "train" and not warnings(caplog)
    with caplog.at_level(logging.INFO):
        load_config("feature_maps", ["input.scale=1"], project)
    assert warnings(caplog) == [WARNING.format("samples.indices=[1]")]


def test_params_yaml_as_conf_composes_it_takes_the_overrides_quietly(project, caplog):
    """The normal path: params.yaml is conf/'s, so composing conf/ with the overrides loses nothing."""
    with caplog.at_level(logging.INFO):
        cfg = load_config("samples", ["samples.indices=[0,5]"], project)
    assert list(cfg.samples.indices) == [0, 5] and not warnings(caplog)
    assert written(project) == OmegaConf.to_container(compose(project, ["samples.indices=[0,5]"]))


def test_a_missing_params_yaml_is_composed(project, caplog):
    (project / "params.yaml").unlink()
    with caplog.at_level(logging.INFO):
        assert list(load_config("samples", ["samples.indices=[2]"], project).samples.indices) == [2]
    assert not warnings(caplog)
