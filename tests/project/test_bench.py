"""`make bench` (issue 25's table): what it measures and how, without running the benchmark (no timings here)."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import pytest
import yaml

from bench import __main__ as bench_main
from bench.dataset_pass import dataset_commands
from bench.expected import base, expected, in_yaml_order, missing_outputs, read_lock, upstream
from bench.measure import run_measured
from bench.pipeline import CHANGES, CHAPTER_STAGES, CHAPTER_TARGETS, EXP_RUN, REPRO, ran_stages, set_params

ALLOCATE = "b = bytearray({mb} * 2**20); b[::4096] = bytes(len(b[::4096])); import time; time.sleep(0.1)"


def test_a_small_child_of_a_large_parent_reports_its_own_peak_rss():
    """`ru_maxrss` of a forked child starts at its parent's: this process holds 300 MB more, the child reports ~10."""
    held = bytearray(300 * 2**20)
    held[::4096] = bytes(len(held[::4096]))
    run = run_measured([sys.executable, "-c", "pass"], Path.cwd(), os.environ)
    assert 0 < run.maxrss_mb < 100
    del held


def test_the_peak_rss_is_the_largest_process_of_the_tree():
    """A shell that starts a Python process allocating 150 MB: the tree's peak is the grandchild's."""
    child = f"{sys.executable} -c '{ALLOCATE.format(mb=150)}'"
    run = run_measured(["sh", "-c", f"{child}; true"], Path.cwd(), os.environ)
    assert 150 <= run.maxrss_mb < 250


def entry(cmd: str, deps: dict[str, str], outs: list[str], params: dict | None = None) -> dict:
    found = {"cmd": cmd, "deps": [{"path": p, "md5": h} for p, h in deps.items()], "outs": [{"path": o} for o in outs]}
    if params is not None:
        found["params"] = {"params.yaml": params}
    return found


LOCK = {
    "fetch": entry("python -m stages.fetch", {"stages/fetch.py": "a"}, ["outputs/data"], {"data": "x"}),
    "maps@conv2d": entry("python -m stages.maps conv2d", {"outputs/data": "d1"}, ["outputs/maps/conv2d"]),
    "draw": entry("python -m stages.draw", {"outputs/maps": "m1"}, ["outputs/figures"], {"render.cmap": "viridis"}),
    "other": entry("python -m stages.other", {"outputs/data": "d1"}, ["outputs/other"], {"other.k": 1}),
}
PARAMS = {"data": "x", "render": {"cmap": "viridis"}, "other": {"k": 1}}


def test_expected_is_nothing_when_nothing_changed():
    assert expected(LOCK, LOCK, PARAMS, set()) == set()


def test_expected_follows_changed_params_and_changed_dependency_hashes():
    after = {**LOCK, "draw": entry("python -m stages.draw", {"outputs/maps": "m1"}, ["outputs/figures"],
                                   {"render.cmap": "magma"})}  # fmt: skip
    assert expected(LOCK, after, {**PARAMS, "render": {"cmap": "magma"}}, set()) == {"draw"}
    after = {
        **LOCK,
        "other": entry("python -m stages.other", {"outputs/data": "d2"}, ["outputs/other"], {"other.k": 1}),
    }
    assert expected(LOCK, after, PARAMS, set()) == {"other"}


def test_expected_counts_new_instances_missing_outputs_and_stale_params():
    after = {**LOCK, "maps@pool": entry("python -m stages.maps pool", {"outputs/data": "d1"}, ["outputs/maps/pool"])}
    assert expected(LOCK, after, PARAMS, set()) == {"maps@pool"}
    assert expected(LOCK, LOCK, PARAMS, {"fetch", "maps@conv2d"}) == {"fetch", "maps@conv2d"}
    assert expected(LOCK, LOCK, {**PARAMS, "other": {"k": 2}}, set()) == {"other"}  # should have run, did not


def test_targets_limit_expected_to_their_upstream_closure(tmp_path):
    assert upstream(LOCK, ["draw"]) == {"draw", "maps@conv2d", "fetch"}
    assert upstream(LOCK, ["maps"]) == {"maps@conv2d", "fetch"}
    everything = set(LOCK)
    assert expected(LOCK, LOCK, PARAMS, everything, ["draw"]) == {"draw", "maps@conv2d", "fetch"}
    (tmp_path / "outputs" / "data").mkdir(parents=True)
    assert missing_outputs(tmp_path, LOCK) == {"maps@conv2d", "draw", "other"}


