"""A ``conf/`` edit that ``params.yaml`` lacks (no ``make params`` before ``dvc repro``) is refused, not run stale.

``check_config`` keeps a record of ``conf/`` as last composed (``outputs/composed_conf.yaml``); when ``conf/``'s files
change, the keys whose composed value changed must have reached ``params.yaml``. Values set with ``-S`` or by hand
at other keys are not asked about.
"""

from __future__ import annotations

import pytest
import yaml
from omegaconf import OmegaConf

from convlens.errors import ConvlensError
from convlens.pipeline import conf_record, paths
from convlens.pipeline.config import compose
from stages import check_config

BEFORE = {"render.map_cmap": "viridis", "render.dpi": 100, "samples.indices": [0]}
AFTER = {"render.map_cmap": "magma", "render.dpi": 100, "samples.indices": [0]}


def nested(flat: dict) -> dict:
    """``{"a.b": 1}`` → ``{"a": {"b": 1}}``: params.yaml's shape."""
    tree: dict = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def test_a_changed_setting_that_params_does_not_hold_is_stale():
    assert conf_record.stale_keys(nested(BEFORE), BEFORE, AFTER) == ["render.map_cmap"]
    assert conf_record.stale_keys(nested(AFTER), BEFORE, AFTER) == []


def test_a_value_of_the_users_at_the_edited_key_is_stale_too():
    """An applied experiment's -S render.map_cmap=cividis, then conf/ edited to magma: which one is meant is the
    user's to say (outside tester 5 #3)."""
    params = nested({**BEFORE, "render.map_cmap": "cividis"})
    assert conf_record.stale_keys(params, BEFORE, AFTER) == ["render.map_cmap"]


def test_values_set_at_keys_the_edit_left_alone_are_not_asked_about():
    params = nested({**AFTER, "render.dpi": 300, "samples.indices": [0, 5]})
    assert conf_record.stale_keys(params, BEFORE, AFTER) == []


def test_a_setting_conf_added_or_dropped_is_stale_until_params_follows():
    added = {**AFTER, "film.filters": 16}
    assert conf_record.stale_keys(nested(AFTER), AFTER, added) == ["film.filters"]
    assert conf_record.stale_keys(nested(added), AFTER, added) == []
    assert conf_record.stale_keys(nested(added), added, AFTER) == ["film.filters"]
    assert conf_record.stale_keys(nested(AFTER), added, AFTER) == []


def test_the_line_names_each_key_both_values_and_the_fixes():
    line = conf_record.stale_line(["render.map_cmap"], nested(BEFORE), AFTER)
    assert "params.yaml has render.map_cmap 'viridis' where conf/ now has 'magma'" in line
    assert "make params" in line and "python -m convlens params KEY=VALUE" in line and "\n" not in line
    many = conf_record.stale_line([f"k{i}" for i in range(5)], {}, {})
    assert many.count("(absent)") == 6 and "and 2 more" in many


def test_the_digest_follows_conf_files_not_editors_files(tmp_path):
    conf = tmp_path / "conf"
    (conf / "render").mkdir(parents=True)
    (conf / "config.yaml").write_text("a: 1\n", encoding="utf-8")
    (conf / "render" / "book.yaml").write_text("dpi: 100\n", encoding="utf-8")
    first = conf_record.conf_digest(conf)
    (conf / "render" / ".book.yaml.swp").write_bytes(b"\x00vim")
    (conf / "render" / "book.yaml~").write_text("dpi: 1\n", encoding="utf-8")
    assert conf_record.conf_digest(conf) == first
    (conf / "render" / "book.yaml").write_text("dpi: 101\n", encoding="utf-8")
    edited = conf_record.conf_digest(conf)
    assert edited != first
    (conf / "render" / "book.yaml").rename(conf / "render" / "other.yaml")
    assert conf_record.conf_digest(conf) not in (first, edited)


@pytest.mark.parametrize("text", [None, "", "[1, 2]\n", "conf_sha256: 1\nsettings: {}\n", "conf_sha256: x\n", "a: [\n"])
def test_a_missing_or_foreign_record_reads_as_none(tmp_path, text):
    path = tmp_path / "composed_conf.yaml"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    assert conf_record.read_record(path) is None


