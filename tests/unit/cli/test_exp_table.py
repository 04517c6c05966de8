"""The experiment table: `dvc exp show --json` records → DataFrame → text within 120 columns."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import yaml

from convlens.cli.exp_table import cut_cells, exp_table_text, flatten, metric_value, render, runs, table, table_cell
from convlens.errors import ConvlensError
from tests.support.helpers import PROJECT

BOOK_MODEL = {
    "name": "book",
    "file": "best-cnn-model.keras",
    "url": "https://github.com/rickiepark/hg-mldl/raw/d97a85ee43496f66c4f8e48a9406ebba16c7635b/best-cnn-model.keras",
    "sha256": "09ef43cfb325c6b367d8ff494053d92adecd9d3e1189ebc16106233c1ff78c5d",
    "path": None,
    "source": "conf/model/book.yaml",
}


def rev_data(
    rev: str, model=None, layers=("conv2d", "conv2d_1"), seed=42, indices=(0,), std=0.0846, data=None, analyses=None
) -> dict:
    params = {
        "model": model or BOOK_MODEL,
        "input": {"scale": 255.0},
        "samples": {"split": "train", "indices": list(indices)},
        "feature_maps": {"layers": list(layers), "batch_size": 256},
        "untrained": {"seed": seed},
        **({"data": data} if data else {}),
        **({"analyses": analyses} if analyses else {}),
    }
    maps = {
        m: {layer: {"map_mean": 0.1 + i, "dead_channels": 0} for i, layer in enumerate(layers)}
        for m in ("trained", "untrained")
    }
    metrics = {
        "outputs/metrics/weights_trained.json": {"data": {"trained": {"conv2d": {"mean": -0.0144, "std": 0.2335}}}},
        "outputs/metrics/weights_untrained.json": {"data": {"untrained": {"conv2d": {"mean": 0.0053, "std": std}}}},
        "outputs/metrics/feature_maps.json": {"data": maps},
    }
    return {"rev": rev, "timestamp": "2026-11-26T11:39:52", "params": {"params.yaml": {"data": params}},
            "metrics": metrics, "deps": {}, "outs": {}, "meta": {}}  # fmt: skip


def experiment(name: str, rev: str, **kwargs) -> dict:
    revs = [{"rev": rev, "name": name, "error": None, "experiments": None, "data": rev_data(rev, **kwargs)}]
    return {"executor": None, "name": name, "revs": revs}


def records() -> list[dict]:
    """The shape `dvc exp show --json` (DVC 3.67) prints: the workspace, then the baseline with its experiments."""
    own = {**BOOK_MODEL, "name": "local", "file": None, "url": None, "sha256": None,
           "path": "models/my-cnn.keras", "source": "models/my-cnn.keras"}  # fmt: skip
    queued = {"executor": "workspace", "name": "queued-one",
              "revs": [{"rev": "f" * 40, "name": "queued-one", "error": None, "data": None}]}  # fmt: skip
    return [
        {"rev": "workspace", "name": None, "error": None, "data": rev_data("workspace", seed=7)},
        {
            "rev": "9b896e4caf4023f75501aab15b4937b293bc21cf",
            "name": "main",
            "error": None,
            "data": rev_data("9b896e4caf4023f75501aab15b4937b293bc21cf"),
            "experiments": [
                experiment("seed7", "060f" + "0" * 36, seed=7, std=0.0821),
                experiment("one-layer", "7dca" + "0" * 36, layers=("conv2d_1",)),
                experiment("four-images", "1111" + "0" * 36, indices=(0, 1, 2, 3)),
                experiment("my-cnn", "2222" + "0" * 36, model=own, layers=("conv2d", "conv2d_1", "conv2d_2")),
                queued,
            ],
        },
    ]


def test_runs_are_the_baseline_then_its_finished_experiments():
    assert [r["name"] for r in runs(records())] == ["main", "seed7", "one-layer", "four-images", "my-cnn"]


def test_flatten_keeps_lists_as_leaves():
    assert flatten({"a": {"b": [1, 2], "c": {"d": None}}, "e": {}}) == {"a.b": [1, 2], "a.c.d": None, "e": {}}


def test_table_shows_only_the_params_that_differ_then_the_metrics():
    frame = table(records(), metrics=["untrained.conv2d.std", "trained.conv2d_2.map_mean"])
    assert list(frame.index) == ["main", "seed7", "one-layer", "four-images", "my-cnn"]
    assert list(frame.columns) == [
        "model.name",
        "model.path",
        "samples.indices",
        "feature_maps.layers",
        "untrained.seed",
        "untrained.conv2d.std",
        "trained.conv2d_2.map_mean",
    ]
    assert frame.loc["seed7", "untrained.conv2d.std"] == 0.0821
    assert frame.loc["one-layer", "feature_maps.layers"] == "[conv2d_1]"
    assert frame.loc["my-cnn", "trained.conv2d_2.map_mean"] == 2.1
    assert frame["trained.conv2d_2.map_mean"].isna().sum() == 4  # only my-cnn has a conv2d_2


def test_text_fits_120_columns_with_dotted_names_over_header_lines():
    text = exp_table_text(records())
    lines = text.splitlines()
    assert max(map(len, lines)) <= 120
    assert lines[0].split() == ["trained", "untrained", "trained", "untrained"]
    assert lines[2].split()[:2] == ["experiment", "name"] and lines[2].split()[-1] == "map_mean"
    seed7 = next(line for line in lines if line.startswith("seed7 "))
    assert seed7.split()[-4:] == ["0.2335", "0.0821", "0.1", "0.1"]
    assert "https://" not in text and "sha256" not in text  # pinned by the model's config group: hidden
    assert lines[1].split()[-5] == "untrained" and lines[2].split()[-5] == "seed"  # every param that differs shows
    # the widest param column is cut, not left out, on the left: on the right two of its lists would read alike
    assert "…v2d_1,conv2d_2]" in text and "…onv2d,conv2d_1]" in text and "[conv2d_1] " in text


def test_paths_that_differ_at_their_end_are_cut_where_they_keep_apart():
    """outside tester 3 #15: models/chain.keras, chain2, chain3 all read "models/chai…" cut on the right."""
    paths = ["models/chain.keras", "models/chain2.keras", "models/chain3.keras", "null"]
    assert cut_cells(paths, 12) == ["…chain.keras", "…hain2.keras", "…hain3.keras", "null"]
    assert cut_cells(["conv2d_1", "conv2d_2"], 12) == ["conv2d_1", "conv2d_2"]  # what fits stays whole
    assert cut_cells(["1-abcdefghij-1", "2-abcdefghij-1", "1-abcdefghij-2"], 6) == ["1-…j-1", "2-…j-1", "1-…j-2"]
    assert cut_cells(["x" * 20, "y" * 20], 6) == ["xxxxx…", "yyyyy…"]  # the right cut among equals


