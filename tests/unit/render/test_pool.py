"""run_jobs: a stage's figures drawn in forked workers come back in job order, a worker's error is the stage's
error, and one CPU or one job runs here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextvars import ContextVar
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from convlens.errors import ConvlensError
from convlens.pipeline.files import staged_dir
from convlens.render import pool
from convlens.render.figures import histogram
from convlens.render.language import figure_language, words

forked = pytest.mark.skipif(pool.usable_cpus() < 2, reason="one usable CPU: run_jobs runs every job here")
CHOSEN: ContextVar[str] = ContextVar("chosen", default="unset")


def where(i: int) -> tuple[int, int]:
    return i, os.getpid()


def test_results_come_back_in_job_order_whichever_worker_ran_them():
    jobs = [lambda i=i: where(i) for i in range(9)]  # closures: never pickled
    results = pool.run_jobs(jobs)
    assert [i for i, _ in results] == list(range(9))
    if pool.usable_cpus() >= 2:
        assert os.getpid() not in {pid for _, pid in results}  # drawn in workers, not here


@forked
def test_a_workers_error_is_raised_here_as_itself_after_the_jobs_before_it():
    done = []
    jobs = [lambda: done.append(1), lambda: fail("render.dpi=0 must be above 0; raise it"), lambda: fail("later")]
    with pytest.raises(ConvlensError) as raised:
        pool.run_jobs(jobs)
    assert type(raised.value) is ConvlensError and str(raised.value) == "render.dpi=0 must be above 0; raise it"
    assert not done  # the first job ran in a worker: nothing of it here
    with pytest.raises(ZeroDivisionError, match="division by zero"):
        pool.run_jobs([lambda: 1, lambda: 1 / 0])


@pytest.mark.parametrize("cpus", [1, 2])
def test_one_cpu_or_one_job_runs_here_in_order(monkeypatch, cpus):
    monkeypatch.setattr(pool, "usable_cpus", lambda: cpus)
    done = []
    jobs = [lambda i=i: done.append(i) or where(i) for i in range(3 if cpus == 1 else 1)]
    results = pool.run_jobs(jobs)
    assert done == [i for i, _ in results] and {pid for _, pid in results} == {os.getpid()}  # here: seen here
    assert pool.run_jobs([]) == []


def fail(message: str) -> None:
    raise ConvlensError(message)


def test_one_cpu_raises_the_first_error_and_runs_no_later_job(monkeypatch):
    monkeypatch.setattr(pool, "usable_cpus", lambda: 1)
    done = []
    with pytest.raises(ConvlensError, match="bad"):
        pool.run_jobs([lambda: done.append(0), lambda: fail("bad"), done.clear])
    assert done == [0]


def test_a_failed_job_in_a_worker_leaves_no_staged_folder_behind(tmp_path: Path):
    """The stages' pattern: jobs writing into a staged dir; one fails, so the folder never appears, even though the
    other jobs wrote their files (and no worker writes into it after it is removed: none is left running)."""
    target = tmp_path / "figures"

    def write(name: str, out: Path) -> None:
        (out / name).write_text(name, encoding="utf-8")

    with pytest.raises(ConvlensError, match="render.dpi"), staged_dir(target) as out:
        pool.run_jobs([partial(write, "a", out), lambda: fail("render.dpi is too high"), partial(write, "c", out)])
    assert not target.exists() and not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no staging area, no temp file


def test_usable_cpus_is_this_processs_affinity():
    cpus = pool.usable_cpus()
    assert cpus >= 1
    if hasattr(os, "sched_getaffinity"):
        assert cpus == len(os.sched_getaffinity(0))


@forked
def test_workers_see_the_figures_language_and_context_set_here():
    token = CHOSEN.set("set here")
    try:
        with figure_language("ko"):
            results = pool.run_jobs([lambda: (words().language, CHOSEN.get())] * 2)
    finally:
        CHOSEN.reset(token)
    assert results == [("ko", "set here")] * 2


def test_figures_drawn_in_workers_are_the_bytes_drawn_here(tmp_path: Path, monkeypatch):
    values = np.random.default_rng(0).normal(size=(3, 3, 1, 8))

    def jobs(out: Path) -> list:
        out.mkdir()
        return [lambda i=i: histogram({"trained": values * i}, out / f"{i}.png", 10, f"h{i}", 40) for i in (1, 2, 3)]

    pool.run_jobs(jobs(tmp_path / "pool"))
    monkeypatch.setattr(pool, "usable_cpus", lambda: 1)
    pool.run_jobs(jobs(tmp_path / "here"))
    for i in (1, 2, 3):
        assert (tmp_path / "pool" / f"{i}.png").read_bytes() == (tmp_path / "here" / f"{i}.png").read_bytes()


def gone(pid: int) -> bool:
    """No such process, or a zombie left for init to reap."""
    try:
        return Path(f"/proc/{pid}/stat").read_text(encoding="ascii").split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@forked
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="no /proc to watch the workers in")
def test_workers_die_with_a_stage_killed_by_a_signal(tmp_path: Path):
    """A stage killed by SIGTERM runs no cleanup: its workers, blocked on a job, must not outlive it (holding its
    staging area, waiting for jobs forever)."""
    script = (
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from convlens.render.pool import run_jobs\n"
        "def job():\n"
        f"    Path({str(tmp_path)!r}, str(os.getpid())).touch()\n"
        "    time.sleep(120)\n"
        "run_jobs([job, job])\n"
    )
    stage = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.iterdir())) < 2 and time.monotonic() < deadline and stage.poll() is None:
            time.sleep(0.05)
        workers = [int(p.name) for p in tmp_path.iterdir()]
        assert len(workers) == 2 and stage.poll() is None
        stage.terminate()
        assert stage.wait(60) == -signal.SIGTERM
        deadline = time.monotonic() + 60
        while not all(gone(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(gone(pid) for pid in workers)
    finally:
        stage.kill()