def test_a_record_reads_back_as_written(tmp_path):
    path = tmp_path / "outputs" / "composed_conf.yaml"
    path.parent.mkdir()
    conf_record.write_record(path, conf_record.Record("abc", AFTER))
    assert conf_record.read_record(path) == conf_record.Record("abc", AFTER)
    assert conf_record.read_record(path.with_name("other.yaml")) is None
    assert path.read_text(encoding="utf-8").startswith(conf_record.HEADER)


def params_of(root) -> dict:
    return yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))


def set_params(root, tree: dict) -> None:
    (root / "params.yaml").write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")


def edit(root, rel: str, old: str, new: str) -> None:
    path = root / "conf" / rel
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def check(root) -> None:
    """check_config as `dvc repro` runs it (no DVC_EXP_NAME)."""
    check_config.run(OmegaConf.create({}), root)


@pytest.fixture
def make_params(project, monkeypatch):
    """``make params [OVERRIDES]``: the command, run in the project."""
    from convlens.cli import params as params_command

    monkeypatch.chdir(project)
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    (project / "outputs").mkdir(exist_ok=True)  # a project that has run (one that never did gets its record later)
    return lambda *overrides: params_command.main(list(overrides))


def record_of(root) -> conf_record.Record:
    record = conf_record.read_record(paths.composed_conf_path(root))
    assert record is not None
    return record


def test_dvc_repro_after_a_conf_edit_without_make_params_is_refused(project, make_params):
    make_params()
    assert record_of(project) == conf_record.Record(
        conf_record.conf_digest(project / "conf"), conf_record.conf_settings(project / "conf", params_of(project))
    )
    edit(project, "render/book.yaml", "map_cmap: viridis", "map_cmap: magma")
    before = paths.composed_conf_path(project).read_bytes()
    stale = r"params.yaml has render\.map_cmap 'viridis' where conf/ now has 'magma'"
    with pytest.raises(ConvlensError, match=stale):
        check(project)
    assert paths.composed_conf_path(project).read_bytes() == before
    assert not paths.config_check_path(project).exists()  # no mark: nothing downstream would run
    make_params()
    check(project)
    assert record_of(project).settings["render.map_cmap"] == "magma"


def test_a_second_edit_after_make_params_is_refused_too(project, make_params):
    """outside tester 5 #1: make params records conf/, so the edit after it is the one asked about."""
    make_params()
    edit(project, "render/book.yaml", "map_cmap: viridis", "map_cmap: magma")
    make_params()
    edit(project, "render/book.yaml", "map_cmap: magma", "map_cmap: plasma")
    with pytest.raises(ConvlensError, match=r"render\.map_cmap 'magma' where conf/ now has 'plasma'"):
        check(project)


def test_an_edit_undone_after_make_params_is_refused(project, make_params):
    """outside tester 5 #1 B: conf/ back as it was, params.yaml still composed from the edit."""
    make_params()
    book = project / "conf" / "render" / "book.yaml"
    original = book.read_bytes()
    edit(project, "render/book.yaml", "map_cmap: viridis", "map_cmap: magma")
    make_params()
    book.write_bytes(original)
    with pytest.raises(ConvlensError, match=r"render\.map_cmap 'magma' where conf/ now has 'viridis'"):
        check(project)


def test_a_conf_edit_that_changes_no_value_passes_and_is_recorded(project, make_params):
    make_params()
    edit(project, "render/book.yaml", "map_cmap: viridis", "map_cmap: viridis  # the book's")
    check(project)
    assert record_of(project).digest == conf_record.conf_digest(project / "conf")


def test_experiment_values_at_other_keys_stay_and_the_edited_key_is_asked_about(project, make_params):
    """params.yaml as `dvc exp apply` leaves it (-S render.dpi=300) with conf/'s filter_cmap edited: only
    filter_cmap is named; once params.yaml holds it, the experiment's dpi passes."""
    make_params()
    params = params_of(project)
    params["render"]["dpi"] = 300
    set_params(project, params)
    edit(project, "render/book.yaml", "filter_cmap: viridis", "filter_cmap: magma")
    with pytest.raises(ConvlensError) as e:
        check(project)
    assert "render.filter_cmap" in str(e.value) and "render.dpi" not in str(e.value)
    params["render"]["filter_cmap"] = "magma"
    set_params(project, params)
    check(project)


