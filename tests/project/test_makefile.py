"""The Makefile's targets as a user types them (make is one of the README's requirements)."""

from __future__ import annotations

import os
import subprocess

from tests.support.helpers import PROJECT


def make_dry(*args: str) -> subprocess.CompletedProcess:
    """``make -n ARGS`` in the project: what it would run, nothing run."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}  # under make test
    return subprocess.run(
        ["make", "--no-print-directory", "-n", *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
    )


def test_make_params_with_a_key_value_is_refused_naming_the_command_that_takes_it():
    """outside tester 6 F5: make took `render.dpi=70` as a make variable and composed conf/ without it."""
    done = make_dry("params", "render.dpi=70")
    assert done.returncode != 0
    assert "make params takes no KEY=VALUE (render.dpi=70): run .venv/bin/python -m convlens params render.dpi=70" in (
        done.stderr
    )
    plain = make_dry("params")
    assert plain.returncode == 0 and plain.stdout.splitlines()[-1] == ".venv/bin/python -m convlens params"
    assert make_dry("params", "TEST_JOBS=0").returncode == 0  # make's own variables stay make's
    group = make_dry("params", "model=train")  # outside tester 7 F1: a config group, silently make's before
    assert group.returncode != 0 and "make params takes no KEY=VALUE (model=train)" in group.stderr
