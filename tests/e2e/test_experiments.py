"""The experiments of the README's tour and docs/experiments.md, checked in what they left: the stages each
experiment reran, the params and metrics DVC recorded, a queued run against a serial one, and the diffs between runs
(``readme_run``, in a copy)."""

import csv
import json
import re
import subprocess
import sys

import pytest
import yaml

from tests.support.dvc_repo import ANALYSES, STAGES, dvc, ran, sh
from tests.support.readme_run import DOCS, README, experiment_outputs

pytestmark = [pytest.mark.slow, pytest.mark.readme]  # make test-all and CI; make test leaves them out

PER_LAYER = ("feature_maps", "render_maps")
MAPS = "outputs/metrics/feature_maps.json"


def experiments(root, env) -> dict[str, dict]:
    """`dvc exp show --json` as {experiment name: {"rev", "params", "metrics"}}."""
    found = {}
    for entry in json.loads(dvc(root, env, "exp", "show", "--json")):
        for exp in entry.get("experiments") or []:
            rev = exp["revs"][0]
            data = rev["data"]
            found[rev.get("name") or exp.get("name")] = {
                "rev": data["rev"],
                "params": data["params"]["params.yaml"]["data"],
                "metrics": {path: m["data"] for path, m in (data.get("metrics") or {}).items()},
            }
    return found


def locked(root, env, rev: str) -> dict:
    """The stages of ``dvc.lock`` at ``rev``."""
    return yaml.safe_load(sh(root, "git", "show", f"{rev}:dvc.lock", env=env))["stages"]


def test_each_experiment_reruns_only_what_its_change_touches(readme_run):
    printed = {name: ran(text) for name, text in experiment_outputs(readme_run["output"]).items()}
    assert printed["one-layer"] == [
        "check_config",
        "fetch_model",  # resolves the layers against the model; its output is unchanged, so nothing else reruns
        "map_metrics",
        "report",  # shows every param
    ]
    images = printed["four-images"]
    # fetch_model checks the indices against the data (before DVC deletes samples' outputs); its output is unchanged
    assert images[:3] == ["check_config", "fetch_model", "samples"] and "build_untrained" not in images
    assert not set(ANALYSES) & set(images)  # opt-in: -S analyses=full
    full = printed["full"]  # the analyses, what merges and shows their numbers; no pass over the data again
    assert set(ANALYSES) <= set(full) and full[-1] == "report" and "metrics" in full
    assert not {"dataset@trained", "fetch_data", "extract_weights"} & set(full)  # (seed7 before it: the untrained side)
    trained_only = ("fetch_data", "extract_weights")  # and each per-model stage's @trained
    # fetch_model and samples too: their params go back from four-images' samples to the default, and their outputs
    # persist while they run (a refusal keeps them), so DVC keeps no run cache for them: they run (well under a
    # second each), their outputs unchanged
    assert printed["seed7"] == [s for s in STAGES if s not in trained_only and not s.endswith("@trained")]
    mine = printed["my-cnn"]
    # fetch_data reads the model's params (offline, it names the book's model too) but writes the same data
    assert mine[:3] == ["check_config", "fetch_data", "fetch_model"] and "render_maps@conv2d_2" in mine
    assert "samples" not in mine


def test_experiments_record_their_params_and_metrics(readme_repo):
    root, env = readme_repo
    shown = experiments(root, env)
    assert shown["one-layer"]["params"]["feature_maps"]["layers"] == ["conv2d_1"]
    assert list(shown["one-layer"]["metrics"][MAPS]["trained"]) == ["conv2d_1"]
    assert shown["four-images"]["params"]["samples"]["indices"] == [0, 1, 2, 3]
    four = locked(root, env, shown["four-images"]["rev"])
    assert four["render_maps@conv2d"]["outs"][0]["nfiles"] == 8  # 4 images × 2 models
    mine = shown["my-cnn"]
    assert mine["params"]["model"]["path"] == "models/my-cnn.keras"
    assert mine["metrics"][MAPS]["trained"]["conv2d_2"]["channels"] == 64
    assert set(mine["metrics"]["outputs/metrics/weights_trained.json"]["trained"]) == {"conv2d", "conv2d_1", "conv2d_2"}
    dvc(root, env, "exp", "apply", "my-cnn")  # its results back in the workspace (later pages ran other experiments)
    assert (root / "outputs" / "figures" / "weights" / "trained_conv2d_2_filters.png").is_file()

    table = dvc(
        root, env, "exp", "show", "--only-changed", "--csv", "--drop", "Created|State|Executor|stages/|outputs/"
    )
    header = next(csv.reader(table.splitlines()))
    assert "feature_maps.layers" in header and "samples.indices" in header and "trained.conv2d_2.map_mean" in header
    assert not [c for c in header if c.startswith(("stages/", "outputs/"))]


