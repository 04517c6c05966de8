"""Atomic outputs (``pipeline.files``) under faults: disk full, not writable, a file in the way, a failing rename,
SIGKILL mid-write. Each output stays old, new or absent, nothing partial is left, and the next write cleans up."""

import errno
import fcntl
import logging
import os
import re
from pathlib import Path

import numpy as np
import pytest

from convlens.errors import ConvlensError
from convlens.pipeline.files import (
    SCRATCH,
    atomic_path,
    read_csv_columns,
    read_json,
    scratch_dir,
    staged_dir,
    write_json,
)
from stages import extract_weights, fetch_model
from tests.support.helpers import (
    WEIGHT_OUTPUTS,
    cli,
    copy_project,
    hidden,
    kill_shim_env,
    one_line,
    snapshot,
    staging_areas,
    weight_outputs,
)

AREA = re.compile(r"\.convlens-tmp\.\d+\.[a-z0-9_]{8}")  # a process's staging area (convlens/pipeline/files.py)


def _good_weights(project, stage_config) -> dict[str, bytes]:
    fetch_model.run(stage_config("fetch_model"), project)
    extract_weights.run(stage_config("extract_weights"), project)
    return snapshot(project / "outputs")


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_while_saving_weights_is_one_line_and_keeps_the_old_outputs(project, stage_config, monkeypatch):
    before = _good_weights(project, stage_config)
    monkeypatch.setattr(np, "save", _enospc)
    with pytest.raises(ConvlensError) as err:
        extract_weights.run(stage_config("extract_weights", "weights.percentiles=[50]"), project)
    assert one_line(err) == (
        f"cannot write {project / 'outputs' / 'weights' / 'trained'}: No space left on device; "
        "check free space and permissions"
    )
    assert snapshot(project / "outputs") == before and not hidden(project / "outputs")


def test_disk_full_at_the_final_rename_keeps_the_old_file(project, stage_config, monkeypatch):
    before = _good_weights(project, stage_config)
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst).name == "weights_trained.json":
            _enospc()
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(ConvlensError, match=r"cannot write .*weights_trained\.json: No space left on device"):
        extract_weights.run(stage_config("extract_weights", "weights.percentiles=[50]"), project)
    after = snapshot(project / "outputs")
    assert after["metrics/weights_trained.json"] == before["metrics/weights_trained.json"]
    assert not hidden(project / "outputs")


def test_an_output_dir_that_is_not_writable_is_one_line(project, stage_config, monkeypatch):
    before = _good_weights(project, stage_config)

    def denied(*args, **kwargs):  # names the folder, as the OS does: a filename alone says nothing of its kind
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(project / "outputs" / "weights"))

    monkeypatch.setattr("tempfile.mkdtemp", denied)  # what a read-only dir does (chmod does not stop root)
    with pytest.raises(ConvlensError) as err:
        extract_weights.run(stage_config("extract_weights"), project)
    assert one_line(err) == (
        f"cannot write {project / 'outputs' / 'weights' / 'trained'}: Permission denied; "
        "check free space and permissions"
    )
    assert snapshot(project / "outputs") == before and not hidden(project / "outputs")


def test_an_output_path_blocked_by_a_file_is_one_line(project, stage_config):
    fetch_model.run(stage_config("fetch_model"), project)
    (project / "outputs" / "weights").write_text("not a directory", encoding="utf-8")  # a real OS error, even as root
    with pytest.raises(ConvlensError) as err:
        extract_weights.run(stage_config("extract_weights"), project)
    assert one_line(err) == (
        f"cannot write {project / 'outputs' / 'weights' / 'trained'}: {project / 'outputs' / 'weights'} is a file "
        "where a directory must be; remove it"
    )


