"""The README is a contract: its command blocks run, as written and in order, on tiny data.

Every ```bash block after the first runs in one bash session (a reader's terminal), in a fresh git + DVC copy of
the project (``tests.dvc_repo.make_repo``) whose baseline has been reproduced and committed, with ``.venv`` standing
for the venv ``make run`` made and no ``dvc`` on ``PATH`` until the README activates it. A ```console block's
``$`` commands run the same way and the lines it shows must appear in their output, in order. The first block
(``make run``, ``make test``) is left out: it installs from the network, then reruns this very suite; the fixture
does what ``make run`` does (``dvc repro``) instead (``reproduced_repo``, once per test run; the test gets a copy).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.dvc_repo import sh
from tests.helpers import PROJECT

pytestmark = pytest.mark.slow

README = PROJECT / "README.md"
FIRST_BLOCK = ["make run", "make test"]


def blocks(text: str) -> list[tuple[str, str]]:
    """The README's ```bash and ```console blocks, in order: ``(language, body)``."""
    return re.findall(r"^```(bash|console)\n(.*?)^```$", text, flags=re.M | re.S)


def commands(body: str) -> list[str]:
    """A block's commands without their comments (for checking which block is which)."""
    return [line.split("#")[0].strip() for line in body.splitlines() if line.split("#")[0].strip()]


def console_script(body: str, n: int, logs: Path) -> tuple[str, list[tuple[Path, list[str]]]]:
    """A console block as shell lines (each ``$`` command's output teed to a log) and the lines it shows."""
    script, expected = [], []
    for line in body.splitlines():
        if line.startswith("$ "):
            log = logs / f"console_{n}_{len(expected)}.log"
            script.append(f"{line[2:]} 2>&1 | tee {log}")
            expected.append((log, []))
        elif line.strip():
            expected[-1][1].append(line)
    return "\n".join(script), expected


def in_order(wanted: list[str], lines: list[str]) -> bool:
    found = iter(lines)
    return all(any(line.strip() == want.strip() for line in found) for want in wanted)


def bare_path() -> str:
    """``PATH`` without this venv or anything else that holds a ``dvc``: as a new terminal has it."""
    return os.pathsep.join(
        d for d in os.environ["PATH"].split(os.pathsep) if d and not (Path(d) / "dvc").exists() and d != sys.prefix
    )


def test_first_block_is_the_install_and_test_entry_points():
    first = blocks(README.read_text(encoding="utf-8"))[0]
    assert first[0] == "bash" and commands(first[1]) == FIRST_BLOCK


def test_every_readme_block_runs_as_written_in_order(tmp_path, good_repo):
    root, env = good_repo  # reproduced (what `make run` does once the venv exists) and committed
    (root / ".venv").symlink_to(sys.prefix, target_is_directory=True)  # the venv `make run` made
    with (root / ".git" / "info" / "exclude").open("a", encoding="utf-8") as exclude:
        exclude.write(".venv\n")
    assert sh(root, "git", "status", "--porcelain", env=env) == ""  # nothing left to commit

    logs = tmp_path / "logs"
    logs.mkdir()
    script, expected = ["set -eo pipefail"], []
    for n, (language, body) in enumerate(blocks(README.read_text(encoding="utf-8"))[1:], 1):
        script.append(f"echo '### README block {n}'")
        if language == "bash":
            script.append(body)
        else:
            lines, shown = console_script(body, n, logs)
            script.append(lines)
            expected += shown
    run_env = {**env, "PATH": bare_path()}
    run_env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)], cwd=root, env=run_env, capture_output=True, text=True, encoding="utf-8"
    )
    out = done.stdout + done.stderr
    last = out[out.rfind("### README block") :]
    assert done.returncode == 0, f"a README command failed (exit {done.returncode}); from its block on:\n{last}"
    assert "Traceback" not in out, out
    assert expected, "the README lost its console block"
    for log, wanted in expected:
        shown = log.read_text(encoding="utf-8").splitlines()
        assert in_order(wanted, shown), f"the README shows {wanted}, the command printed:\n" + "\n".join(shown)

    # The experiment table after every workflow: one row per run, the changed params, within 120 columns.
    table = subprocess.run(
        ["python", "-m", "convlens", "experiments"], cwd=root, env=env, capture_output=True, text=True, encoding="utf-8"
    )
    assert table.returncode == 0, table.stderr
    rows = table.stdout.splitlines()
    assert max(len(row) for row in rows) <= 120, table.stdout
    names = [row.split()[0] for row in rows if row.strip()]
    branch = subprocess.run(["git", "branch", "--show-current"], cwd=root, capture_output=True, text=True).stdout
    assert {branch.strip(), "one-layer", "four-images", "seed7", "seed8", "my-cnn"} <= set(names), table.stdout
    header = " ".join(rows[:3])
    for word in ("indices", "seed", "path", "map_mean"):
        assert word in header, table.stdout
    assert "models/my-cnn.keras" in table.stdout
