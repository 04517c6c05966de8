"""The analyses' figures are drawn by their own stages (issue 25): ``render_activation_max@<model>`` and
``render_gradcam`` draw from what ``activation_max@<model>`` and ``gradcam`` wrote, without TensorFlow, the same
bytes as in the pipeline; the compute stages declare only the params that change their numbers."""

from __future__ import annotations

import shutil
import subprocess
import sys

import yaml

from convlens.pipeline import paths
from tests.support.helpers import PROJECT, snapshot

STAGES = yaml.safe_load((PROJECT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
DRAWING = {"render", "report.language", "gradcam.cmap", "gradcam.alpha", "attribution.scale"}  # and render.*


def params_of(stage: str) -> set[str]:
    return {p for p in STAGES[stage].get("do", STAGES[stage])["params"] if isinstance(p, str)}


def drawing(param: str) -> bool:
    return param in DRAWING or param.startswith("render.")


def test_the_drawing_stages_redraw_the_same_figures_without_tensorflow(project, run_pipeline):
    run_pipeline(project)
    folders = {"activation_max": paths.activation_max_figures_dir, "gradcam": paths.gradcam_figures_dir}
    folders = {kind: where(project) for kind, where in folders.items()}
    drawn = {kind: snapshot(folder) for kind, folder in folders.items()}
    assert len(drawn["activation_max"]) == 4 and list(drawn["gradcam"]) == ["sample_0.png"]
    for folder in folders.values():
        shutil.rmtree(folder)
    code = (
        "import sys; from convlens.pipeline.config import run_stage; "
        "from stages import render_activation_max, render_gradcam; "
        "[run_stage('render_activation_max', render_activation_max.run, [m]) for m in ('trained', 'untrained')]; "
        "run_stage('render_gradcam', render_gradcam.run, []); "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True, encoding="utf-8")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split()[-2:] == ["False", "False"]
    assert {kind: snapshot(folder) for kind, folder in folders.items()} == drawn


def test_the_compute_stages_declare_only_what_changes_their_numbers():
    """Each key of the analyses' groups is read by exactly one of the two stages of its analysis (a new key must be
    placed), the drawing params by the drawing stage alone; ``report.language`` or a ``render.*`` key reruns no
    TensorFlow stage."""
    groups = {
        ("activation_max", "render_activation_max"): ["activation_max"],
        ("gradcam", "render_gradcam"): ["gradcam", "attribution"],
    }
    params = yaml.safe_load((PROJECT / "params.yaml").read_text(encoding="utf-8"))
    for (compute, draw), names in groups.items():
        keys = {f"{g}.{k}" for g in names for k in params[g]}
        covered = {
            stage: {k for k in keys if any(k == p or k.startswith(f"{p}.") for p in params_of(stage))}
            for stage in (compute, draw)
        }
        assert covered[compute] | covered[draw] == keys and not covered[compute] & covered[draw], compute
        assert not any(map(drawing, params_of(compute))), compute
        assert all(map(drawing, params_of(draw))) and "report.language" in params_of(draw), draw
        assert f"stages/{draw}.py" in STAGES[draw].get("do", STAGES[draw])["deps"]


def test_a_signed_layers_channels_are_not_drawn_dead(project, stage_config, monkeypatch):
    """outside tester 3 #4: the figure drew a red × on a channel of a layer without ReLU whose own input's mean
    stayed below 0, which activation_max@ no longer calls dead (its summary marks the layer signed)."""
    import numpy as np

    from convlens.pipeline import paths
    from convlens.pipeline.files import write_csv, write_json
    from stages import render_activation_max

    folder = paths.activation_max_dir(project, "trained")
    folder.mkdir(parents=True)
    write_json(folder / paths.INDEX_NAME, {"top": 1.0, "layers": ["dw"]})
    write_json(paths.activation_max_summary(project, "trained"), {"dw": {"steps": 8, "signed": True}})
    np.save(folder / paths.activation_max_name("trained", "dw"), np.zeros((2, 4, 4, 1), np.float32))
    rows = [{"channel": 0, "activation": -0.2, "top_image_mean": -0.5}, {"channel": 1, "activation": 0.1,
            "top_image_mean": 0.4}]  # fmt: skip
    write_csv(folder / paths.activation_max_channels_name("trained", "dw"), rows)
    drawn = []
    monkeypatch.setattr(render_activation_max, "labelled_mosaic_figure", lambda *a: drawn.append(a[8]))
    render_activation_max.run(stage_config("render_activation_max"), project, "trained")
    assert drawn == [["", "below"]]  # channel 0 above its best image's mean, not dead; channel 1 below its best's
    write_json(paths.activation_max_summary(project, "trained"), {"dw": {"steps": 8}})  # a ReLU layer's summary
    render_activation_max.run(stage_config("render_activation_max"), project, "trained")
    assert drawn[-1] == ["dead", "below"]