def test_stage_order_and_names_follow_dvc_yaml(tmp_path):
    (tmp_path / "dvc.yaml").write_text(
        yaml.safe_dump({"stages": {"fetch": {}, "maps": {}, "draw": {}}}, sort_keys=False), encoding="utf-8"
    )
    assert in_yaml_order({"draw", "maps@b", "maps@a", "fetch"}, tmp_path) == ["fetch", "maps@a", "maps@b", "draw"]
    assert base("render_maps@conv2d_1") == "render_maps" and base("report") == "report"
    assert ran_stages("Running stage 'a':\n> x\nStage 'b' didn't change, skipping\nRunning stage 'c@d':") == [
        "a",
        "c@d",
    ]


@pytest.mark.parametrize(
    ("stages", "found"),
    [
        (["dataset_stats", "evaluate", "report"], ["dataset_stats", "evaluate"]),  # before the restructure
        (["dataset@trained", "dataset@untrained", "metrics", "report"], ["dataset@trained", "dataset@untrained"]),
    ],
)
def test_the_dataset_pass_is_read_from_dvc_lock_before_and_after_the_restructure(tmp_path, stages, found):
    specs = {base(s): {"foreach": ["trained", "untrained"]} if "@" in s else {"cmd": s} for s in stages}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": specs}, sort_keys=False), encoding="utf-8")
    lock = {s: {"cmd": f"python -m stages.{base(s)} {s.partition('@')[2]}".strip()} for s in stages}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": lock}), encoding="utf-8")
    commands = dataset_commands(tmp_path)
    assert [s for s, _ in commands] == found
    assert all(cmd[0] == sys.executable for _, cmd in commands)


def test_the_chapter_targets_are_the_readmes_command_and_the_chapters_stages():
    assert " ".join(("dvc", "repro", *CHAPTER_TARGETS)) == "dvc repro render_figures render_maps"
    assert set(CHAPTER_TARGETS) <= set(CHAPTER_STAGES)


def test_each_change_is_the_issues_command(tmp_path):
    shown = {c.series: c.command() for c in CHANGES}
    assert shown["seed"] == (*EXP_RUN, "-S", "untrained.seed=7")
    assert shown["map_cmap"] == REPRO  # params.yaml edited, then `dvc repro`
    assert shown["add_layer"] == (*EXP_RUN, "-S", "feature_maps.layers=[conv2d,conv2d_1,max_pooling2d]")
    assert shown["samples"][-1] == f"samples.indices=[{','.join(map(str, range(100)))}]"
    assert {c.series: c for c in CHANGES}["samples"].shown() == "`dvc exp run -S 'samples.indices=[0,1,…,99]'`"
    (tmp_path / "params.yaml").write_text("render:\n  map_cmap: viridis\n  dpi: 100\n", encoding="utf-8")
    set_params(tmp_path, ("render.map_cmap=magma", "render.dpi=72"))
    assert yaml.safe_load((tmp_path / "params.yaml").read_text(encoding="utf-8")) == {
        "render": {"map_cmap": "magma", "dpi": 72}
    }


def test_quick_mode_is_one_run_into_a_temp_file():
    args = bench_main.parse_args(["--quick"])
    assert args.quick and args.out.name == "convlens-bench-quick.md" and args.out.parent != Path("bench")
    assert bench_main.parse_args([]).out == Path("bench/results.md")


