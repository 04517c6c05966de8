"""Trust under real `dvc exp run` / `dvc repro`: no config value reaches outside the project, no result is stale.

DVC deletes a stage's outputs before running it, so a layer name that becomes an output path must be
refused before any such stage runs: the `check_config` stage heads the pipeline and every stage depends
on it. A user's model file and every module a stage imports are dependencies, so replacing or editing
them shows in `dvc status` and reruns the stages they feed.
"""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from tests.support.dvc_repo import dvc, ran, sh
from tests.support.helpers import PROJECT, imported_files, tiny_model

pytestmark = pytest.mark.slow

CHECK_LINE = (
    "feature_maps.layers[1] must be a layer name (letters, digits, _ . -), outer/inner for a nested model's layer, "
    "or an index ≥ 0, got {value!r}"
)


@pytest.fixture
def repo(tmp_path, good_repo):
    """The tiny project, reproduced and committed, with precious things inside and beside it."""
    root, env = good_repo
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "thesis.txt").write_text("years of work\n", encoding="utf-8")
    (root / "mydata").mkdir()
    (root / "mydata" / "notes.txt").write_text("untracked\n", encoding="utf-8")
    return root, env


def precious(root) -> dict[str, bytes]:
    """Every file of the sentinel folders and of the tracked conf/."""
    folders = (root.parent / "victim", root / "mydata", root / "conf")
    return {str(p): p.read_bytes() for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    "value",
    ["../../../victim", "../../mydata", "../../conf", "..", "/ABS/victim", ""],
    ids=["outside-the-repo", "untracked-folder", "tracked-conf", "dot-dot", "absolute", "empty"],
)
def test_a_layer_name_that_is_a_path_deletes_nothing_under_dvc_exp_run(repo, value):
    root, env = repo
    value = value.replace("/ABS/victim", str(root.parent / "victim"))
    before = precious(root)
    params = (root / "params.yaml").read_bytes()
    out = dvc(root, env, "exp", "run", "-S", f"feature_maps.layers=[conv2d,'{value}']", check=False)
    # refused while DVC composes conf/ (the schema's resolver), before its forced checkout of every output
    assert (
        f"ERROR: unexpected error - ConvlensError raised while resolving interpolation: {CHECK_LINE}".format(
            value=value
        )
        in out
    )
    assert ran(out) == [] and "Traceback" not in out
    assert precious(root) == before and (root / "params.yaml").read_bytes() == params


def test_a_hand_edited_params_yaml_is_checked_before_dvc_repro_deletes_anything(repo):
    root, env = repo
    before = precious(root)
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    params["feature_maps"]["each"] = ["conv2d", "../../../victim"]  # what DVC's foreach makes stages of
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    out = dvc(root, env, "repro", check=False)
    line = CHECK_LINE.format(value="../../../victim").replace("feature_maps.layers", "feature_maps.each")
    assert f"check_config: error: {line}" in out
    assert ran(out) == ["check_config"]  # DVC deletes a stage's outputs just before running it: no other ran
    assert precious(root) == before
    # the recovery docs/robustness.md gives: the good params back, DVC's cached mark back, nothing to rerun
    sh(root, "git", "checkout", "--", "params.yaml", env=env)
    dvc(root, env, "checkout")
    assert "up to date" in dvc(root, env, "status")


def test_a_refused_params_yaml_keeps_check_configs_mark(repo):
    """outside tester 4 #12: the mark persists while check_config runs, so after a refusal dvc status names the
    changed params.yaml, not every stage's "deleted" dependency."""
    root, env = repo
    mark = (root / "outputs" / "checked_config.txt").read_bytes()
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    params["render"]["dpi"] = float("nan")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    out = dvc(root, env, "repro", check=False)
    assert "check_config: error: render.dpi must be" in out and ran(out) == ["check_config"]
    assert (root / "outputs" / "checked_config.txt").read_bytes() == mark
    status = dvc(root, env, "status")
    assert "deleted" not in status and "check_config:" in status


def test_dvc_repro_samples_alone_with_an_index_past_the_split_keeps_the_samples(repo):
    """``dvc repro samples`` does not run fetch_model, which checks the indices against the data: samples refuses
    them itself, and its outputs persist while it runs, so the last samples stay and nothing says "deleted"."""
    root, env = repo
    before = {p.name: p.read_bytes() for p in sorted((root / "outputs" / "samples").iterdir())}
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    params["samples"]["indices"] = [0, 99]
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    out = dvc(root, env, "repro", "samples", check=False)
    assert "samples: error: samples.indices: image 99 is out of range: the train split has images 0..11" in out
    assert {p.name: p.read_bytes() for p in sorted((root / "outputs" / "samples").iterdir())} == before
    assert "deleted" not in dvc(root, env, "status")


