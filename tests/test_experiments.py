"""The README's "Experiments" workflows, on tiny data in a real git + DVC repository."""

import csv
import json
import re
import subprocess
import sys

import pytest
import yaml

from tests.dvc_repo import commit, dvc, ran, sh, wait_for_queue
from tests.helpers import wide_model

pytestmark = pytest.mark.slow

PER_LAYER = ("feature_maps", "render_maps")
MAPS = "outputs/metrics/feature_maps.json"


@pytest.fixture
def repo(good_repo):
    """The tiny project, reproduced and committed, with a second model to try: the baseline every experiment
    starts from (neither wide file is a dependency of the baseline run)."""
    root, env = good_repo
    wide_model().save(root / "models" / "wide.keras")
    local = (root / "conf" / "model" / "local.yaml").read_text(encoding="utf-8")
    (root / "conf" / "model" / "wide.yaml").write_text(
        local.replace("local", "wide").replace("tiny", "wide"), encoding="utf-8"
    )
    commit(root, env, "baseline run")
    return root, env


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


def test_one_off_experiments_record_params_and_metrics(repo):
    root, env = repo
    assert ran(dvc(root, env, "exp", "run", "-n", "one-layer", "-S", "feature_maps.layers=[conv2d_1]")) == [
        "check_config",
        "fetch_model",  # resolves the layers against the model; its output is unchanged, so nothing else reruns
        "map_metrics",
        "report",  # shows every param
    ]
    samples = ran(dvc(root, env, "exp", "run", "-n", "four-samples", "-S", "samples.indices=[0,1,2,3]"))
    assert samples[:2] == ["check_config", "samples"] and "build_untrained" not in samples
    assert len(list((root / "outputs" / "figures" / "feature_maps" / "conv2d").glob("*.png"))) == 8
    wide = ran(
        dvc(root, env, "exp", "run", "-n", "wide-model", "-S", "model=wide",
            "-S", "feature_maps.layers=[conv2d,conv2d_1,conv2d_2,global_average_pooling2d,dense]")
    )  # fmt: skip
    # fetch_data reads the model's params (offline, it names the book's model too) but writes the same data
    assert wide[:3] == ["check_config", "fetch_data", "fetch_model"] and "render_maps@conv2d_2" in wide
    assert "samples" not in wide

    shown = experiments(root, env)
    assert shown["one-layer"]["params"]["feature_maps"]["layers"] == ["conv2d_1"]
    assert list(shown["one-layer"]["metrics"]["outputs/metrics/feature_maps.json"]["trained"]) == ["conv2d_1"]
    assert shown["four-samples"]["params"]["samples"]["indices"] == [0, 1, 2, 3]
    assert shown["wide-model"]["params"]["model"]["name"] == "wide"
    wide_metrics = shown["wide-model"]["metrics"]
    assert wide_metrics["outputs/metrics/feature_maps.json"]["trained"]["conv2d_2"]["channels"] == 16
    assert set(wide_metrics["outputs/metrics/weights_trained.json"]["trained"]) == {"conv2d", "conv2d_1", "conv2d_2"}
    figures = root / "outputs" / "figures"
    assert (figures / "weights" / "trained_conv2d_2_filters.png").is_file()
    assert (figures / "feature_maps" / "dense" / "untrained_sample_0.png").is_file()

    table = dvc(
        root, env, "exp", "show", "--only-changed", "--csv", "--drop", "Created|State|Executor|stages/|outputs/"
    )
    header = next(csv.reader(table.splitlines()))
    assert "feature_maps.layers" in header and "samples.indices" in header and "trained.conv2d_2.map_mean" in header
    assert not [c for c in header if c.startswith(("stages/", "outputs/"))]


def test_adding_a_layer_runs_only_that_layers_stages(repo):
    root, env = repo
    out = dvc(root, env, "exp", "run", "-S", "feature_maps.layers=[conv2d,conv2d_1,max_pooling2d]")
    assert ran(out) == [
        "check_config",
        "fetch_model",
        "feature_maps@max_pooling2d",
        "map_metrics",
        "render_maps@max_pooling2d",
        "report",
    ]
    assert "Stage 'feature_maps@conv2d' didn't change, skipping" in out