def test_lock_entries_of_stages_dvc_yaml_no_longer_defines_are_left_out(tmp_path):
    """DVC keeps a removed stage's lock entry (and a stage's from before it became a ``foreach`` group)."""
    specs = {"fetch": {"cmd": "a"}, "maps": {"foreach": ["conv2d"], "do": {"cmd": "b ${item}"}}}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": specs}), encoding="utf-8")
    stale = {"fetch": {"cmd": "a"}, "maps@conv2d": {"cmd": "b conv2d"}, "maps": {"cmd": "b"}, "gone": {"cmd": "c"}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": stale}), encoding="utf-8")
    assert set(read_lock(tmp_path)) == {"fetch", "maps@conv2d"}


def test_the_report_has_every_row_of_the_issue_and_what_each_run_ran():
    """``build_rows`` and ``compose`` on made-up measurements (the numbers mean nothing; the layout does)."""
    from bench.explain import EXPLAIN
    from bench.measure import Run
    from bench.notes import compose
    from bench.pipeline import PipelineResults

    pipe = PipelineResults()
    pipe.notebook = [Run(10.0, 600.0, "imports 4.0s, work 5.0s")] * 3
    for series, wall in {"full": 25.0, "chapter": 20.0, "noop": 3.0, "seed": 20.0, "map_cmap": 5.0,
                         "filter_cmap": 6.0, "add_layer": 7.0, "samples": 60.0}.items():  # fmt: skip
        ran = [] if series == "noop" else ["report"]
        pipe.add(series, Run(wall, 300.0, "".join(f"Running stage '{s}':\n" for s in ran)), ran)
    pipe.report_mb = {"full": [1.0], "samples": [12.0]}
    pipe.chapter_closure = list(CHAPTER_STAGES)
    dataset = ([Run(12.0, 500.0, "")], [Run(10.0, 700.0, "")], ["dataset@trained", "dataset@untrained"])
    rows = bench_main.build_rows(pipe, dataset, {500: [200.0], 2_000: [210.0]})
    assert [r.key for r in rows] == [*map(str, range(1, 10)), "10 N=500", "10 N=2,000", "10 flat"]
    assert {r.key: r.met for r in rows}["9"] is False and {r.key: r.met for r in rows}["1"] is True
    text = compose(
        rows, pipe, dataset[2], "python -m bench --quick", True, "1 1 1", 60.0, EXPLAIN, {500: [200.0], 2_000: [210.0]}
    )
    assert "QUICK SMOKE RUN" in text and "`dvc repro render_figures render_maps`" in text
    assert "nothing changed, `dvc repro`: ran nothing (as expected)" in text
    assert "the chapter's stages, as the README names them" in text and "**9**" in text


def test_a_missed_row_says_whether_faster_stage_commands_could_meet_it():
    """DVC's own time (wall minus the stages standalone, an unmeasured instance estimated from its group) against
    the allowance: over it, no faster stage meets the row; under it, the stages' budget is named."""
    from bench.explain import EXPLAIN
    from bench.measure import Run, Stats
    from bench.notes import attribution, unmeasured_work
    from bench.pipeline import PipelineResults
    from bench.report import Row

    pipe = PipelineResults()
    pipe.notebook = [Run(10.0, 600.0, "")] * 3
    pipe.stages = {"maps@a": [Run(0.2, 50.0, "")], "maps@b": [Run(0.4, 50.0, "")], "report": [Run(0.5, 50.0, "")]}
    ran = ["maps@c", "report"]
    pipe.add("add_layer", Run(7.0, 300.0, "".join(f"Running stage '{s}':\n" for s in ran)), ran)
    pipe.add("filter_cmap", Run(3.0, 300.0, "Running stage 'report':\n"), ["report"])
    assert unmeasured_work(pipe, ran) == (0.4, ["maps@c"])  # the upper median of 0.2 and 0.4
    pipe.add("samples", Run(60.0, 300.0, "Running stage 'report':\n"), ["report"])
    assert attribution(pipe)["add_layer"] == pytest.approx((7.0, 0.9, 6.1))
    assert attribution(pipe)["samples"][0] == 60.0 and all(map(math.isnan, attribution(pipe)["samples"][1:]))

    ten = Stats((10.0,))
    over = EXPLAIN["6"](Row("6", "a layer", "≤ 0.5", Stats((7.0,)), ten, 0.5), pipe)
    assert "DVC's own time alone (maps@c estimated from the other instances of its group), 6.10 s, is more than " \
           "the 5.00 s allowed" in over  # fmt: skip
    under = EXPLAIN["5"](Row("5", "filter_cmap", "≤ 0.2", Stats((3.0,)), ten, 0.2), pipe)
    assert "DVC's own time alone, 2.50 s, is more than the 2.00 s allowed" in under
    met_by_faster = EXPLAIN["5"](Row("5", "filter_cmap", "≤ 0.28", Stats((3.0,)), ten, 0.28), pipe)
    assert "DVC's own time is 2.50 s, so the stage commands would have to take at most 0.30 s together, against " \
           "0.50 s now" in met_by_faster  # fmt: skip
