"""Outside tester #10: the experiment table's default metrics are those the runs have (each run's first layer with
kernel statistics: the book's conv2d columns for the book's runs, `stem`'s for a model of its own); `--hide` adds
to the params hidden by default (the internal `feature_maps.each` stays hidden), `--show` shows one of them, and a
name that is no run's param is one error line that lists the params."""

from __future__ import annotations

import copy

import pytest

from convlens.cli import experiments
from convlens.cli.exp_table import default_metrics, exp_table_text, experiments_text, runs, table
from convlens.errors import ConvlensError
from tests.unit.cli.test_exp_table import BOOK_MODEL, experiment, records, rev_data

BOOK = ["trained.conv2d.std", "untrained.conv2d.std", "trained.conv2d.map_mean", "untrained.conv2d.map_mean"]
OWN = ["trained.stem.std", "untrained.stem.std", "trained.stem.map_mean", "untrained.stem.map_mean"]


def own_model_data(rev: str, seed: int = 42) -> dict:
    """A run of the tester's RGB model (layers stem, bn, act, pool, block2): its metrics name its own layers."""
    model = {**BOOK_MODEL, "name": "local", "file": None, "url": None, "sha256": None,
             "path": "models/rgb.keras", "source": "models/rgb.keras"}  # fmt: skip
    data = rev_data(rev, model=model, layers=("stem", "block2"), seed=seed)
    data["params"]["params.yaml"]["data"]["feature_maps"]["each"] = ["stem", "block2"]
    for role, std in (("trained", 0.31), ("untrained", 0.12)):
        path = f"outputs/metrics/weights_{role}.json"
        data["metrics"][path]["data"] = {role: {"stem": {"mean": 0.0, "std": std}, "block2": {"mean": 0.0, "std": 0.1}}}
    return data


def book_and_own() -> list[dict]:
    """The book's baseline with the tester's experiment `mine` on its own model."""
    main = rev_data("a" * 40)
    main["params"]["params.yaml"]["data"]["feature_maps"]["each"] = ["conv2d", "conv2d_1"]
    mine = experiment("mine", "b" * 40)
    mine["revs"][0]["data"] = own_model_data("b" * 40)
    return [{"rev": "a" * 40, "name": "main", "error": None, "data": main, "experiments": [mine]}]


def own_only() -> list[dict]:
    """A project of the user's own model only: its baseline and one experiment."""
    seed7 = experiment("seed7", "d" * 40)
    seed7["revs"][0]["data"] = own_model_data("d" * 40, seed=7)
    return [{"rev": "c" * 40, "name": "main", "error": None, "data": own_model_data("c" * 40), "experiments": [seed7]}]


def test_the_books_runs_get_the_books_four_columns_as_before():
    assert default_metrics(runs(records())) == BOOK
    assert exp_table_text(records()) == exp_table_text(records(), metrics=BOOK)


def test_a_project_of_its_own_model_gets_its_first_layers_columns_with_numbers():
    assert default_metrics(runs(own_only())) == OWN
    frame = table(own_only())
    assert list(frame.columns) == ["untrained.seed", *OWN]
    assert frame.loc["main", "trained.stem.std"] == 0.31 and frame.loc["seed7", "untrained.stem.map_mean"] == 0.1
    assert "-" not in exp_table_text(own_only()).split()


def test_the_book_and_an_own_model_side_by_side_get_both_first_layers():
    frame = table(book_and_own())
    assert list(frame.columns)[-8:] == BOOK + OWN
    assert frame.loc["mine", "trained.stem.std"] == 0.31 and frame.loc["main", "trained.conv2d.std"] == 0.2335
    assert "feature_maps.each" not in frame.columns and "feature_maps.layers" in frame.columns


def test_hide_adds_to_the_default_and_show_shows_a_hidden_param():
    hidden = experiments_text(book_and_own(), metrics=[], hide=["feature_maps.layers"], width=400)
    header = " ".join(hidden.splitlines()[:3])
    assert "each" not in header and "layers" not in header and "path" in header
    shown = experiments_text(book_and_own(), metrics=[], show=["feature_maps.each"], width=400)
    assert "each" in " ".join(shown.splitlines()[:3]) and "[stem,block2]" in shown


@pytest.mark.parametrize("option", ["hide", "show"])
def test_an_unknown_param_is_one_error_listing_the_params(option):
    with pytest.raises(ConvlensError) as e:
        experiments_text(book_and_own(), **{option: ["foo", "untrained.seed"]})
    message = str(e.value)
    assert message.startswith(f"--{option}: no run has the param foo; the params are: model.name, model.file")
    assert "untrained.seed" in message and "\n" not in message
    experiments_text(book_and_own(), hide=["model"])  # a name above params is known


def test_the_command_says_an_unknown_hide_in_one_line_and_exits_1(monkeypatch, capsys):
    monkeypatch.setattr(experiments, "exp_show_records", lambda: copy.deepcopy(book_and_own()))
    with pytest.raises(SystemExit) as exit:
        experiments.main(["--hide", "foo"])
    err = capsys.readouterr().err
    assert exit.value.code == 1 and err.count("\n") == 1
    assert err.startswith("experiments: error: --hide: no run has the param foo; the params are: model.name,")
    experiments.main([])
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[-8:] == ["trained", "untrained"] * 4
    assert out[1].split()[-8:] == ["conv2d"] * 4 + ["stem"] * 4
    assert "each" not in " ".join(out[:3])