def test_a_key_composition_derives_is_not_asked_about(project, make_params):
    """feature_maps.each follows feature_maps.layers (and the model): the line names the setting, not it."""
    make_params()
    edit(project, "config.yaml", "  layers: null           # null: every conv layer of", "  layers: [0]  # of")
    with pytest.raises(ConvlensError) as e:
        check(project)
    assert "feature_maps.layers None where conf/ now has [0]" in str(e.value)
    assert "feature_maps.each" not in str(e.value)


def test_under_dvc_exp_run_the_edit_is_recorded_not_refused(project, make_params, monkeypatch):
    """DVC composed params.yaml from conf/ just before (a -S value may differ from conf/'s new one)."""
    make_params()
    edit(project, "render/book.yaml", "map_cmap: viridis", "map_cmap: magma")
    monkeypatch.setenv("DVC_EXP_NAME", "exp-1")
    check(project)  # params.yaml as -S render.map_cmap=viridis composes it
    assert record_of(project).settings["render.map_cmap"] == "magma"


def test_a_conf_that_composes_only_with_overrides_is_recorded(project, make_params, monkeypatch):
    """outside tester 5 #4: model.path ??? in conf/, given with -S: make params and dvc exp run record conf/."""
    model = params_of(project)["model"]["path"]
    edit(project, "model/local.yaml", f"path: {model}", "path: ???")
    make_params(f"model.path={model}")
    assert record_of(project).settings["model.path"] == "???"
    check(project)
    edit(project, "render/book.yaml", "map_cmap: viridis", "map_cmap: magma")
    monkeypatch.setenv("DVC_EXP_NAME", "exp-1")
    check(project)
    assert record_of(project).settings["render.map_cmap"] == "magma"


def test_a_stage_run_on_its_own_records_conf(project, monkeypatch):
    from convlens.pipeline.config import apply_overrides

    edit(project, "render/book.yaml", "map_cmap: viridis", "map_cmap: magma")
    (project / "outputs").mkdir()
    apply_overrides(project, ["samples.indices=[0,1]"])
    assert record_of(project).settings["render.map_cmap"] == "magma"
    check(project)


def test_a_missing_record_is_written_anew_with_a_warning(project, caplog):
    edit(project, "render/book.yaml", "map_cmap: viridis", "map_cmap: magma")
    check(project)
    assert "composed_conf.yaml was missing or unreadable" in caplog.text
    assert record_of(project).settings["render.map_cmap"] == "magma"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (b"dpi: [1,\n", r"conf/render/book\.yaml is not readable YAML \(line \d+: "),
        (b"# caf\xe9\n", r"conf/render/book\.yaml is not UTF-8 \(invalid continuation byte at byte \d+\)"),
        (b"dpi: 90\n", r"conf/render/book\.yaml is not readable YAML \(line \d+: a key appears twice\)"),
    ],
    ids=["unclosed", "latin-1", "duplicate-key"],
)
def test_a_conf_that_does_not_compose_is_one_line(project, make_params, text, line):
    """outside tester 5 #6: under dvc repro (check_config) and make params alike, no traceback."""
    make_params()
    book = project / "conf" / "render" / "book.yaml"
    book.write_bytes(book.read_bytes() + text)
    for run in (lambda: check(project), lambda: compose(project)):
        with pytest.raises(ConvlensError, match=rf"^conf/ does not compose: {line}"):
            run()


def test_a_value_the_schema_refuses_in_conf_is_named_by_make_params(project, make_params):
    """check_config reads conf/'s settings unchecked: params.yaml lacks the edit, so it is stale; make params then
    names the value."""
    make_params()
    edit(project, "render/book.yaml", "map_cmap: viridis", "map_cmap: no-such-map")
    with pytest.raises(ConvlensError, match=r"render\.map_cmap 'viridis' where conf/ now has 'no-such-map'"):
        check(project)
    with pytest.raises(ConvlensError, match=r"^render\.map_cmap"):
        compose(project)


def test_a_missing_preset_is_not_called_an_override(project):
    """outside tester 5 #8: without overrides, Hydra's line is about conf/."""
    edit(project, "config.yaml", "- untrained: default", "- untrained: defualt")
    with pytest.raises(
        ConvlensError, match=r"^conf/ does not compose: In 'config': Could not find 'untrained/defualt'"
    ):
        compose(project)


