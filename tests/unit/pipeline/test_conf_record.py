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
from convlens.pipeline.config import compose, write_params
from stages import check_config

BEFORE = {"render": {"map_cmap": "viridis", "dpi": 100}, "samples": {"indices": [0]}}
AFTER = {"render": {"map_cmap": "magma", "dpi": 100}, "samples": {"indices": [0]}}


def test_a_changed_key_that_params_still_holds_as_before_is_stale():
    assert conf_record.stale_keys(BEFORE, BEFORE, AFTER) == ["render.map_cmap"]


def test_a_changed_key_that_params_took_is_not_stale():
    assert conf_record.stale_keys(AFTER, BEFORE, AFTER) == []


def test_values_set_at_other_keys_are_not_asked_about():
    """An experiment's -S value (or a hand edit) at a key conf/ did not change stays the user's."""
    params = {"render": {"map_cmap": "viridis", "dpi": 300}, "samples": {"indices": [0, 5]}}
    assert conf_record.stale_keys(params, BEFORE, AFTER) == ["render.map_cmap"]
    assert conf_record.stale_keys({**params, "render": {"map_cmap": "magma", "dpi": 300}}, BEFORE, AFTER) == []


def test_a_key_conf_added_or_dropped_is_stale_while_params_is_as_before():
    added = {**AFTER, "film": {"filters": 16}}
    assert conf_record.stale_keys(AFTER, AFTER, added) == ["film.filters"]
    assert conf_record.stale_keys(added, AFTER, added) == []
    assert conf_record.stale_keys(added, added, AFTER) == ["film.filters"]
    assert conf_record.stale_keys(AFTER, added, AFTER) == []


def test_the_line_names_each_key_its_values_and_the_fix():
    line = conf_record.stale_line(["render.map_cmap"], BEFORE, AFTER)
    assert "params.yaml still holds its earlier render.map_cmap ('viridis', conf/ now 'magma')" in line
    assert "make params" in line and "\n" not in line
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


@pytest.mark.parametrize("text", [None, "", "[1, 2]\n", "conf_sha256: 1\ncomposed: {}\n", "conf_sha256: x\n", "a: [\n"])
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
    assert path.read_text(encoding="utf-8").startswith(conf_record.HEADER)


def params_of(root):
    return yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))


def edit(root, rel: str, old: str, new: str) -> None:
    path = root / "conf" / rel
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_dvc_repro_after_a_conf_edit_without_make_params_is_refused(project):
    """check_config as dvc repro runs it: a first run records conf/; the edit then needs `make params`."""
    record = paths.composed_conf_path(project)
    check_config.run(OmegaConf.create({}), project)
    assert conf_record.read_record(record).composed == OmegaConf.to_container(compose(project), resolve=True)
    edit(project, "render/book.yaml", "map_cmap: viridis", "map_cmap: magma")
    mark = paths.config_check_path(project).read_bytes()
    before = record.read_bytes()
    stale = r"still holds its earlier render\.map_cmap \('viridis', conf/ now 'magma'\)"
    with pytest.raises(ConvlensError, match=stale):
        check_config.run(OmegaConf.create({}), project)
    assert record.read_bytes() == before and paths.config_check_path(project).read_bytes() == mark
    write_params(project, compose(project))  # make params
    check_config.run(OmegaConf.create({}), project)
    assert conf_record.read_record(record).composed["render"]["map_cmap"] == "magma"


def test_a_conf_edit_that_changes_no_value_passes_and_is_recorded(project):
    check_config.run(OmegaConf.create({}), project)
    edit(project, "render/book.yaml", "map_cmap: viridis", "map_cmap: viridis  # the book's")
    check_config.run(OmegaConf.create({}), project)
    assert conf_record.read_record(paths.composed_conf_path(project)).digest == conf_record.conf_digest(
        project / "conf"
    )


def test_experiment_values_survive_a_conf_edit_of_other_keys(project):
    """params.yaml as `dvc exp apply` leaves it (a -S value) passes an edit of another key once it is recomposed
    by hand at that key, and is refused, naming only that key, while it is not."""
    check_config.run(OmegaConf.create({}), project)
    params = params_of(project)
    params["render"]["dpi"] = 300  # -S render.dpi=300, applied
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    edit(project, "render/book.yaml", "filter_cmap: viridis", "filter_cmap: magma")
    with pytest.raises(ConvlensError) as e:
        check_config.run(OmegaConf.create({}), project)
    assert "render.filter_cmap" in str(e.value) and "render.dpi" not in str(e.value)
    params["render"]["filter_cmap"] = "magma"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    check_config.run(OmegaConf.create({}), project)


def test_under_dvc_exp_run_the_edit_is_recorded_not_refused(project, monkeypatch):
    """DVC composed params.yaml from conf/ just before (a -S value may even equal conf/'s earlier one)."""
    check_config.run(OmegaConf.create({}), project)
    edit(project, "render/book.yaml", "map_cmap: viridis", "map_cmap: magma")
    monkeypatch.setenv("DVC_EXP_NAME", "exp-1")
    check_config.run(OmegaConf.create({}), project)  # params.yaml: -S render.map_cmap=viridis
    assert conf_record.read_record(paths.composed_conf_path(project)).composed["render"]["map_cmap"] == "magma"


def test_a_conf_that_does_not_compose_is_one_line(project):
    check_config.run(OmegaConf.create({}), project)
    edit(project, "render/book.yaml", "map_cmap: viridis", "map_cmap: no-such-map")
    with pytest.raises(ConvlensError, match=r"^conf/ does not compose: render\.map_cmap"):
        check_config.run(OmegaConf.create({}), project)