def test_a_failing_block_leaves_the_old_dir_and_no_temp(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "a.npy").write_bytes(b"old")
    with pytest.raises(ZeroDivisionError), staged_dir(target) as tmp:
        (tmp / "a.npy").write_bytes(b"new")
        _ = 1 / 0
    assert snapshot(target) == {"a.npy": b"old"} and [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.parametrize("dvc_repo", [True, False], ids=["scratch-dir", "beside-the-output"])
def test_a_failing_final_rename_of_the_new_dir_puts_the_old_dir_back(tmp_path, monkeypatch, dvc_repo):
    """The old dir is moved aside before the new one is renamed in; if that rename fails, the old one returns."""
    if dvc_repo:
        (tmp_path / ".dvc").mkdir()
    target = tmp_path / "outputs" / "out"
    (target / "sub").mkdir(parents=True)
    (target / "a.npy").write_bytes(b"old a")
    (target / "sub" / "b.csv").write_bytes(b"old b")
    before = snapshot(target)
    real_replace, failed = os.replace, []

    def replace(src, dst):
        if Path(dst) == target and Path(src).name.startswith("out.") and ".old." not in str(src):
            failed.append(src)
            _enospc()  # the new dir's rename onto the output
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(ConvlensError) as err, staged_dir(target) as tmp:
        (tmp / "a.npy").write_bytes(b"new a")
        (tmp / "c.npy").write_bytes(b"new c")
    assert len(failed) == 1 and snapshot(target) == before  # the old dir is back, complete and unchanged
    assert sorted(p.name for p in target.iterdir()) == ["a.npy", "sub"]
    assert one_line(err) == f"cannot write {target}: No space left on device; check free space and permissions"
    assert [p.name for p in (tmp_path / "outputs").iterdir()] == ["out"] and not hidden(tmp_path / "outputs")
    if dvc_repo:
        assert not list((tmp_path / SCRATCH).iterdir())


def test_staging_happens_in_the_dvc_repos_scratch_dir_and_leaves_nothing(tmp_path):
    (tmp_path / ".dvc").mkdir()
    target = tmp_path / "outputs" / "out"
    with staged_dir(target) as tmp:
        assert tmp.is_relative_to(tmp_path / SCRATCH) and not hidden(tmp_path / "outputs")
        write_json(tmp / "x.json", [1])  # a file of a staged dir is written inside it
        with atomic_path(tmp_path / "outputs" / "summary.json") as file:
            assert file.parent == tmp.parent and file.suffix == ".json"
            file.write_text("{}", encoding="utf-8")
    assert snapshot(tmp_path / "outputs") == {"out/x.json": b"[\n  1\n]\n", "summary.json": b"{}"}
    assert not hidden(tmp_path / "outputs") and not list((tmp_path / SCRATCH).iterdir())


def test_the_scratch_dir_is_the_nearest_dvc_repos_on_the_same_file_system(tmp_path, tmp_path_factory, monkeypatch):
    workspace = tmp_path / ".dvc" / "tmp" / "exps" / "run" / "ws"  # a queued experiment: its own .dvc
    (workspace / ".dvc").mkdir(parents=True)
    (workspace / "outputs").mkdir()
    assert scratch_dir(workspace / "outputs") == workspace / SCRATCH
    (tmp_path / "plain").mkdir()
    assert scratch_dir(tmp_path / "plain") == tmp_path / SCRATCH
    outside = tmp_path_factory.mktemp("outside")  # no .dvc above it: staged beside the output
    assert scratch_dir(outside) == outside

    real_stat = os.stat

    def other_device(path, *args, **kwargs):  # .dvc/tmp on another file system: a rename could not cross
        st = real_stat(path, *args, **kwargs)
        return os.stat_result((*st[:2], st.st_dev + 1, *st[3:])) if str(path).endswith("convlens") else st

    monkeypatch.setattr(os, "stat", other_device)
    assert scratch_dir(workspace / "outputs") == workspace / "outputs"


def test_the_next_write_removes_a_killed_process_area_but_not_a_live_one(tmp_path, caplog):
    (tmp_path / ".dvc").mkdir()
    scratch = tmp_path / SCRATCH
    dead, live = scratch / ".convlens-tmp.1.k1ll3d_x", scratch / ".convlens-tmp.2.l1ve_abc"
    for area in (dead, live):
        (area / "out.x").mkdir(parents=True)
        (area / "owner").touch()
    (scratch / ".convlens-tmp.3.n0_0wner").mkdir()  # killed between creating its area and locking it
    fd = os.open(live / "owner", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # what the live process holds while it stages
    try:
        with caplog.at_level(logging.INFO):
            write_json(tmp_path / "outputs" / "summary.json", {})
    finally:
        os.close(fd)
    assert [p.name for p in scratch.iterdir()] == [live.name]
    assert f"removing {dead}, left by an interrupted run" in caplog.text


def test_leftovers_of_an_older_convlens_beside_the_output_are_removed_by_the_next_write(tmp_path):
    """convlens before issue 9 staged beside the output under hidden names; the next write still removes them."""
    (tmp_path / ".out.k1ll3d_x").mkdir()  # names tempfile gives: 8 chars of [a-z0-9_]
    (tmp_path / ".out.k1ll3d_x" / "half.npy").write_bytes(b"half")
    (tmp_path / ".summary.abcd1234.json").write_text("{", encoding="utf-8")
    (tmp_path / ".out.keep").mkdir()  # not a temp name: left alone
    (tmp_path / ".block1.conv.k1ll3d_y").mkdir()  # a folder whose name has a dot, as a layer's may
    with staged_dir(tmp_path / "out") as tmp:
        write_json(tmp / "x.json", [1])
    with staged_dir(tmp_path / "block1.conv") as tmp:
        write_json(tmp / "x.json", [1])
    write_json(tmp_path / "summary.json", {})
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".convlens")) == [
        ".out.keep",
        "block1.conv",
        "out",
        "summary.json",
    ]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".convlens")]