def test_an_edit_of_a_preset_chosen_with_s_is_asked_about(project, make_params):
    """outside tester 6 F1: params.yaml composed with -S analyses=… (not conf/'s default), then that preset's file
    edited. (The tests' conf/ defaults to analyses=full; the project's to light, and the README tour picks full.)"""
    make_params("analyses=light")
    assert record_of(project).settings["analyses.name"] == "light"
    edit(project, "analyses/light.yaml", "activation_max: []", "activation_max: [trained]")
    with pytest.raises(ConvlensError, match=r"analyses\.activation_max \[\] where conf/ now has \['trained'\]"):
        check(project)
    make_params("analyses=light")
    check(project)


def test_an_edit_of_an_interpolation_is_asked_about_by_its_value(project, make_params):
    """outside tester 6 F2: `${render.map_cmap}` is recorded as the value it gives."""
    edit(project, "render/book.yaml", "heatmap_cmap: viridis", "heatmap_cmap: ${render.sample_cmap}")
    make_params()
    assert record_of(project).settings["render.heatmap_cmap"] == params_of(project)["render"]["sample_cmap"]
    edit(project, "render/book.yaml", "heatmap_cmap: ${render.sample_cmap}", "heatmap_cmap: ${render.map_cmap}")
    with pytest.raises(ConvlensError, match=r"render\.heatmap_cmap 'gray_r' where conf/ now has 'viridis'"):
        check(project)


def test_moving_an_applied_preset_into_conf_is_not_refused(project, make_params):
    """outside tester 6 F3: -S model=local -S model.path=… applied, then conf/ says the same: params.yaml is what
    make params writes, and model.source (a literal in book.yaml, ${model.path} in local.yaml) is no change."""
    model = params_of(project)["model"]["path"]
    edit(project, "config.yaml", "- model: local", "- model: book")
    make_params("model=local", f"model.path={model}")
    before = (project / "params.yaml").read_bytes()
    edit(project, "config.yaml", "- model: book", "- model: local")
    check(project)
    make_params()
    assert (project / "params.yaml").read_bytes() == before


def test_a_group_conf_leaves_unset_composes_with_the_chosen_preset(project, make_params, monkeypatch):
    """outside tester 6 F4: `- data: ???` in the defaults list, the preset given as an override: make params and
    check_config compose it; without the override, make params changes nothing."""
    edit(project, "config.yaml", "- data: fashion_mnist", "- data: ???")
    params = (project / "params.yaml").read_bytes()
    with pytest.raises(SystemExit, match=r"You must specify 'data'"):
        make_params()
    assert (project / "params.yaml").read_bytes() == params and not paths.composed_conf_path(project).exists()
    make_params("data=fashion_mnist")
    assert record_of(project).settings["data.name"] == "fashion_mnist"
    edit(project, "render/book.yaml", "map_cmap: viridis", "map_cmap: magma")
    monkeypatch.setenv("DVC_EXP_NAME", "exp-1")
    check(project)


def test_a_stage_run_on_its_own_without_overrides_asks_too(project, make_params, monkeypatch, capsys):
    """outside tester 6 F6: `python -m stages.samples` after a conf/ edit read the stale params.yaml silently; under
    DVC (DVC_STAGE set) check_config has asked already."""
    from convlens.pipeline.config import run_stage

    make_params()
    edit(project, "config.yaml", "  indices: [0]", "  indices: [1]")
    before = paths.composed_conf_path(project).read_bytes()
    seen = []
    with pytest.raises(SystemExit):
        run_stage("samples", lambda cfg, root: seen.append(cfg), [])
    assert (
        "samples: error: conf/ changed after params.yaml was composed from it: params.yaml has samples.indices [0]"
        in (capsys.readouterr().err)
    )
    assert seen == [] and paths.composed_conf_path(project).read_bytes() == before  # it only asks
    monkeypatch.setenv("DVC_STAGE", "samples")
    run_stage("samples", lambda cfg, root: seen.append(cfg), [])
    assert len(seen) == 1


def test_a_project_that_never_ran_gets_its_record_from_check_config(project, make_params):
    """make params in a project without outputs/ (a stage refused before any output) writes no folder there."""
    (project / "outputs").rmdir()
    make_params()
    assert not (project / "outputs").exists()
    check(project)
    assert record_of(project).digest == conf_record.conf_digest(project / "conf")
