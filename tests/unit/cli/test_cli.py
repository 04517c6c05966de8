"""``python -m convlens``: each command by name; anything else is one message listing them."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil

import pytest
import yaml

import convlens.__main__ as cli
from tests.support.dvc_repo import commit, dvc, repo_env, sh
from tests.support.helpers import PROJECT
from tests.support.report_pages import Page


@pytest.mark.parametrize(
    ("argv", "said"),
    [([], ""), (["-h"], ""), (["bogus", "x"], "unknown command 'bogus'; ")],
)
def test_anything_but_a_command_lists_the_commands(argv, said):
    with pytest.raises(SystemExit) as exit:
        cli.main(argv)
    listed = "compare, docs-config, experiments, params, tidy"
    assert exit.value.code == f"convlens: {said}choose one of: {listed}\n{cli.__doc__}"


def test_a_command_gets_the_arguments_after_its_name(tmp_path, monkeypatch, capsys):
    shutil.copytree(PROJECT / "conf", tmp_path / "conf")
    shutil.copy(PROJECT / "dvc.yaml", tmp_path)
    monkeypatch.chdir(tmp_path)
    cli.main(["params", "untrained.seed=7"])
    assert capsys.readouterr().out == "params: wrote params.yaml\n"
    assert yaml.safe_load((tmp_path / "params.yaml").read_text(encoding="utf-8"))["untrained"]["seed"] == 7


def png(shade: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (4, 4), shade).save(out, format="PNG")
    return out.getvalue()


def reproduced(root) -> None:
    """``dvc.lock`` records the workspace as it is, as after a ``dvc repro``: compare takes only such a workspace."""
    dvc(root, repo_env(), "commit", "-f", "-q")


@pytest.fixture
def two_runs(tmp_path, monkeypatch):
    """A git + DVC repository: a commit, then a workspace whose metrics, params and one figure changed."""
    root, env = tmp_path / "r", repo_env()
    (root / "conf").mkdir(parents=True)
    (root / "dvc.yaml").write_text(
        "stages:\n  weights:\n    cmd: 'true'\n    params: [untrained.seed]\n"
        "    metrics:\n      - outputs/metrics/w.json:\n          cache: false\n",
        encoding="utf-8",
    )
    figures = root / "outputs" / "figures" / "weights"
    figures.mkdir(parents=True)

    def write(seed: int, std: float, shade: int, language: str = "en") -> None:
        params = {"untrained": {"seed": seed}, "report": {"language": language}}
        (root / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
        metrics = {"untrained": {"conv2d": {"mean": -0.0144, "std": std}}, "trained": {"accuracy": 0.9}}
        (root / "outputs" / "metrics").mkdir(exist_ok=True)
        (root / "outputs" / "metrics" / "w.json").write_text(json.dumps(metrics), encoding="utf-8")
        (figures / "kept.png").write_bytes(png(0))
        (figures / "filters.png").write_bytes(png(shade))

    write(42, 0.2, 10)
    sh(root, "git", "init", "-q", "-b", "main", env=env)
    dvc(root, env, "init", "-q")
    reproduced(root)
    commit(root, env, "first run")
    write(7, 0.3, 200, "ko")
    reproduced(root)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(root)
    return root


def test_compare_writes_the_table_chart_and_page_of_two_runs(two_runs, capsys):
    cli.main(["compare", "HEAD"])
    out = two_runs / "outputs" / "compare"
    assert capsys.readouterr().out == (
        "compare: HEAD → workspace: 1 of 3 statistics in both runs changed; wrote HEAD_vs_workspace.csv, .png, "
        ".html and "
        f"HEAD_vs_workspace_files/ in {out}\n"
    )
    rows = list(csv.DictReader((out / "HEAD_vs_workspace.csv").open(encoding="utf-8", newline="")))
    by_key = {(r["model"], r["layer"], r["statistic"]): (r["a"], r["b"]) for r in rows}
    assert by_key == {
        ("trained", "(model)", "accuracy"): ("0.9", "0.9"),
        ("untrained", "conv2d", "mean"): ("-0.0144", "-0.0144"),
        ("untrained", "conv2d", "std"): ("0.2", "0.3"),
    }
    assert (out / "HEAD_vs_workspace.png").read_bytes().startswith(b"\x89PNG")
    page = (out / "HEAD_vs_workspace.html").read_text(encoding="utf-8")
    assert "untrained.seed" in page and 'lang="ko"' in page  # the workspace's params.yaml picks the language
    assert "weights/filters.png" in page and "kept.png" not in page  # the figures that differ, side by side
    cli.main(["compare", "HEAD", "workspace", "--out", "elsewhere", "--language", "en"])
    assert 'lang="en"' in (two_runs / "elsewhere" / "HEAD_vs_workspace.html").read_text(encoding="utf-8")
    assert sorted(p.name for p in (two_runs / "elsewhere").iterdir()) == [
        "HEAD_vs_workspace.csv",
        "HEAD_vs_workspace.html",
        "HEAD_vs_workspace.png",
        "HEAD_vs_workspace_files",  # the figures the page shows, as files: the page holds no image bytes
    ]
    files = two_runs / "elsewhere" / "HEAD_vs_workspace_files"
    page = (two_runs / "elsewhere" / "HEAD_vs_workspace.html").read_text(encoding="utf-8")
    shown = re.findall(r'src="([^"]+)"', page)
    assert shown and all(s.startswith("HEAD_vs_workspace_files/") for s in shown) and "data:image" not in page
    assert all((files.parent / s).is_file() for s in shown)


def test_compare_counts_statistics_of_one_run_only_apart_from_changes(two_runs, capsys):
    """The workspace streamed a layer HEAD did not: its statistics are listed as one run's, never as changes."""
    path = two_runs / "outputs" / "metrics" / "w.json"
    metrics = json.loads(path.read_text(encoding="utf-8"))
    metrics["untrained"]["dw"] = {"mean": 0.5, "std": 0.1}
    path.write_text(json.dumps(metrics), encoding="utf-8")
    reproduced(two_runs)
    cli.main(["compare", "HEAD", "--language", "en"])
    said = capsys.readouterr().out
    assert said.startswith("compare: HEAD → workspace: 1 of 3 statistics in both runs changed; 2 in one run only")
    page = Page((two_runs / "outputs" / "compare" / "HEAD_vs_workspace.html").read_text(encoding="utf-8"))
    assert "1 of 3 statistics in both runs changed (relative change, bars clipped at ±100 %)." in page.text
    assert (
        "2 statistics are in one run only, so not changes (the CSV has them): in HEAD only: –; "
        "in workspace only: untrained/dw (2)." in page.notes
    )