STATES = {"o": "old", "n": "new", "-": None}


@pytest.mark.parametrize(
    ("kill_at", "states", "in_dvc_repo"),
    [
        ("save:1", "oooo", True),  # replace:1 and :2 are params.yaml and the record of conf/ (the override)
        ("replace:3", "-ooo", True),
        ("replace:5", "n-oo", True),
        ("replace:7", "nnno", True),
        ("replace:3", "-ooo", False),
    ],
    ids=["mid-array", "old-dir-moved-aside", "between-outputs", "before-last-file", "outside-a-dvc-repo"],
)
def test_sigkill_mid_write_leaves_each_output_old_new_or_absent_and_the_rerun_equals_a_clean_run(
    project, stage_config, tiny_assets, tmp_path, kill_at, states, in_dvc_repo
):
    """extract_weights writes, in order: weights/trained (staged), metrics/filters/trained (staged), the CSV,
    the JSON. Killed anywhere, each output is whole (old or new) or absent, nothing is left under outputs/
    (in a DVC repo the staging area is .dvc/tmp/convlens), and a rerun makes a clean run's bytes."""
    if in_dvc_repo:
        (project / ".dvc").mkdir()
    _good_weights(project, stage_config)
    old = weight_outputs(project)
    clean = copy_project(tmp_path / "clean")
    fetch_model.run(stage_config("fetch_model"), clean)
    extract_weights.run(stage_config("extract_weights", "weights.layers=[conv2d]"), clean)
    new = weight_outputs(clean)
    assert all(old[name] != new[name] for name in WEIGHT_OUTPUTS)
    args = ["weights.layers=[conv2d]"]

    killed = cli(project, "extract_weights", *args, env=kill_shim_env(kill_at))
    assert killed.returncode == -9, killed.stderr
    after = weight_outputs(project)
    versions = {"old": old, "new": new, None: dict.fromkeys(WEIGHT_OUTPUTS)}
    assert after == {name: versions[STATES[s]][name] for name, s in zip(WEIGHT_OUTPUTS, states, strict=True)}
    areas = staging_areas(project)
    assert areas and all(AREA.fullmatch(p.name) for p in areas)
    assert bool(hidden(project / "outputs")) is not in_dvc_repo

    rerun = cli(project, "extract_weights", *args)
    assert rerun.returncode == 0, rerun.stderr
    assert all(f"removing {area}, left by an interrupted run" in rerun.stdout for area in areas)
    assert weight_outputs(project) == new
    assert not hidden(project / "outputs") and not staging_areas(project)


def _write_both(outputs: Path) -> None:
    """A file and a dir (over an old one) written into ``outputs``, as a stage writes them."""
    (outputs / "out").mkdir(parents=True, exist_ok=True)
    (outputs / "out" / "a.npy").write_bytes(b"old")
    write_json(outputs / "summary.json", {"n": 1})
    with staged_dir(outputs / "out") as tmp:
        write_json(tmp / "x.json", [1])
        (tmp / "a.npy").write_bytes(b"new")


