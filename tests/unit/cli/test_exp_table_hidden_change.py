"""Outside tester 2 #9: beside runs of own models and own data (their model.* and data.* columns take the width), a
run whose only change is `untrained.seed=3` read as its baseline: its one differing param was the column left out
("too wide to show: …, untrained.seed"). A param column that alone tells a row apart now outlasts those that other
columns also tell, and a row the columns shown still cannot tell apart is followed by its values not shown."""

from __future__ import annotations

from convlens.cli.exp_table import exp_table_text, render, table
from tests.unit.cli.test_exp_table import BOOK_MODEL, experiment, rev_data


def own(name: str) -> dict:
    path = f"models/{name}-with-a-long-descriptive-name.keras"
    return {**BOOK_MODEL, "name": "local", "file": None, "url": None, "sha256": None, "path": path, "source": path}


def own_data(name: str, color: str) -> dict:
    path = f"data/{name}-images-collected-this-week.npz"
    return {"name": name, "path": path, "color": color}


def sweep() -> list[dict]:
    """The book's baseline, three runs of own models on own data, and `killed2` (only untrained.seed=3)."""
    book_data = {"name": "fashion_mnist", "path": None, "color": "gray"}
    exps = [
        experiment(name, f"{k}" * 40, model=own(name), data=own_data(f"{name}-data", color), layers=("conv2d",))
        for k, (name, color) in enumerate([("seq10", "rgb"), ("nested", "rgb"), ("varsize", "gray")], start=1)
    ]
    exps.append(experiment("killed2", "9" * 40, seed=3, data=book_data))
    main = rev_data("a" * 40, data=book_data)
    for data in [main, *(e["revs"][0]["data"] for e in exps)]:  # params.yaml's order: model, data, …, untrained
        params = data["params"]["params.yaml"]["data"]
        params |= {"data": params.pop("data"), "samples": params.pop("samples"), "untrained": params.pop("untrained")}
    return [{"rev": "a" * 40, "name": "main", "error": None, "data": main, "experiments": exps}]


def row(text: str, name: str) -> list[str]:
    return next(line for line in text.splitlines() if line.startswith(f"{name} ")).split()[1:]


def test_a_run_whose_only_change_is_the_seed_keeps_its_column_beside_wide_model_and_data_columns():
    assert list(table(sweep()).columns)[-5:-4] == ["untrained.seed"]  # the last param: the first one left out before
    text = exp_table_text(sweep())
    lines = text.splitlines()
    assert max(map(len, lines)) <= 120
    assert "too wide to show:" in text and "untrained.seed" not in text  # others are left out, not the seed
    assert row(text, "killed2") != row(text, "main")
    assert lines[2].split()[1:].index("seed") == row(text, "killed2").index("3")  # the seed's column holds 3


def test_rows_the_columns_shown_cannot_tell_apart_are_followed_by_their_values_not_shown():
    text = render(table(sweep(), metrics=[]), width=30)  # room for one param: data.name (main, killed2: fashion…)
    lines = text.splitlines()
    assert max(map(len, lines)) <= 30
    assert lines[0].split() == ["data"] and row(text, "killed2") == row(text, "main") == ["fashion_mni…"]
    notes = " ".join(lines[next(i for i, line in enumerate(lines) if line.startswith("(not")) :])
    assert notes == "(not shown: main: untrained.seed=42; killed2: untrained.seed=3)"  # what tells them apart