def gif(shades: tuple[int, ...]) -> bytes:
    """An animated GIF, one 4×4 frame per shade: a film's figure."""
    from PIL import Image

    out = io.BytesIO()
    frames = [Image.new("L", (4, 4), shade) for shade in shades]
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def test_compare_shows_the_films_gifs_that_differ_beside_the_pngs(two_runs, capsys):
    """The film's GIFs (outputs/figures/film) are figures too: one that differs is shown as the GIF itself, A
    beside B, from git for HEAD and from disk for the workspace; one of the same bytes is counted as equal."""
    film = two_runs / "outputs" / "figures" / "film"
    film.mkdir()
    (film / "conv2d_filters.gif").write_bytes(gif((0, 90)))
    (film / "conv2d_maps_0.gif").write_bytes(gif((5, 50)))
    commit(two_runs, repo_env(), "a film")
    (film / "conv2d_filters.gif").write_bytes(gif((0, 160, 250)))
    cli.main(["compare", "HEAD", "--language", "en"])
    capsys.readouterr()
    out = two_runs / "outputs" / "compare"
    page = Page((out / "HEAD_vs_workspace.html").read_text(encoding="utf-8"))
    gifs = [src for src in page.images if src.endswith(".gif")]
    assert gifs == [
        "HEAD_vs_workspace_files/figures/a/film/conv2d_filters.gif",
        "HEAD_vs_workspace_files/figures/b/film/conv2d_filters.gif",
    ]
    assert (out / gifs[0]).read_bytes() == gif((0, 90)) and (out / gifs[1]).read_bytes() == gif((0, 160, 250))
    assert "film/conv2d_filters.gif: left HEAD, right workspace." in page.text
    assert not any("conv2d_maps_0" in src for src in page.images)  # the same bytes in both runs


