"""The command blocks of the README and the docs pages as one shell script, run in a reproduced copy of the project
(``readme_run``).

The blocks run in one bash session (a reader's terminal), the README's first, then each page's in the order of
:data:`PAGES` (a reader's path: the README's tour, the config, experiments, your own model, your own data), as
written and in order within a page, in a fresh git + DVC copy of the project (``tests.support.dvc_repo.make_repo``)
whose baseline has been reproduced and committed, with ``.venv`` standing for the venv ``make run`` made and no
``dvc`` on ``PATH`` until the README activates it. Later blocks build on earlier ones (the experiments the pages diff
and list), so a page's place in :data:`PAGES` is part of what it says.

Which blocks run: ```bash blocks run as written; a ```console block's ``$`` commands run the same way and the lines it
shows must appear in their output, in order. Any other fence does not run: ```sh-notrun for commands shown only
(``make test``, ``make mutate``: they would rerun this suite or take hours), a bare ``` fence for printed output.
A docs page with a ```bash or ```console block must be in :data:`PAGES` (``tests/project/test_docs.py``). The
README's first block (``make run``, ``make test-all``) is left out: it installs from the network, then reruns this
very suite; the fixture does what ``make run`` does (``dvc repro``) instead.

The run happens once per test run: ``tests/e2e/test_readme.py`` checks that every command succeeded and printed what
the page shows, ``tests/e2e/test_experiments.py`` checks what its experiments recorded, each in a copy.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.dvc_repo import copy_repo, sh
from tests.support.helpers import PROJECT

README = PROJECT / "README.md"
DOCS = PROJECT / "docs"
# The pages whose blocks run after the README's, in this order (paths from the project root).
PAGES = ("docs/configuration.md", "docs/experiments.md", "docs/any-model.md", "docs/own-data.md")
RUNS = ("bash", "console")  # the fences that run; any other (```sh-notrun, a bare ```) only shows
BLOCK = "### docs block"
RAN = "Ran experiment(s): "


def blocks(text: str) -> list[tuple[str, str]]:
    """A page's ```bash and ```console blocks, in order: ``(language, body)``."""
    return re.findall(rf"^```({'|'.join(RUNS)})\n(.*?)^```$", text, flags=re.M | re.S)


def run_blocks() -> list[tuple[str, str, str]]:
    """Every block that runs, in the order it runs: ``(page, language, body)``; the README's first is left out."""
    found = [("README.md", *block) for block in blocks(README.read_text(encoding="utf-8"))[1:]]
    for page in PAGES:
        found += [(page, *block) for block in blocks((PROJECT / page).read_text(encoding="utf-8"))]
    return found


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
    """Every block of :func:`run_blocks`, in order, in a copy of ``template`` (a ``reproduced_repo``) at
    ``base/project``: ``{"template", "returncode", "output" (stdout and stderr as one stream), "expected"
    (each console command's log and the lines the page shows for it)}``."""
    root, env = copy_repo(template, base)
    (root / ".venv").symlink_to(sys.prefix, target_is_directory=True)  # the venv `make run` made
    with (root / ".git" / "info" / "exclude").open("a", encoding="utf-8") as exclude:
        exclude.write(".venv\n")
    assert sh(root, "git", "status", "--porcelain", env=env) == ""  # nothing left to commit

    logs = base / "logs"
    logs.mkdir()
    script, expected = ["set -eo pipefail"], []
    for n, (page, language, body) in enumerate(run_blocks(), 1):
        script.append(f'echo "{BLOCK} {n} ({page}, $(date +%T))"')  # the time: where a slow run spends it
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
    """What each ``dvc exp run -n NAME`` of the pages printed, by name (its text from the block's start or the
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
    """What each block of :func:`run_blocks` printed, in order (``[0]`` is the first block run, block 1)."""
    return [part.split("\n", 1)[1] if "\n" in part else "" for part in output.split(BLOCK + " ")[1:]]
