"""The README and the docs pages are a contract: their command blocks run, as written and in order, on tiny data
(``readme_run``, see ``tests/support/readme_run.py``: once per test run; a test that runs more commands gets a copy)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.readme_run import BLOCK, README, block_outputs, blocks, commands, in_order, run_blocks

pytestmark = [pytest.mark.slow, pytest.mark.readme]  # make test-all and CI; make test leaves them out

FIRST_BLOCK = ["make run", "make test-all"]


def test_first_block_is_the_install_and_test_entry_points():
    first = blocks(README.read_text(encoding="utf-8"))[0]
    assert first[0] == "bash" and commands(first[1]) == FIRST_BLOCK


def test_every_block_runs_as_written_in_order(readme_run):
    out = readme_run["output"]
    last = out[out.rfind(BLOCK) :]
    assert readme_run["returncode"] == 0, (
        f"a command of the pages failed (exit {readme_run['returncode']}); from its block on:\n{last}"
    )
    assert "Traceback" not in out, out
    assert readme_run["expected"], "the pages lost their console block"
    for log, wanted in readme_run["expected"]:
        shown = Path(log).read_text(encoding="utf-8").splitlines()
        assert in_order(wanted, shown), f"the page shows {wanted}, the command printed:\n" + "\n".join(shown)


def test_the_queued_sweep_waits_for_every_experiment(readme_run):
    """The wait loop of docs/experiments.md ends only when the queue is empty: the `dvc queue status` after it shows
    the sweep's 2 × 2 experiments, each a Success."""
    n = next(n for n, (_, _, body) in enumerate(run_blocks()) if "queue start" in body)
    printed = block_outputs(readme_run["output"])[n]
    status = [row for row in printed[printed.rindex("Task ") : printed.rindex("Worker status")].splitlines()[1:] if row]
    assert len(status) == 4 and all(row.split()[-1] == "Success" for row in status), printed


def test_the_experiment_table_fits_120_columns_with_every_run(readme_repo):
    """Every run of the pages in 120 columns; with the own-data page's runs too, some params no longer fit: the
    table names them, and ``--hide`` makes room for the others."""
    from convlens.cli.exp_table import DEFAULT_HIDDEN

    root, env = readme_repo

    def experiments(*args: str) -> list[str]:
        done = subprocess.run(
            ["python", "-m", "convlens", "experiments", *args],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            encoding="utf-8",
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    rows = experiments()
    assert max(len(row) for row in rows) <= 120, "\n".join(rows)
    names = [row.split()[0] for row in rows if row.strip()]
    branch = subprocess.run(["git", "branch", "--show-current"], cwd=root, capture_output=True, text=True).stdout
    assert {branch.strip(), "one-layer", "four-images", "seed7", "my-cnn", "my-cifar", "photos"} <= set(names)
    assert "path" in " ".join(rows[:3]) and "map_mean" in " ".join(rows[:3])
    assert "(too wide to show: " in "\n".join(rows)  # what did not fit is named, not dropped silently
    data = ("data.name", "data.path", "data.resize", "data.color")
    rows = experiments("--hide", ",".join([*DEFAULT_HIDDEN, *data]), "--metrics", "trained.conv2d.map_mean")
    assert max(len(row) for row in rows) <= 120, "\n".join(rows)
    header = " ".join(rows[:3])
    for word in ("indices", "seed", "path", "map_mean"):
        assert word in header, "\n".join(rows)
    assert "models/my-cnn.keras" in "\n".join(rows)