def test_rows_that_only_a_cut_value_tells_apart_are_followed_by_it():
    """Where no cut keeps values apart, the line after the table names them, whole, as for a column left out."""
    frame = pd.DataFrame(
        {"model.path": ["models/a-long-name-x-of-the-model.keras", "models/a-long-name-y-of-the-model.keras"]}
        | {"acc": [0.5, 0.5]},
        index=pd.Index(["one", "two"], name="experiment"),
    )
    text = render(frame, width=30, keep=["acc"])
    assert max(map(len, text.splitlines()[:4])) <= 30  # the table; a path in the line after it stays whole
    assert "(not shown: one: model.path=models/a-long-name-x-of-the-model.keras; two: model.path=" in " ".join(
        text.splitlines()
    )


def test_params_that_do_not_fit_are_named_not_cut():
    text = exp_table_text(records(), width=80)
    lines = text.splitlines()
    assert max(map(len, lines)) <= 80
    assert "too wide to show:" in text and "untrained.seed" in text
    assert "0.0821" in text  # the metrics always show


def test_a_metric_no_run_has_is_one_error_naming_it():
    with pytest.raises(ConvlensError, match=r"no run has the metric trained\.conv9\.std \(some that exist: trained"):
        table(records(), metrics=["trained.conv9.std"])
    with pytest.raises(ConvlensError) as error:
        table(records(), metrics=["trained.conv9.std", "trained.conv2d.std", "x.y"])
    assert str(error.value) == (
        "no run has the metric trained.conv9.std, x.y (some that exist: trained.conv2d.mean, trained.conv2d.std, "
        "untrained.conv2d.mean, untrained.conv2d.std, trained.conv2d.map_mean, trained.conv2d.dead_channels, …)"
    )


