"""End to end: `dvc repro` of a copy of the project on tiny data, then the reruns DVC should (not) do."""

import json

import pytest
import yaml

from tests.support.dvc_repo import ANALYSES, STAGES, dvc, locked_outputs, ran
from tests.support.helpers import full_analyses

pytestmark = pytest.mark.slow


def test_repro_then_noop_then_render_only(reproduced_repo, good_repo):
    """The first `dvc repro` is the one ``reproduced_repo`` ran (once per test run) in a fresh ``make_repo``; the
    rest runs in a copy of that repo (``good_repo``), which must be as up to date as the original."""
    root, env = good_repo

    first = reproduced_repo["repro"]
    assert sorted(ran(first)) == sorted(STAGES)
    assert "Traceback" not in first and "oneDNN" not in first
    outputs = locked_outputs(root)
    assert sorted(outputs) == sorted(STAGES)
    for path in (p for paths in outputs.values() for p in paths):
        assert path.exists(), path
        assert path.is_file() or any(path.iterdir()), path
    figures = root / "outputs" / "figures"
    assert len(list(figures.rglob("*.png"))) == 33  # 23 (a heatmap per model) + 8 examples + 2 confusion (light)
    metrics = json.loads((root / "outputs" / "metrics" / "weights_trained.json").read_text(encoding="utf-8"))
    assert set(metrics["trained"]["conv2d"]) == {"mean", "std", "min", "max", "nan", "inf"}

    assert ran(dvc(root, env, "repro")) == []
    plots = dvc(root, env, "plots", "show", "--json")
    assert "failed to load" not in plots
    plot_ids = set(json.loads(plots)["data"])
    assert "outputs/figures/weights/conv2d_hist_overlay.png" in plot_ids
    assert "outputs/figures/feature_maps/conv2d_1/trained_sample_0.png" in plot_ids
    assert {"Kernel std by layer", "outputs/metrics/filters/untrained/conv2d_1.csv"} <= plot_ids
    assert {
        "outputs/metrics/confusion/trained/trained.csv",
        "outputs/figures/evaluate/untrained/untrained_confusion.png",
        "outputs/figures/dataset/trained/conv2d_classes.png",
    } <= plot_ids

    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    params["render"]["map_cmap"] = "magma"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    # check_config reads all of params.yaml (a cheap schema check); its output never changes, so only the
    # stages that read the changed key run after it, then the report (it shows every param and figure)
    assert sorted(ran(dvc(root, env, "repro"))) == [
        "check_config",
        "render_maps@conv2d",
        "render_maps@conv2d_1",
        "report",
    ]
    params["render"]["filter_cmap"] = "magma"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    assert ran(dvc(root, env, "repro")) == ["check_config", "render_figures", "report"]

    # -S analyses=full by hand (the preset's keys in params.yaml): only the opt-in analyses run, then what merges
    # and shows their numbers (metrics, report); the chapter's and the dataset pass's stages stay cached
    merged = root / "outputs" / "metrics" / "activation_max.json"
    assert list(json.loads(merged.read_text(encoding="utf-8"))) == ["skipped"]  # the default: not run, and why
    params["analyses"] = full_analyses()
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    # fetch_model applies gradcam's rule to gradcam.layer once attribution is on (its output bytes do not change)
    assert sorted(ran(dvc(root, env, "repro"))) == sorted(
        ["check_config", "fetch_model", *ANALYSES, "metrics", "report"]
    )
    assert len(list(figures.rglob("*.png"))) == 38  # + 4 activation maximization + 1 attribution (one sample)
    assert list(json.loads(merged.read_text(encoding="utf-8"))) == ["trained", "untrained"]

    # issue 25: the figures' language and a drawing colormap redraw, they never rerun a TensorFlow stage
    redraw = [
        "render_dataset@trained",
        "render_dataset@untrained",
        "render_activation_max@trained",
        "render_activation_max@untrained",
        "render_gradcam@trained_vs_untrained",
    ]
    params["report"]["language"] = "ko"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    maps = ["render_maps@conv2d", "render_maps@conv2d_1"]
    assert sorted(ran(dvc(root, env, "repro"))) == sorted(["check_config", "render_figures", *redraw, *maps, "report"])
    params["render"]["sample_cmap"] = "magma"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    assert sorted(ran(dvc(root, env, "repro"))) == sorted(["check_config", "render_figures", *redraw, "report"])
