"""Outside tester: a lone 1-epoch training run read as the book's recipe (no ``train.epochs`` column), and two runs
of one model path whose file was replaced in place read alike (identical params, different metrics)."""

from __future__ import annotations

import copy

import pandas as pd

from convlens.cli.exp_table import MODEL_HASH, exp_table_text, flatten, table
from convlens.cli.experiments import recipe_defaults
from tests.support.helpers import PROJECT
from tests.unit.cli.test_exp_table import BOOK_MODEL, rev_data
from tests.unit.cli.test_exp_table_train import TRAIN, trained_run

DEFAULTS = flatten({"train": TRAIN})  # conf/train/default.yaml's recipe


def book_and(*exps: tuple[str, dict]) -> list[dict]:
    book = rev_data("a" * 40, model={**BOOK_MODEL, "train_runs": [], "film": "outputs/checked_config.txt"})
    book["params"]["params.yaml"]["data"]["train"] = copy.deepcopy(TRAIN)
    book["metrics"]["outputs/metrics/evaluate.json"] = {"data": {"trained": {"accuracy": 0.9125}}}
    revs = [{"executor": None, "name": name, "revs": [{"rev": data["rev"], "name": name, "error": None, "data": data}]}
            for name, data in exps]  # fmt: skip
    return [{"rev": "a" * 40, "name": "main", "error": None, "data": book, "experiments": revs}]


def test_a_lone_training_run_shows_the_recipe_params_it_changed_from_the_default():
    records = book_and(("one-epoch", trained_run("b" * 40, 0.8674, 0.87, epochs=1)))
    frame = table(records, ["trained.accuracy"], defaults=DEFAULTS)
    assert list(frame.columns) == ["model.name", "train.epochs", "trained.accuracy"]
    assert pd.isna(frame.loc["main", "train.epochs"]) and frame.loc["one-epoch", "train.epochs"] == 1
    text = exp_table_text(records, ["trained.accuracy"], defaults=DEFAULTS)
    assert text.splitlines()[-1].split() == ["one-epoch", "train", "1", "0.8674"]


def test_a_lone_training_run_of_the_default_recipe_shows_no_recipe_column():
    records = book_and(("default", trained_run("b" * 40, 0.915, 0.92)))
    assert list(table(records, ["trained.accuracy"], defaults=DEFAULTS).columns) == ["model.name", "trained.accuracy"]


def test_the_recipe_defaults_are_conf_s_training_recipe_flat():
    defaults = recipe_defaults()
    assert defaults["train.epochs"] == 20 and defaults["train.architecture.filters"] == [32, 64]
    assert set(defaults) == set(flatten({"train": TRAIN}))
    assert PROJECT.is_dir()  # read from the project the tests run in


def local_run(rev: str, digest: str | None, std: float) -> dict:
    path = "models/my-cnn.keras"
    data = rev_data(rev, model={**BOOK_MODEL, "name": "local", "file": None, "url": None, "sha256": None,
                                "path": path, "source": path}, std=std)  # fmt: skip
    data["params"]["params.yaml"]["data"]["train"] = copy.deepcopy(TRAIN)  # params.yaml's, unused
    if digest:
        data["deps"] = {path: {"hash": digest, "size": 1000, "nfiles": None}, "convlens": {"hash": "f" * 32 + ".dir"}}
    return data


def test_two_runs_of_one_model_path_replaced_in_place_show_the_model_files_hash():
    records = book_and(
        ("before", local_run("b" * 40, "0123456789abcdef" * 2, 0.08)),
        ("after", local_run("c" * 40, "fedcba9876543210" * 2, 0.09)),
    )
    frame = table(records, ["untrained.conv2d.std"])
    assert pd.isna(frame.loc["main", MODEL_HASH])  # the book's file is no dependency of its own
    assert frame[MODEL_HASH].tolist()[1:] == ["01234567", "fedcba98"]
    lines = exp_table_text(records, ["untrained.conv2d.std"], defaults=DEFAULTS).splitlines()
    assert [line.split() for line in lines] == [
        ["untrained"],
        ["model", "model", "model", "conv2d"],
        ["experiment", "name", "path", "md5", "std"],
        ["main", "book", "null", "-", "0.0846"],
        ["before", "local", "models/my-cnn.keras", "01234567", "0.08"],
        ["after", "local", "models/my-cnn.keras", "fedcba98", "0.09"],
    ]


def test_the_model_hash_shows_only_where_one_path_held_different_files():
    records = book_and(
        ("before", local_run("b" * 40, "0123456789abcdef" * 2, 0.08)),
        ("again", local_run("c" * 40, "0123456789abcdef" * 2, 0.09)),
    )
    assert MODEL_HASH not in table(records, ["untrained.conv2d.std"]).columns


def test_a_model_outside_the_repository_is_matched_to_its_dependency():
    """dvc exp show names a dependency relative to the repository: ``../../srv/m.keras`` for ``/srv/m.keras``."""
    from convlens.cli.exp_table import dep_hash

    assert dep_hash({"../../srv/m.keras": {"hash": "abc"}}, "/srv/m.keras") == "abc"
    assert dep_hash({"models/m.keras": {"hash": "abc"}}, "./models/m.keras") == "abc"
    assert dep_hash({"models/n.keras": {"hash": "abc"}}, "models/m.keras") is None


def test_training_runs_whose_models_differ_show_no_model_hash():
    """A model trained in the run is its own output: its recipe (the seed) tells the runs apart, not its hash."""
    runs = []
    for name, rev, seed in (("seed-1", "b", 1), ("seed-2", "c", 2)):
        data = trained_run(rev * 40, 0.915, 0.92, seed=seed)
        data["deps"] = {"outputs/train/model.keras": {"hash": rev * 32, "size": 1000, "nfiles": None}}
        runs.append((name, data))
    frame = table(book_and(*runs), ["trained.accuracy"], defaults=DEFAULTS)
    assert list(frame.columns) == ["model.name", "train.seed", "trained.accuracy"]