def test_a_metric_in_two_files_is_named_with_its_file():
    metrics = {"a.json": {"x": {"m": 1.0}}, "b.json": {"x": {"m": 2.0}}}
    with pytest.raises(ConvlensError, match="metric x.m is in several metrics files; name one as <file>:x.m"):
        metric_value(metrics, "x.m")
    assert metric_value(metrics, "b.json:x.m") == 2.0


def test_no_finished_run_is_one_error():
    empty = copy.deepcopy(records()[:1])
    with pytest.raises(ConvlensError) as error:
        table(empty)
    assert str(error.value) == "no experiments with results yet: run dvc exp run (or dvc repro and commit) first"


def test_render_aligns_numbers_right_and_marks_missing_values():
    frame = table(records(), metrics=["trained.conv2d_2.map_mean"])
    text = render(frame[["trained.conv2d_2.map_mean"]], 120)
    assert text.splitlines()[3].split() == ["main", "-"]
    assert text.splitlines()[-1].endswith("2.1")


def test_runs_are_named_by_dvc_else_by_their_experiment_else_by_their_short_commit():
    sha = "abcdef0123" + "0" * 30
    unnamed = {"executor": None, "name": None, "revs": [{"rev": sha, "name": None, "data": rev_data("x")}]}
    grouped = {"executor": None, "name": "sweep-1", "revs": [{"rev": "1" * 40, "name": None, "data": rev_data("y")}]}
    lamb = {"rev": "3" * 40, "name": "lucky-lamb", "data": rev_data("z")}
    own = {"executor": None, "name": "sweep-2", "revs": [lamb]}
    failed = experiment("broken", "2" * 40)
    failed["revs"][0]["error"] = {"type": "ReproductionError", "message": "failed to reproduce 'extract_weights'"}
    baseline = {"rev": "9b896e4caf4023f75501aab15b4937b293bc21cf", "name": None, "data": rev_data("9b896e4"),
                "experiments": [unnamed, grouped, own, failed]}  # fmt: skip
    # the failed one is left out
    assert [r["name"] for r in runs([baseline])] == ["9b896e4", "abcdef0", "sweep-1", "lucky-lamb"]


def test_a_param_shows_compactly_and_none_as_null():
    assert table_cell([{"layer": "conv2d", "channels": [0, 1]}, None]) == "[{layer:conv2d,channels:[0,1]},null]"
    frame = table(records(), metrics=[])
    assert frame.loc["main", "model.path"] == "null" and frame.loc["my-cnn", "model.path"] == "models/my-cnn.keras"


def test_the_params_hidden_are_those_asked_for():
    shown = exp_table_text(records(), hidden=["untrained.seed"], width=400).splitlines()
    assert "seed" not in shown[2].split() and "https://github.com/rickiepark/hg-mldl/raw/d97a85e" in shown[3]


def small_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "feature_maps.layers": ["[conv2d]", "[conv2d,conv2d_1,conv2d_2]"],
            "model.name": ["book", "local"],
            "untrained.seed": [42, 7],
            "trained.conv2d.std": [0.2335, None],
        },
        index=pd.Index(["main", "seed7"], name="experiment"),
    )


