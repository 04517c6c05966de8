"""A sweep over the training's params (issue 23): the table shows the swept param and each run's accuracy."""

from __future__ import annotations

import copy

from convlens.cli.exp_table import table
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
    assert frame["train.seed"].tolist() == [42, 1, 2]
    assert frame["trained.accuracy"].tolist() == [0.9125, 0.915, 0.917]
    assert frame["val_accuracy"].tolist()[1:] == [0.921, 0.924]