@pytest.mark.parametrize(
    ("overrides", "line", "kept"),
    [
        (
            ["-S", "samples.indices=[0,99]"],
            "fetch_model: error: samples.indices: image 99 is out of range: the train split has images 0..11",
            "outputs/models/trained.keras",
        ),
        (
            ["-S", "data=npz", "-S", "data.path=floats.npz"],
            "fetch_data: error: ",
            "outputs/data/train_images.npy",
        ),
    ],
    ids=["fetch_model", "fetch_data"],
)
def test_a_value_only_a_stage_can_check_deletes_none_of_its_outputs(repo, overrides, line, kept):
    """outside tester 4 #6: what only the data decides is checked in fetch_model (or fetch_data), not check_config;
    their outputs persist while they run, so a refusal leaves the last model and data, and dvc status names the
    changed params, no deleted output."""
    import numpy as np

    root, env = repo
    pixels = np.random.default_rng(0).random((12, 28, 28)).astype(np.float32)  # 0..1 floats: fetch_data refuses
    labels = np.arange(12) % 10
    np.savez(root / "floats.npz", x_train=pixels, y_train=labels, x_test=pixels[:6], y_test=labels[:6])
    before = (root / kept).read_bytes()
    out = dvc(root, env, "exp", "run", *overrides, check=False)
    assert line in out, out
    assert (root / kept).read_bytes() == before
    status = dvc(root, env, "status")
    assert "deleted" not in status and "changed deps" in status


def outputs_bytes(root) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted((root / "outputs").rglob("*")) if p.is_file()}


def edit_map_cmap(root, cmap: str) -> None:
    """A hand edit of conf/, as a user who then forgets `make params` makes it."""
    book = root / "conf" / "render" / "book.yaml"
    text = book.read_text(encoding="utf-8")
    book.write_text(text.replace("\nmap_cmap: viridis", f"\nmap_cmap: {cmap}", 1), encoding="utf-8")


def test_dvc_repro_after_a_conf_edit_without_make_params_runs_nothing_stale(repo):
    """outside tester 4 #5: dvc repro never recomposes conf/. check_config depends on conf/, names the key whose
    edit params.yaml lacks and stops before DVC deletes any output; after `make params` the edit runs."""
    root, env = repo
    before = outputs_bytes(root)
    edit_map_cmap(root, "magma")
    status = dvc(root, env, "status")
    assert "check_config:" in status and "modified:           conf" in status
    out = dvc(root, env, "repro", check=False)
    line = "check_config: error: conf/ changed after params.yaml was composed from it: params.yaml has render.map_cmap"
    assert f"{line} 'viridis' where conf/ now has 'magma'; dvc repro never recomposes conf/: run `make params`" in out
    assert ran(out) == ["check_config"] and outputs_bytes(root) == before
    sh(root, sys.executable, "-m", "convlens", "params", env=env)  # what `make params` runs
    out = dvc(root, env, "repro")
    assert ran(out)[0] == "check_config" and ran(out)[-1] == "report"
    assert {s.split("@")[0] for s in ran(out)[1:-1]} == {"render_maps"}
    record = yaml.safe_load((root / "outputs" / "composed_conf.yaml").read_text(encoding="utf-8"))
    assert record["settings"]["render.map_cmap"] == "magma"  # written by `make params`


def test_dvc_exp_run_after_a_conf_edit_composes_it_and_records_it(repo):
    """Under dvc exp run DVC composes conf/ into params.yaml first: the edit runs, even with a -S value equal to
    conf/'s earlier one, and the record follows conf/."""
    root, env = repo
    edit_map_cmap(root, "magma")
    out = dvc(root, env, "exp", "run", "-S", "render.map_cmap=viridis", "-S", "render.filter_cmap=magma")
    assert "error" not in out and ran(out)[0] == "check_config"
    record = yaml.safe_load((root / "outputs" / "composed_conf.yaml").read_text(encoding="utf-8"))
    assert record["settings"]["render.map_cmap"] == "magma"
    assert "up to date" in dvc(root, env, "status")


def test_dvc_exp_run_with_a_conf_that_composes_only_with_its_overrides(repo):
    """outside tester 5 #4: model.path ??? in conf/ and given with -S: check_config records conf/ unresolved."""
    root, env = repo
    local = root / "conf" / "model" / "local.yaml"
    text = local.read_text(encoding="utf-8")
    local.write_text(text.replace("path: models/tiny.keras", "path: ???"), encoding="utf-8")
    out = dvc(root, env, "exp", "run", "-S", "model.path=models/tiny.keras")
    assert ran(out) == ["check_config"]  # the same params.yaml: only the check of the edited conf/ runs
    record = yaml.safe_load((root / "outputs" / "composed_conf.yaml").read_text(encoding="utf-8"))
    assert record["settings"]["model.path"] == "???"
    assert "up to date" in dvc(root, env, "status")


