"""The README's command blocks as one shell script, run in a reproduced copy of the project (``readme_run``).

Every ```bash block after the first runs in one bash session (a reader's terminal), in a fresh git + DVC copy of
the project (``tests.dvc_repo.make_repo``) whose baseline has been reproduced and committed, with ``.venv`` standing
for the venv ``make run`` made and no ``dvc`` on ``PATH`` until the README activates it. A ```console block's
``$`` commands run the same way and the lines it shows must appear in their output, in order. The first block
(``make run``, ``make test-all``) is left out: it installs from the network, then reruns this very suite; the fixture
does what ``make run`` does (``dvc repro``) instead.

The run happens once per test run: ``tests/test_readme.py`` checks that every command succeeded and printed what
the README shows, ``tests/test_experiments.py`` checks what its experiments recorded, each in a copy.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.dvc_repo import copy_repo, sh
from tests.helpers import PROJECT

README = PROJECT / "README.md"
BLOCK = "### README block"
RAN = "Ran experiment(s): "


def blocks(text: str) -> list[tuple[str, str]]:
    """The README's ```bash and ```console blocks, in order: ``(language, body)``."""
    return re.findall(r"^```(bash|console)\n(.*?)^```$", text, flags=re.M | re.S)


def commands(body: str) -> list[str]:
    """A block's commands without their comments (for checking which block is which)."""
    return [line.split("#")[0].strip() for line in body.splitlines() if line.split("#")[0].strip()]


def console_script(body: str, n: int, logs: Path) -> tuple[str, list[tuple[str, list[str]]]]:
    """A console block as shell lines (each ``$`` command's output teed to a log) and the lines it shows."""
    script, expected = [], []
    for line in body.splitlines():
        if line.startswith("$ "):
            log = logs / f"console_{n}_{len(expected)}.log"
            script.append(f"{line[2:]} 2>&1 | tee {log}")
            expected.append((str(log), []))
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


def run_readme(template: Path, base: Path) -> dict:
    """Every README block after the first, in order, in a copy of ``template`` (a ``reproduced_repo``) at
    ``base/project``: ``{"template", "returncode", "output" (stdout and stderr as one stream), "expected"
    (each console command's log and the lines the README shows for it)}``."""
    root, env = copy_repo(template, base)
    (root / ".venv").symlink_to(sys.prefix, target_is_directory=True)  # the venv `make run` made
    with (root / ".git" / "info" / "exclude").open("a", encoding="utf-8") as exclude:
        exclude.write(".venv\n")
    assert sh(root, "git", "status", "--porcelain", env=env) == ""  # nothing left to commit

    logs = base / "logs"
    logs.mkdir()
    script, expected = ["set -eo pipefail"], []
    for n, (language, body) in enumerate(blocks(README.read_text(encoding="utf-8"))[1:], 1):
        script.append(f'echo "{BLOCK} {n} ($(date +%T))"')  # the time: where a slow README run spends it
        if language == "bash":
            script.append(body)
        else:
            lines, shown = console_script(body, n, logs)
            script.append(lines)
            expected += shown
    run_env = {**env, "PATH": bare_path()}
    run_env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=root,
        env=run_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
    )
    return {"template": str(base), "returncode": done.returncode, "output": done.stdout, "expected": expected}


def experiment_outputs(output: str) -> dict[str, str]:
    """What each ``dvc exp run -n NAME`` of the README printed, by name (its text from the block's start or the
    previous experiment's end up to its ``Ran experiment(s): NAME``)."""
    found, chunk = {}, []
    for line in output.splitlines():
        if line.startswith(BLOCK):
            chunk = []
        elif line.startswith(RAN):
            found[line[len(RAN) :].strip()] = "\n".join(chunk)
            chunk = []
        else:
            chunk.append(line)
    return found


def block_outputs(output: str) -> list[str]:
    """What each README block after the first printed, in order (``[0]`` is the first block run, block 1)."""
    return [part.split("\n", 1)[1] if "\n" in part else "" for part in output.split(BLOCK + " ")[1:]]