def test_compare_labels_dvclives_training_metrics_as_the_trained_models(two_runs, capsys):
    """Two training runs: DVCLive's last epoch (val_accuracy first) is the trained model's training, in the CSV,
    the page and the chart; its per-layer kernel statistics are that model's layers, not models."""
    dvc_yaml = two_runs / "dvc.yaml"
    dvc_yaml.write_text(
        dvc_yaml.read_text(encoding="utf-8") + "      - outputs/train/live/metrics.json:\n          cache: false\n",
        encoding="utf-8",
    )
    live = two_runs / "outputs" / "train" / "live"
    live.mkdir(parents=True)

    def trained(val_accuracy: float, kernel_std: float) -> None:
        metrics = {"loss": 0.3, "accuracy": 0.89, "val_loss": 0.35, "val_accuracy": val_accuracy, "step": 3}
        metrics |= {"conv2d": {"kernel_mean": -0.02, "kernel_std": kernel_std}}
        (live / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")

    trained(0.9, 0.2)
    commit(two_runs, repo_env(), "a training run")
    trained(0.92, 0.25)
    reproduced(two_runs)
    cli.main(["compare", "HEAD", "--language", "en"])
    said = capsys.readouterr().out
    assert said.startswith("compare: HEAD → workspace: 2 of 10 statistics in both runs changed;")
    out = two_runs / "outputs" / "compare"
    rows = list(csv.DictReader((out / "HEAD_vs_workspace.csv").open(encoding="utf-8", newline="")))
    by_key = {(r["model"], r["layer"], r["statistic"]): (r["a"], r["b"]) for r in rows}
    assert by_key[("trained", "(training)", "val_accuracy")] == ("0.9", "0.92")
    assert by_key[("trained", "(training)", "loss")] == ("0.3", "0.3")
    assert by_key[("trained", "conv2d (training)", "kernel_std")] == ("0.2", "0.25")
    assert {r["model"] for r in rows} == {"trained", "untrained"}  # no model called conv2d
    assert by_key[("trained", "(training)", "step")] == ("3.0", "3.0")  # the epoch kept
    page = Page((out / "HEAD_vs_workspace.html").read_text(encoding="utf-8"))
    assert "val_accuracy" in page.text and "conv2d (training)" in page.text


def test_compare_names_a_run_it_cannot_find_or_read(two_runs, capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(["compare", "nosuch"])
    assert exit.value.code == 1
    assert capsys.readouterr().err == (
        "compare: error: unknown Git revision 'nosuch'; "
        "name a git revision, an experiment (dvc exp show) or workspace\n"
    )
    (two_runs / "outputs" / "metrics" / "w.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(SystemExit):
        cli.main(["compare", "HEAD"])
    assert capsys.readouterr().err.startswith(
        "compare: error: workspace has no readable metrics (outputs/metrics/w.json); run dvc repro first"
    )
    assert not (two_runs / "outputs" / "compare").exists()


def test_compare_gives_runs_whose_names_become_one_file_name_files_of_their_own(two_runs, capsys):
    """Outside tester: branches ``r#1`` and ``r_1`` both wrote ``r_1_vs_workspace.*``, the second over the first.
    Now a name that is not a file name's (``#``, ``/``) gets a digest of the runs' names; one that is stays as it is."""
    from convlens.cli.compare import output_stem

    env = repo_env()
    sh(two_runs, "git", "branch", "r#1", env=env)
    (two_runs / "outputs" / "metrics" / "w.json").write_text(
        json.dumps({"untrained": {"conv2d": {"mean": 0.1, "std": 0.25}}}), encoding="utf-8"
    )
    commit(two_runs, env, "another run")
    sh(two_runs, "git", "branch", "r_1", env=env)
    reproduced(two_runs)
    cli.main(["compare", "r#1", "--language", "en"])
    cli.main(["compare", "r_1", "--language", "en"])
    capsys.readouterr()
    out = two_runs / "outputs" / "compare"
    hashed = output_stem("r#1", "workspace")
    for stem, std in ((hashed, "0.2"), ("r_1_vs_workspace", "0.25")):
        rows = list(csv.DictReader((out / f"{stem}.csv").open(encoding="utf-8", newline="")))
        assert {r["a"] for r in rows if r["statistic"] == "std"} == {std}  # each its own run's numbers
        assert (out / f"{stem}.html").is_file() and (out / f"{stem}_files").is_dir()
    assert hashed.startswith("r_1_vs_workspace-") and len(hashed) == len("r_1_vs_workspace-") + 8
    names = [("HEAD", "seed7"), ("실험", "workspace"), ("r#1", "x"), ("r_1", "x"), ("exp/lr", "x"), ("exp_lr", "x")]
    names += [("x_vs_y", "z"), ("x", "y_vs_z")]  # one name, two comparisons, without the digest
    stems = [output_stem(a, b) for a, b in names]
    assert len(set(stems)) == len(stems) and stems == [output_stem(a, b) for a, b in names]  # distinct and stable
    assert stems[:2] == ["HEAD_vs_seed7", "실험_vs_workspace"] and stems[3] == "r_1_vs_x" and stems[5] == "exp_lr_vs_x"


def test_compare_says_what_it_does_and_a_run_without_params_has_none(two_runs, capsys):
    from convlens.cli import compare

    with pytest.raises(SystemExit):
        cli.main(["compare", "-h"])
    assert "Compare two runs' per-layer statistics: ``python -m convlens compare A [B]``." in capsys.readouterr().out
    (two_runs / "params.yaml").unlink()
    assert compare.run_params(two_runs, "workspace") == {}
    assert compare.run_params(two_runs, "HEAD")["untrained"] == {"seed": 42}


def test_experiments_shows_each_run_with_the_params_that_differ(two_runs, capsys):
    cli.main(["experiments", "--metrics", "untrained.conv2d.std,trained.accuracy", "--hide", "report.language"])
    assert capsys.readouterr().out == (
        "            untrained\n"
        "               conv2d   trained\n"
        "experiment        std  accuracy\n"
        "main              0.2       0.9\n"
    )
    with pytest.raises(SystemExit):
        cli.main(["experiments", "-h"])
    usage = " ".join(capsys.readouterr().out.split())
    assert "--hide HIDE params never shown (default: " in usage and "--width WIDTH the most columns" in usage


def test_experiments_says_why_dvc_gave_no_table(two_runs, monkeypatch, capsys):
    import subprocess

    from convlens.cli import experiments

    shutil.rmtree(two_runs / ".git")
    with pytest.raises(SystemExit) as exit:
        cli.main(["experiments"])
    assert exit.value.code == 1
    assert capsys.readouterr().err.startswith("experiments: error: dvc exp show failed: ERROR: ")
    said = subprocess.CompletedProcess([], 0, stdout="nope", stderr="")
    monkeypatch.setattr(experiments.subprocess, "run", lambda *a, **k: said)
    with pytest.raises(SystemExit):
        cli.main(["experiments"])
    assert capsys.readouterr().err == (
        "experiments: error: dvc exp show --json printed no JSON (Expecting value: line 1 column 1 (char 0))\n"
    )


@pytest.mark.parametrize(
    ("env", "branch_shown"),
    [
        ({"PYTHONIOENCODING": "ascii"}, "??"),
        # stdout ascii with surrogateescape: DVC decoded git's UTF-8 bytes under C too, and they pass through as bytes
        ({"LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}, "실험"),
    ],
    ids=["PYTHONIOENCODING=ascii", "LC_ALL=C"],
)
def test_commands_print_what_an_ascii_stdout_cannot_hold_as_question_marks(two_runs, capsys, env, branch_shown):
    """Issue 28 §6: a character stdout cannot encode (a Korean branch name, compare's →) is printed as ``?``."""
    from tests.support.helpers import cli as run

    sh(two_runs, "git", "branch", "-m", "실험", env=repo_env())
    metrics = ("--metrics", "untrained.conv2d.std,trained.accuracy", "--hide", "report.language")
    cli.main(["experiments", *metrics])
    table = capsys.readouterr().out
    assert "실험" in table
    done = run(two_runs, "experiments", *metrics, env=env)
    assert done.returncode == 0 and done.stdout.splitlines()[:3] == table.splitlines()[:3]
    assert done.stdout.splitlines()[3].split() == [branch_shown, "0.2", "0.9"]
    done = run(two_runs, "compare", "HEAD", env=env)
    out = two_runs / "outputs" / "compare"
    assert (done.returncode, done.stdout) == (
        0,
        "compare: HEAD ? workspace: 1 of 3 statistics in both runs changed; wrote HEAD_vs_workspace.csv, .png, "
        ".html and "
        f"HEAD_vs_workspace_files/ in {out}\n",
    )


def test_only_a_strict_stream_in_another_encoding_than_utf_8_can_fail_to_print():
    from convlens.cli import can_fail

    def stream(encoding, errors="strict"):
        return io.TextIOWrapper(io.BytesIO(), encoding=encoding, errors=errors)

    assert can_fail(stream("ascii")) and can_fail(stream("latin-1", "surrogateescape"))
    assert not can_fail(stream("utf-8")) and not can_fail(stream("UTF8"))
    assert not can_fail(stream("ascii", "replace")) and not can_fail(io.StringIO())


@pytest.fixture
def applied(tmp_path, monkeypatch):
    """A git + DVC repository whose commit ``three`` looks at three layers and HEAD at two, and a workspace where
    ``three``'s outputs were applied over HEAD's as ``dvc exp apply three`` leaves them: its files written, HEAD's
    git-tracked table of a layer ``three`` lacks (``pool``) kept, a DVC-ignored output beside them."""
    root, env = tmp_path / "r", repo_env()
    (root / "conf").mkdir(parents=True)
    (root / "dvc.yaml").write_text("stages: {}\n", encoding="utf-8")
    tables = root / "outputs" / "metrics" / "channels"

    def tables_of(*layers: str) -> None:
        shutil.rmtree(tables, ignore_errors=True)
        for layer in layers:
            (tables / layer).mkdir(parents=True)
            (tables / layer / "trained.csv").write_text(f"channel,{layer}\n", encoding="utf-8")

    sh(root, "git", "init", "-q", "-b", "main", env=env)
    dvc(root, env, "init", "-q")
    (root / "outputs" / ".gitignore").parent.mkdir(parents=True, exist_ok=True)
    (root / "outputs" / ".gitignore").write_text("/maps\n", encoding="utf-8")
    tables_of("conv2d", "conv2d_1", "conv2d_2")
    commit(root, env, "three layers")
    sh(root, "git", "tag", "three", env=env)
    tables_of("conv2d", "pool")
    commit(root, env, "two layers, one of them pool")
    tables_of("conv2d", "conv2d_1", "conv2d_2", "pool")  # three's applied; pool's table left from HEAD
    (root / "outputs" / "maps").mkdir()
    (root / "outputs" / "maps" / "ignored.npy").write_bytes(b"dvc's")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(root)
    return root


def test_tidy_deletes_exactly_the_files_under_outputs_the_applied_run_lacks(applied, capsys):
    cli.main(["tidy", "--dry-run", "three"])
    assert capsys.readouterr().out.splitlines() == [
        "would delete outputs/metrics/channels/pool/trained.csv",
        "tidy: 1 file(s) three lacks found under outputs/",
    ]
    assert (applied / "outputs" / "metrics" / "channels" / "pool" / "trained.csv").is_file()  # a dry run
    cli.main(["tidy", "three"])
    assert capsys.readouterr().out.endswith("tidy: 1 file(s) three lacks deleted under outputs/\n")
    assert not (applied / "outputs" / "metrics" / "channels" / "pool").exists()  # its folder too, once empty
    left = sorted(p.relative_to(applied).as_posix() for p in (applied / "outputs").rglob("*") if p.is_file())
    assert left == [
        "outputs/.gitignore",
        "outputs/maps/ignored.npy",  # ignored by git (a DVC output): never touched
        *(f"outputs/metrics/channels/{layer}/trained.csv" for layer in ("conv2d", "conv2d_1", "conv2d_2")),
    ]


def test_tidy_after_applying_head_deletes_the_untracked_files_another_run_left(applied, capsys):
    cli.main(["tidy"])  # HEAD: conv2d and pool; conv2d_1's and conv2d_2's tables are another run's, untracked
    deleted = capsys.readouterr().out.splitlines()[:-1]
    assert deleted == [f"deleted outputs/metrics/channels/{layer}/trained.csv" for layer in ("conv2d_1", "conv2d_2")]


def test_tidy_deletes_what_another_runs_gitignore_hid_in_one_pass(applied, capsys):
    """outside tester 5: a training run's outputs/train/.gitignore, which HEAD lacks, hid files DVC never cached (a
    stage run by hand); deleting it shows them, and the same tidy deletes them too."""
    train = applied / "outputs" / "train"
    train.mkdir()
    (train / ".gitignore").write_text("/model.keras\n/snapshots\n", encoding="utf-8")
    (train / "model.keras").write_bytes(b"by hand")
    (train / "snapshots").mkdir()
    (train / "snapshots" / "conv2d_kernels.npy").write_bytes(b"by hand")
    cli.main(["tidy", "--dry-run"])
    dry = capsys.readouterr().out.splitlines()
    assert "would delete outputs/train/.gitignore" in dry and "would delete outputs/train/model.keras" not in dry
    assert "tidy: deleting those .gitignore files shows the files they hid, which tidy then deletes too" in dry
    cli.main(["tidy"])
    deleted = capsys.readouterr().out.splitlines()
    assert "deleted outputs/train/.gitignore" in deleted and "deleted outputs/train/model.keras" in deleted
    assert "deleted outputs/train/snapshots/conv2d_kernels.npy" in deleted
    assert not train.exists()


def test_tidy_names_a_revision_it_cannot_find_and_deletes_nothing(applied, capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(["tidy", "no-such-run"])
    assert str(exit.value.code).startswith("tidy: error: ") and "no-such-run" in str(exit.value.code)
    assert "name a git revision or an experiment (dvc exp show)" in str(exit.value.code)
    assert (applied / "outputs" / "metrics" / "channels" / "pool" / "trained.csv").is_file()