def test_replacing_the_model_file_in_place_reruns_the_pipeline(repo):
    root, env = repo
    assert "up to date" in dvc(root, env, "status")
    trained = json.loads((root / "outputs/metrics/weights_trained.json").read_text(encoding="utf-8"))
    tiny_model(seed=5).save(root / "models" / "tiny.keras")  # same name, same place, new weights

    status = dvc(root, env, "status")
    assert "fetch_model:" in status and "modified:           models/tiny.keras" in status
    out = dvc(root, env, "repro", "extract_weights")  # the model's first reader downstream: enough to see new numbers
    assert ran(out) == ["fetch_model", "extract_weights"]
    again = json.loads((root / "outputs/metrics/weights_trained.json").read_text(encoding="utf-8"))
    assert again["trained"]["conv2d"]["mean"] != trained["trained"]["conv2d"]["mean"]


def test_a_model_outside_the_repository_is_a_dependency_too(repo, tmp_path):
    root, env = repo
    outside = tmp_path / "elsewhere.keras"
    tiny_model(seed=6).save(outside)
    out = dvc(root, env, "exp", "run", "fetch_model", "-S", f"model.path={outside}")  # the stage that reads it
    assert ran(out) == ["check_config", "fetch_data", "fetch_model"]  # fetch_data reads the model params too
    tiny_model(seed=7).save(outside)
    status = dvc(root, env, "status", "fetch_model")
    assert "fetch_model:" in status and f"modified:           {outside}" in status
    assert ran(dvc(root, env, "repro", "fetch_model")) == ["fetch_model"]


def status_stages(root) -> set[str]:
    """The stages `dvc status --json` lists (foreach instances as their stage), from the call the CLI makes, in this
    process: one CLI start (~1.5 s) per module would be most of the test's time."""
    from dvc.repo import Repo

    with Repo(str(root)) as dvc_repo:  # keys are relative to the cwd: "../../x/dvc.yaml:stage@item" from here
        return {key.rsplit(":", 1)[-1].split("@")[0] for key in dvc_repo.status(check_updates=True)}


def covering_deps(stages: dict, module: str) -> frozenset[tuple[str, str]]:
    """The ``(stage, dependency)`` pairs of ``dvc.yaml`` whose path is ``module`` or a folder holding it."""
    return frozenset(
        (name, dep)
        for name, stage in stages.items()
        for dep in (stage.get("do", stage).get("deps") or [])
        if module == dep or module.startswith(dep.rstrip("/") + "/")
    )


def test_editing_any_module_a_stage_imports_shows_that_stage_in_dvc_status(repo):
    """Each module a stage imports, edited, lists that stage in ``dvc status``. Modules that the same ``dvc.yaml``
    dependencies cover and the same stages import change the same hashes: one of each such group is edited."""
    root, env = repo
    stages = yaml.safe_load((PROJECT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    # none without -S model=train or -S analyses=full (the repo is the default): test_config.py's
    # test_every_module_a_stage_imports_is_one_of_its_dependencies covers their deps
    stages = {n: s for n, s in stages.items() if not str(s.get("foreach")).startswith(("${model.", "${analyses."))}
    imports = {  # python -m stages.<name> runs stages/__init__.py too
        name: imported_files(PROJECT / f"stages/{name}.py") | {f"stages/{name}.py", "stages/__init__.py"}
        for name in stages
    }
    every = sorted(set().union(*imports.values()))
    assert "convlens/schema.py" in every and "stages/__init__.py" in every
    groups: dict[tuple, str] = {}
    for module in every:
        importers = frozenset(name for name, files in imports.items() if module in files)
        groups.setdefault((covering_deps(stages, module), importers), module)
    modules = sorted(groups.values())
    assert len(modules) > len(stages)  # each stage's own script, stages/__init__.py, and the library
    for module in modules:
        path = root / module
        original = path.read_bytes()
        path.write_bytes(original + b"\n# edited\n")
        listed = status_stages(root)
        path.write_bytes(original)
        expected = {name for name, files in imports.items() if module in files}
        assert expected <= listed, f"editing {module} does not show {sorted(expected - listed)} in dvc status"
    assert "up to date" in dvc(root, env, "status")


def test_bytecode_python_writes_beside_the_modules_changes_no_stage(repo):
    """Without ``PYTHONDONTWRITEBYTECODE`` an import writes ``__pycache__/*.pyc`` inside ``convlens/``, a directory
    dependency of nearly every stage: ``.dvcignore`` keeps it out of the hash, or the next ``dvc repro`` reruns them."""
    root, env = repo
    writes = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    sh(root, sys.executable, "-c", "import convlens.schema, convlens.render, stages.render_maps", env=writes)
    assert list((root / "convlens").rglob("*.pyc")) and list((root / "stages").rglob("*.pyc"))
    assert status_stages(root) == set()