def test_applying_a_run_with_fewer_layers_leaves_only_git_tracked_tables_which_tidy_removes(readme_repo):
    """docs/experiments.md: after `my-cnn` (three conv layers), `dvc exp apply HEAD` (two) deletes conv2d_2's
    DVC-cached maps and figures but not its git-tracked tables; `python -m convlens tidy HEAD` deletes those and
    nothing else, and the workspace is HEAD's again. Then the other way round: `my-cnn` applied over `one-layer`
    (conv2d_1 only), `tidy my-cnn` keeps my-cnn's own untracked tables and the workspace is my-cnn's."""
    root, env = readme_repo
    dvc(root, env, "exp", "apply", "my-cnn")
    assert (root / "outputs" / "metrics" / "channels" / "conv2d_2").is_dir()
    dvc(root, env, "exp", "apply", "HEAD")
    assert not (root / "outputs" / "figures" / "feature_maps" / "conv2d_2").exists()  # DVC-cached: deleted
    status = sh(root, "git", "status", "--porcelain", "--untracked-files=all", env=env).splitlines()
    left = sorted(line[3:] for line in status if line.startswith("?? outputs/"))  # (the pages' own models: data)
    assert "outputs/metrics/channels/conv2d_2/trained.csv" in left and "trained_conv2d_2.csv" in " ".join(left)
    stray = [p for p in left if not p.startswith("outputs/metrics/") and not p.endswith("/.gitignore")]
    assert not stray, stray  # the tables, and the .gitignore DVC wrote for the `full` run's analyses
    assert "map_metrics" in dvc(root, env, "status")  # what the docs warn of
    sh(root, sys.executable, "-m", "convlens", "tidy", "HEAD", env=env)
    assert "?? outputs/" not in sh(root, "git", "status", "--porcelain", "--untracked-files=all", env=env)
    assert "Data and pipelines are up to date" in dvc(root, env, "status")

    dvc(root, env, "exp", "apply", "one-layer")
    dvc(root, env, "exp", "apply", "my-cnn")
    sh(root, sys.executable, "-m", "convlens", "tidy", "my-cnn", env=env)
    assert (root / "outputs" / "metrics" / "channels" / "conv2d_2" / "trained.csv").is_file()  # my-cnn's own
    assert "Data and pipelines are up to date" in dvc(root, env, "status")
    dvc(root, env, "exp", "apply", "HEAD")  # as the later tests expect
    sh(root, sys.executable, "-m", "convlens", "tidy", "HEAD", env=env)


def test_the_own_data_pages_experiments_record_their_data_and_the_models_own_layers(readme_repo):
    """docs/own-data.md: one experiment per data source; a CIFAR-10 model's conv layers looked at without a list."""
    root, env = readme_repo
    shown = experiments(root, env)
    assert shown["upside-down"]["params"]["data"]["path"] == "data/upside-down.npz"
    photos = shown["photos"]["params"]["data"]
    assert (photos["name"], photos["resize"], photos["color"]) == ("folder", [28, 28], "gray")
    assert shown["mnist"]["params"]["data"]["format"] == "npz"
    cifar = shown["my-cifar"]
    assert cifar["params"]["data"]["name"] == "cifar10" and cifar["params"]["feature_maps"]["layers"] is None
    assert cifar["params"]["feature_maps"]["each"] == ["conv2d", "conv2d_1"]
    assert 0 <= cifar["metrics"]["outputs/metrics/evaluate.json"]["trained"]["accuracy"] <= 1
    assert list(cifar["metrics"][MAPS]["trained"]) == ["conv2d", "conv2d_1"]
    hundred = shown["cifar100-data"]["rev"]
    assert locked(root, env, hundred)["fetch_data"]["outs"][0]["nfiles"] == 5  # 2 splits × 2 arrays + classes.json


def test_a_queued_experiment_matches_the_same_run_made_serially(readme_repo):
    """One of docs/experiments.md's queued experiments (run in a clone by a queue worker, two at a time) against the
    same params run serially in the workspace, computed afresh (the run cache is emptied first)."""
    root, env = readme_repo
    layers, cmap = ["max_pooling2d_1"], "gray"
    queued = [
        e
        for e in experiments(root, env).values()
        if e["params"]["feature_maps"]["layers"] == layers and e["params"]["render"]["map_cmap"] == cmap
    ]
    assert len(queued) == 1, queued
    dvc(root, env, "exp", "apply", "HEAD")
    sh(root, "rm", "-rf", ".dvc/cache/runs", env=env)
    out = dvc(root, env, "exp", "run", "-S", f"feature_maps.layers={layers}", "-S", f"render.map_cmap={cmap}")
    assert {"feature_maps@max_pooling2d_1", "render_maps@max_pooling2d_1"} <= set(ran(out))  # computed, not restored
    serial, queued_lock = (
        yaml.safe_load((root / "dvc.lock").read_text(encoding="utf-8"))["stages"],
        locked(root, env, queued[0]["rev"]),
    )
    for stage in (f"{kind}@{layer}" for kind in PER_LAYER for layer in layers):
        assert queued_lock[stage]["outs"] == serial[stage]["outs"], stage
    metrics = json.loads(sh(root, "git", "show", f"{queued[0]['rev']}:{MAPS}", env=env))
    assert metrics == json.loads((root / MAPS).read_text(encoding="utf-8"))
    assert list(metrics["trained"]) == layers  # only this experiment's layers, none left from other runs