def test_queued_sweep_matches_serial_runs(repo):
    """Three layer settings queued and run two at a time give the outputs serial runs give."""
    root, env = repo
    settings = ["[conv2d]", "[conv2d_1,max_pooling2d]", "[max_pooling2d_1]"]
    dvc(root, env, "exp", "run", "--queue", "-S", "feature_maps.layers=" + ",".join(settings))
    dvc(root, env, "queue", "start", "-j", "2")
    status = wait_for_queue(root, env)
    assert status.count("Success") == 3, status
    queued = {json.dumps(e["params"]["feature_maps"]["layers"]): e for e in experiments(root, env).values()}
    assert len(queued) == 3

    for setting in settings:
        layers = yaml.safe_load(setting)
        dvc(root, env, "exp", "run", "-S", f"feature_maps.layers={setting}")
        serial_lock = yaml.safe_load((root / "dvc.lock").read_text(encoding="utf-8"))["stages"]
        queued_lock = yaml.safe_load(sh(root, "git", "show", f"{queued[json.dumps(layers)]['rev']}:dvc.lock", env=env))
        for stage in (f"{kind}@{layer}" for kind in PER_LAYER for layer in layers):
            assert queued_lock["stages"][stage]["outs"] == serial_lock[stage]["outs"], stage
        metrics = json.loads(sh(root, "git", "show", f"{queued[json.dumps(layers)]['rev']}:{MAPS}", env=env))
        assert metrics == json.loads((root / MAPS).read_text(encoding="utf-8"))
        assert list(metrics["trained"]) == layers  # only this experiment's layers, none left from other runs
        sh(root, "git", "checkout", "-q", "--", ".", env=env)
    dvc(root, env, "queue", "stop", check=False)


def test_diffs_between_experiments_and_the_compare_command(repo):
    root, env = repo
    dvc(root, env, "exp", "run", "-n", "seed7", "-S", "untrained.seed=7")
    dvc(root, env, "exp", "run", "-n", "seed8", "-S", "untrained.seed=8")

    diff = json.loads(dvc(root, env, "metrics", "diff", "seed7", "seed8", "--json"))
    assert "untrained.conv2d.std" in diff["outputs/metrics/weights_untrained.json"]
    assert "untrained.conv2d_1.map_mean" in diff["outputs/metrics/feature_maps.json"]
    assert "outputs/metrics/weights_trained.json" not in diff

    plots = json.loads(dvc(root, env, "plots", "diff", "seed7", "seed8", "--json").split("\nDVC failed")[0])
    figure = plots["data"]["outputs/figures/feature_maps/conv2d/untrained_sample_0.png"]
    assert sorted(r for p in figure for r in p["revisions"]) == ["seed7", "seed8"]
    assert "outputs/metrics/channels/conv2d_1/untrained.csv" in plots["data"]

    done = subprocess.run(
        [sys.executable, "-m", "convlens", "compare", "seed7", "seed8"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader((root / "outputs" / "compare" / "seed7_vs_seed8.csv").open(encoding="utf-8")))
    by_key = {(r["model"], r["layer"], r["statistic"]): r for r in rows}
    revs = {name: e["rev"] for name, e in experiments(root, env).items()}
    seed7, seed8 = (
        json.loads(sh(root, "git", "show", f"{revs[n]}:outputs/metrics/weights_untrained.json", env=env))
        for n in ("seed7", "seed8")
    )
    std = by_key[("untrained", "conv2d", "std")]
    assert (
        float(std["a"]) == seed7["untrained"]["conv2d"]["std"]
        and float(std["b"]) == seed8["untrained"]["conv2d"]["std"]
    )
    assert float(by_key[("trained", "conv2d", "mean")]["change"]) == 0.0
    assert (root / "outputs" / "compare" / "seed7_vs_seed8.png").stat().st_size > 10_000
    page = (root / "outputs" / "compare" / "seed7_vs_seed8.html").read_text(encoding="utf-8")
    shown = set(re.findall(r"([\w./-]+\.png): left seed7, right seed8", page))  # the figures that differ, side by side
    assert "feature_maps/conv2d/untrained_sample_0.png" in shown and "weights/untrained_conv2d_filters.png" in shown
    assert not [f for f in shown if "trained_" in f.replace("untrained_", "")]  # the trained model did not change

    bad = subprocess.run(
        [sys.executable, "-m", "convlens", "compare", "nosuch"], cwd=root, env=env, capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [
        "compare: error: unknown Git revision 'nosuch'; name a git revision, an experiment (dvc exp show) or workspace"
    ]
