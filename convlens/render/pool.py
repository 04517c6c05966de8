"""Drawing independent figures on every usable CPU: a stage lists its figures as jobs (callables of no argument,
each writing its own file) and :func:`run_jobs` runs them in forked worker processes.

Forked after matplotlib is imported and the figures' language is set, so a worker starts at once, with the
parent's rcParams, fonts and figure words; the jobs are never pickled (closures are fine), only their index and
return value travel. A worker's exception is re-raised in the parent as itself (same type and message; its
traceback in ``__cause__``), so a stage's bad input is still its one ``error:`` line; the jobs not yet started are
cancelled and the running ones finish before it is raised, so no worker writes into a staged dir being removed.
One usable CPU, one job, or a system without ``os.sched_getaffinity`` and ``fork`` (not Linux): the jobs run here,
one after another, as a plain loop would.

A worker's figures and log records stay in the worker: a test that watches figures being made or saved in its own
process (a monkeypatched ``new_figure``, ``caplog``) makes the jobs run here with
``monkeypatch.setattr(pool, "usable_cpus", lambda: 1)``.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
Job = Callable[[], object]  # one figure (or a few) drawn and written; its result travels back (picklable)

# The jobs of the run in progress, read by the forked workers (inherited, never pickled).
_JOBS: Sequence[Job] = ()


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity: a container's or ``taskset``'s limit, not the machine's
    count); 1 where the system does not say (not Linux), which runs the jobs here."""
    if not hasattr(os, "sched_getaffinity") or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return len(os.sched_getaffinity(0))


def _run(index: int) -> object:
    return _JOBS[index]()


PR_SET_PDEATHSIG = 1  # prctl(2): the signal this process gets when its parent dies


def _die_with_parent(parent: int) -> None:
    """A worker's first act: have Linux SIGKILL it when the stage dies. A stage killed by a signal (SIGTERM,
    SIGKILL) runs no cleanup, and its workers would wait for jobs forever, holding its staging area open; killed
    too, they leave what a killed stage leaves (the area, removed by the next write)."""
    with contextlib.suppress(OSError, AttributeError):  # no prctl (not Linux): only a stage that exits ends them
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the stage died before the call above
        os._exit(1)


def run_jobs(jobs: Sequence[Callable[[], T]]) -> list[T]:
    """Run ``jobs`` in ``min(usable_cpus(), len(jobs))`` forked processes and return their results in job order
    (one process: here, in order). The first job in order that fails raises its exception here once the running
    jobs have ended and the others are cancelled: the error a plain loop would raise."""
    workers = min(usable_cpus(), len(jobs))
    if workers <= 1:
        return [job() for job in jobs]
    global _JOBS
    context = contextvars.copy_context()  # the figures' language (render.language.words) and any other context
    _JOBS = [lambda job=job: context.copy().run(job) for job in jobs]
    for stream in (sys.stdout, sys.stderr):  # else a worker would write the parent's buffered text again
        stream.flush()
    try:
        fork = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, fork, initializer=_die_with_parent, initargs=(os.getpid(),)) as pool:
            futures = [pool.submit(_run, i) for i in range(len(jobs))]
            try:
                return [future.result() for future in futures]
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    finally:
        _JOBS = ()