def test_diffs_between_experiments_and_the_compare_command(readme_repo):
    """The README tour's seed7 differs from the last commit only in the untrained model: its statistics, maps and
    figures."""
    root, env = readme_repo

    diff = json.loads(dvc(root, env, "metrics", "diff", "HEAD", "seed7", "--json"))
    assert "untrained.conv2d.std" in diff["outputs/metrics/weights_untrained.json"]
    assert "untrained.conv2d_1.map_mean" in diff["outputs/metrics/feature_maps.json"]
    assert "outputs/metrics/weights_trained.json" not in diff

    plots = json.loads(dvc(root, env, "plots", "diff", "HEAD", "seed7", "--json").split("\nDVC failed")[0])
    figure = plots["data"]["outputs/figures/feature_maps/conv2d/untrained_sample_0.png"]
    assert sorted(r for p in figure for r in p["revisions"]) == ["HEAD", "seed7"]
    assert "outputs/metrics/channels/conv2d_1/untrained.csv" in plots["data"]

    done = subprocess.run(
        [sys.executable, "-m", "convlens", "compare", "HEAD", "seed7"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader((root / "outputs" / "compare" / "HEAD_vs_seed7.csv").open(encoding="utf-8")))
    by_key = {(r["model"], r["layer"], r["statistic"]): r for r in rows}
    revs = {"HEAD": "HEAD", "seed7": experiments(root, env)["seed7"]["rev"]}
    head, seed7 = (
        json.loads(sh(root, "git", "show", f"{revs[n]}:outputs/metrics/weights_untrained.json", env=env))
        for n in ("HEAD", "seed7")
    )
    std = by_key[("untrained", "conv2d", "std")]
    stds = (head["untrained"]["conv2d"]["std"], seed7["untrained"]["conv2d"]["std"])
    assert (float(std["a"]), float(std["b"])) == stds
    assert std["a"] != std["b"]
    assert float(by_key[("trained", "conv2d", "mean")]["change"]) == 0.0
    assert (root / "outputs" / "compare" / "HEAD_vs_seed7.png").stat().st_size > 10_000
    page = (root / "outputs" / "compare" / "HEAD_vs_seed7.html").read_text(encoding="utf-8")
    shown = set(re.findall(r"([\w./-]+\.png): left HEAD, right seed7", page))  # the figures that differ, side by side
    shown |= set(re.findall(r'alt="seed7: ([\w./-]+\.png)"', page))  # past the first few: thumbnails
    assert "feature_maps/conv2d/untrained_sample_0.png" in shown and "weights/untrained_conv2d_filters.png" in shown
    assert not [f for f in shown if "trained_" in f.replace("untrained_", "")]  # the trained model did not change

    bad = subprocess.run(
        [sys.executable, "-m", "convlens", "compare", "nosuch"], cwd=root, env=env, capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [
        "compare: error: unknown Git revision 'nosuch'; name a git revision, an experiment (dvc exp show) or workspace"
    ]


def test_the_pages_say_what_their_experiments_did(readme_run, readme_repo):
    """Issue 28: facts in the README's prose had drifted from what its commands do. The README tour's comment on the
    one-layer experiment and docs/experiments.md's account of it name the stages that rerun, and the table of
    experiments there has rows the command shows, the branch first (`main`: the project's, where a test repository
    starts too)."""
    text = README.read_text(encoding="utf-8")
    comment = re.search(r"-n one-layer .*# reruns ([\w, ]+):", text)
    assert comment, "the README lost its one-layer comment"
    assert ran(experiment_outputs(readme_run["output"])["one-layer"]) == comment[1].split(", ")
    page = (DOCS / "experiments.md").read_text(encoding="utf-8")
    told = re.search(r"`one-layer` \(`[^`]*`: it reruns ([\w, ]+) and (\w+),", " ".join(page.split()))
    assert told, "docs/experiments.md lost its account of one-layer"
    assert comment[1].split(", ") == [*told[1].split(", "), told[2]]

    table = page.split("yours are the book's):\n\n```\n", 1)[1].split("```", 1)[0].splitlines()
    names = [row.split()[0] for row in table[3:] if row.strip()]
    root, env = readme_repo
    shown = sh(root, sys.executable, "-m", "convlens", "experiments", env=env).splitlines()
    branch = sh(root, "git", "branch", "--show-current", env=env).strip()
    assert names[0] == branch == "main"
    assert set(names) <= {row.split()[0] for row in shown if row.strip()}