def test_outputs_behind_a_mount_point_that_a_rename_cannot_cross_are_staged_beside_them(tmp_path, monkeypatch):
    """Issue 28 §6: outputs/ bind-mounted from the same file system has the scratch dir's st_dev, yet a rename
    between them fails with EXDEV ("Invalid cross-device link"); the write moves its temp beside the output and
    renames it from there, so it is still atomic, and the folder's next outputs are staged there at once."""
    from convlens.pipeline import files

    monkeypatch.setattr(files, "_beside", set(), raising=False)  # this test's folders only
    (tmp_path / ".dvc").mkdir()
    scratch, outputs = tmp_path / SCRATCH, tmp_path / "outputs"
    real_replace, real_rename, crossed, renamed = os.replace, os.rename, [], []

    def across(src, dst) -> None:
        if Path(src).is_relative_to(scratch) != Path(dst).is_relative_to(scratch):
            crossed.append((src, dst))
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(src), None, str(dst))
        renamed.append((Path(src), Path(dst)))

    monkeypatch.setattr(os, "replace", lambda src, dst: (across(src, dst), real_replace(src, dst))[1])
    monkeypatch.setattr(os, "rename", lambda src, dst: (across(src, dst), real_rename(src, dst))[1])
    _write_both(outputs)
    assert snapshot(outputs) == {"out/a.npy": b"new", "out/x.json": b"[\n  1\n]\n", "summary.json": b'{\n  "n": 1\n}\n'}
    into_place = [src for src, dst in renamed if dst in (outputs / "summary.json", outputs / "out")]
    assert len(into_place) == 2 and all(AREA.fullmatch(src.parent.name) for src in into_place)
    assert all(src.parent.parent == outputs for src in into_place)  # renamed in from beside the output
    assert len(crossed) == 2  # the first file's rename; the old dir's move aside (the dir then went beside at once)
    assert not hidden(outputs) and not list(scratch.iterdir())
    crossed.clear()
    write_json(outputs / "summary.json", {"n": 2})
    assert not crossed and (outputs / "summary.json").read_text(encoding="utf-8") == '{\n  "n": 2\n}\n'


def test_outputs_on_a_real_bind_mount_are_written(tmp_path, monkeypatch):
    """The same with ``mount --bind`` (root in a container allowed to mount; skipped elsewhere)."""
    import subprocess

    from convlens.pipeline import files

    monkeypatch.setattr(files, "_beside", set(), raising=False)  # this test's folders only
    (tmp_path / ".dvc").mkdir()
    (tmp_path / "disk").mkdir()
    (tmp_path / "outputs").mkdir()
    done = subprocess.run(["mount", "--bind", tmp_path / "disk", tmp_path / "outputs"], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"mount --bind is not permitted here: {done.stderr.strip()}")
    try:
        assert os.stat(tmp_path / "outputs").st_dev == os.stat(tmp_path).st_dev  # scratch_dir sees one file system
        _write_both(tmp_path / "outputs")
        assert snapshot(tmp_path / "disk") == {
            "out/a.npy": b"new",
            "out/x.json": b"[\n  1\n]\n",
            "summary.json": b'{\n  "n": 1\n}\n',
        }
        assert not hidden(tmp_path / "outputs") and not list((tmp_path / SCRATCH).iterdir())
    finally:
        subprocess.run(["umount", tmp_path / "outputs"], check=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("channel,mean\n0,0.5\n1,abc\n", r"holds a cell that is not a number .*dvc repro --force"),
        ("channel,average\n0,0.5\n", r"has no column 'mean'; it is a pipeline output"),
        (b"channel,mean\n0,\xff\n", r"not a number"),
    ],
)
def test_a_hand_edited_table_is_one_error_naming_the_file(tmp_path, text, message):
    path = tmp_path / "untrained_conv2d_1.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConvlensError, match=message) as err:
        read_csv_columns(path, ["channel", "mean"])
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_table_reads_as_floats_with_empty_cells_nan_and_a_broken_json_is_one_error(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("channel,mean,extra\n0,0.5,x\n1,,y\n", encoding="utf-8")
    got = read_csv_columns(table, ["mean", "channel"])
    assert got.shape == (2, 2) and got[0].tolist() == [0.5, 0.0] and np.isnan(got[1, 0]) and got[1, 1] == 1.0
    with pytest.raises(ConvlensError, match="is missing"):
        read_csv_columns(tmp_path / "nope.csv", ["mean"])
    broken = tmp_path / "summary.json"
    broken.write_text('{"trained": ', encoding="utf-8")
    with pytest.raises(ConvlensError, match=r"summary.json is not valid JSON .*dvc repro --force"):
        read_json(broken)
