"""`make mutate SAMPLE=K`: the seeded per-module sample of the mutants mutmut has not run (bench/mutation_sample.py)."""

from __future__ import annotations

import io

import pytest

from bench import mutation_sample


def results(counts: dict[str, int], status: str = "not checked") -> list[str]:
    """``mutmut results --all true`` lines: ``counts[module]`` mutants of one function in each module."""
    return [f"    convlens.{m}.x_f__mutmut_{i}: {status}" for m, n in counts.items() for i in range(1, n + 1)]


def test_each_module_gives_one_in_k_rounded_up_and_the_same_draw_every_time():
    lines = results({"layers": 25, "cli.compare": 3, "stats": 1})
    drawn = mutation_sample.sample(mutation_sample.not_run(lines), 10)
    by_module = {m: [d for d in drawn if d.startswith(f"convlens.{m}.x_")] for m in ("layers", "cli.compare", "stats")}
    assert {m: len(d) for m, d in by_module.items()} == {"layers": 3, "cli.compare": 1, "stats": 1}
    assert drawn == sorted(drawn) and len(set(drawn)) == 5
    assert drawn == mutation_sample.sample(mutation_sample.not_run(reversed(lines)), 10)
    every = sorted(line.split(": ")[0].strip() for line in lines)
    assert mutation_sample.sample(mutation_sample.not_run(lines), 1) == every


def test_only_mutants_not_run_yet_of_the_modules_asked_for_are_drawn():
    lines = results({"ops": 4}, "killed") + results({"ops": 2}, "survived") + results({"ops": 3, "pages": 2})
    assert mutation_sample.not_run(lines) == {
        "ops": [f"convlens.ops.x_f__mutmut_{i}" for i in (1, 2, 3)],
        "pages": ["convlens.pages.x_f__mutmut_1", "convlens.pages.x_f__mutmut_2"],
    }
    assert list(mutation_sample.not_run(lines, ["pages"])) == ["pages"]
    assert mutation_sample.module_of("convlens.files.xǁStagedǁcommit__mutmut_7") == "files"


def test_bad_k_and_nothing_left_are_one_error_line_each(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(results({"ops": 2}, "killed"))))
    assert mutation_sample.main(["4"]) == 1
    assert capsys.readouterr().err.startswith("mutation_sample: error: no mutant left to run (or no mutants/ yet)")
    assert mutation_sample.main(["0"]) == 2
    assert capsys.readouterr().err == (
        "mutation_sample: error: the sample is one in K mutants, so K must be at least 1, not 0\n"
    )
    with pytest.raises(ValueError, match="at least 1"):
        mutation_sample.sample({"ops": ["a"]}, -1)