@pytest.mark.parametrize(
    ("width", "expected"),
    [
        (65, [
            "                                                          trained",
            "            feature_maps                model  untrained   conv2d",
            "experiment  layers                      name        seed      std",
            "main        [conv2d]                    book          42   0.2335",
            "seed7       [conv2d,conv2d_1,conv2d_2]  local          7        -",
        ]),
        (64, [  # one column too wide: the widest param is cut by that one character
            "                                                         trained",
            "            feature_maps               model  untrained   conv2d",
            "experiment  layers                     name        seed      std",
            "main        [conv2d]                   book          42   0.2335",
            "seed7       [conv2d,conv2d_1,conv2d_…  local          7        -",
        ]),
        (35, [  # cut down to 12, then params are left out, named in their order; which model is the last to go
            "                   trained",
            "            model   conv2d",
            "experiment  name       std",
            "main        book    0.2335",
            "seed7       local        -",
            "(too wide to show:",
            "feature_maps.layers,",
            "untrained.seed; choose with --hide,",
            "or see dvc exp show --csv)",
        ]),
        (10, [  # only the names and the metrics asked for are left: they show, wider than asked, and the
            # params that tell main and seed7 apart are named with each row's values
            "            trained",
            "             conv2d",
            "experiment      std",
            "main         0.2335",
            "seed7             -",
            "(too wide",
            "to show:",
            "feature_maps.layers,",
            "model.name,",
            "untrained.seed;",
            "choose",
            "with",
            "--hide, or",
            "see dvc",
            "exp show",
            "--csv)",
            "(not",
            "shown:",
            "main:",
            "feature_maps.layers=[conv2d],",
            "model.name=book,",
            "untrained.seed=42;",
            "seed7:",
            "feature_maps.layers=[conv2d,conv2d_1,conv2d_2],",
            "model.name=local,",
            "untrained.seed=7)",
        ]),
    ],
)  # fmt: skip
def test_render_cuts_then_leaves_out_params_and_always_shows_the_metrics(width, expected):
    assert render(small_frame(), width, keep=["trained.conv2d.std"]).splitlines() == expected


def test_render_without_an_index_name_leaves_its_header_blank_and_no_line_ends_in_spaces():
    frame = small_frame()[["untrained.seed", "model.name"]].rename_axis(None)
    assert render(frame).splitlines() == [
        "       untrained  model",
        "            seed  name",
        "main          42  book",
        "seed7          7  local",
    ]


def test_keys_a_data_preset_pins_are_hidden_with_everything_under_them_and_its_name_stays():
    """`-S data=cifar10` changes a dozen keys (format, urls, files.archive.*, classes, …): `data.name` says it."""
    fashion = {"name": "fashion_mnist", "format": "idx", "urls": ["https://a/"], "files": {"x": {"sha256": "1"}}}
    cifar = {"name": "cifar10", "format": "cifar10", "urls": ["https://b/"], "files": {"archive": {"sha256": "2"}}}
    found = [
        {"rev": "a" * 40, "name": "main", "error": None, "data": rev_data("a", data=fashion),
         "experiments": [experiment("cifar", "b" * 40, data=cifar)]},
    ]  # fmt: skip
    columns = list(table(found, metrics=[]).columns)
    assert columns == ["data.name"]
    shown = list(table(found, metrics=[], hidden=["data.urls"]).columns)
    assert shown == ["data.name", "data.format", "data.files.x.sha256", "data.files.archive.sha256"]


def test_the_analyses_preset_shows_as_its_name_alone():
    """`-S analyses=full` sets two lists and four deps: `analyses.name` says it; a list changed on top still shows."""
    presets = {
        name: yaml.safe_load((PROJECT / "conf" / "analyses" / f"{name}.yaml").read_text(encoding="utf-8"))
        for name in ("light", "full")
    }
    found = [
        {"rev": "a" * 40, "name": "main", "error": None, "data": rev_data("a", analyses=presets["light"]),
         "experiments": [experiment("full", "b" * 40, analyses=presets["full"])]},
    ]  # fmt: skip
    assert list(table(found, metrics=[]).columns) == ["analyses.name"]
    assert "analyses.activation_max" in table(found, metrics=[], hidden=[]).columns
