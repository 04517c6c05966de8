"""A sweep over the training's params (issue 23): the table shows the swept param and each run's accuracy."""

from __future__ import annotations

import copy

import pandas as pd

from convlens.cli.exp_table import render, table
from tests.unit.cli.test_exp_table import BOOK_MODEL, rev_data

TRAINED_HERE = {**BOOK_MODEL, "name": "train", "file": None, "url": None, "sha256": None,
                "path": "outputs/train/model.keras", "source": "outputs/train/model.keras",
                "train_runs": ["trained"], "film": "outputs/figures/film"}  # fmt: skip
TRAIN = {"epochs": 20, "patience": 2, "batch_size": 32, "learning_rate": 0.001, "seed": 42,
         "validation_fraction": 0.2, "architecture": {"filters": [32, 64], "kernel_size": 3, "dense_units": 100,
                                                     "dropout": 0.4}}  # fmt: skip


def trained_run(rev: str, accuracy: float, val_accuracy: float, **train) -> dict:
    data = rev_data(rev, model=TRAINED_HERE)
    data["params"]["params.yaml"]["data"]["train"] = {**copy.deepcopy(TRAIN), **train}
    data["metrics"]["outputs/metrics/evaluate.json"] = {"data": {"trained": {"accuracy": accuracy}}}
    data["metrics"]["outputs/train/live/metrics.json"] = {"data": {"step": 9, "val_accuracy": val_accuracy}}
    return data


def test_a_seed_sweep_shows_the_seeds_and_the_accuracies_side_by_side():
    book = rev_data("a" * 40, model={**BOOK_MODEL, "train_runs": [], "film": "outputs/checked_config.txt"})
    book["params"]["params.yaml"]["data"]["train"] = copy.deepcopy(TRAIN)
    book["metrics"]["outputs/metrics/evaluate.json"] = {"data": {"trained": {"accuracy": 0.9125}}}
    exps = [
        {"executor": None, "name": name, "revs": [{"rev": rev * 40, "name": name, "error": None, "data": data}]}
        for name, rev, data in (
            ("seed-1", "b", trained_run("b" * 40, 0.915, 0.921, seed=1)),
            ("seed-2", "c", trained_run("c" * 40, 0.917, 0.924, seed=2)),
        )
    ]
    records = [{"rev": "a" * 40, "name": "main", "error": None, "data": book, "experiments": exps}]
    frame = table(records, ["trained.accuracy", "val_accuracy"])
    assert list(frame.index) == ["main", "seed-1", "seed-2"]
    assert "train.seed" in frame.columns and "model.name" in frame.columns
    assert not {"model.train_runs", "model.film"} & set(frame.columns)  # set by the preset: model.name says it
    assert frame["train.seed"].tolist()[1:] == [1, 2]
    assert pd.isna(frame.loc["main", "train.seed"])  # the book's model was not trained: no recipe of its own
    assert frame["trained.accuracy"].tolist() == [0.9125, 0.915, 0.917]
    assert frame["val_accuracy"].tolist()[1:] == [0.921, 0.924]


def book_and_training_runs() -> list[dict]:
    """The book's model at main (params.yaml's default recipe, unused) and two training runs, one of another
    learning rate."""
    book = rev_data("a" * 40, model={**BOOK_MODEL, "train_runs": [], "film": "outputs/checked_config.txt"})
    book["params"]["params.yaml"]["data"]["train"] = copy.deepcopy(TRAIN)
    exps = [
        {"executor": None, "name": name, "revs": [{"rev": rev * 40, "name": name, "error": None, "data": data}]}
        for name, rev, data in (
            ("tr2", "b", trained_run("b" * 40, 0.915, 0.921)),
            ("after-kill3", "c", trained_run("c" * 40, 0.917, 0.924, learning_rate=0.003)),
        )
    ]
    return [{"rev": "a" * 40, "name": "main", "error": None, "data": book, "experiments": exps}]


def test_the_training_recipe_shows_only_in_rows_whose_model_was_trained_and_its_model_path_never():
    """Outside tester: the book's row showed train.epochs 20, train.learning_rate 0.001 as if trained, and the
    training runs a model.path column (outputs/tra…), which conf/model/train.yaml pins."""
    frame = table(book_and_training_runs(), ["val_accuracy"])
    assert list(frame.columns) == ["model.name", "train.learning_rate", "val_accuracy"]
    assert pd.isna(frame.loc["main", "train.learning_rate"]) and frame["train.learning_rate"].tolist()[1:] == [
        0.001,
        0.003,
    ]
    text = render(frame, keep=["val_accuracy"])
    assert text.splitlines()[2].split() == ["main", "book", "-", "-"]
    assert "outputs/tra" not in text and "epochs" not in text  # the same 20 epochs in both trained runs: no column


def test_a_recipe_change_shows_even_where_only_the_untrained_book_row_differs_from_it():
    """The book's row lacks a recipe of its own: two training runs of the default recipe beside it show none."""
    records = book_and_training_runs()
    records[0]["experiments"][1]["revs"][0]["data"]["params"]["params.yaml"]["data"]["train"]["learning_rate"] = 0.001
    records[0]["data"]["params"]["params.yaml"]["data"]["train"]["learning_rate"] = 0.1  # unused: not trained
    assert list(table(records, ["val_accuracy"]).columns) == ["model.name", "val_accuracy"]


def test_which_data_outlasts_a_training_param_in_a_table_too_wide():
    """Outside tester: a wide table dropped data.name and kept train.patience. Which model and which data are the
    last to go; the runs the columns shown cannot tell apart are followed by the values that do."""
    frame = pd.DataFrame(
        {
            "model.name": ["book", "train", "train", "train"],
            "data.name": ["fashion_mnist", "fashion_mnist", "fashion_mnist", "cifar10"],
            "train.patience": [None, 2, 5, 7],
        },
        index=pd.Index(["main", "tr2", "tr3", "cifar"], name="experiment"),
    )
    lines = render(frame, width=38).splitlines()
    assert max(map(len, lines)) <= 38
    assert lines[:2] == ["            model  data", "experiment  name   name"]
    assert " ".join(lines[6:]) == (
        "(too wide to show: train.patience; choose with --hide, or see dvc exp show --csv) "
        "(not shown: tr2: train.patience=2; tr3: train.patience=5)"
    )
