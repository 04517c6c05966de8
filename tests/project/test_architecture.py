"""The house: subpackages by concern, layered (import-linter's contracts in pyproject.toml, run by `make lint`), no
import cycle, no private name taken across modules, one owner for artifact paths, few modules at the top."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from tests.support.helpers import PROJECT

PACKAGE = PROJECT / "convlens"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the package and stages found at ``root`` (a copy of the project, or the project)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
    )


def test_the_layers_hold():
    done = lint_imports(PROJECT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 2 kept, 0 broken." in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        (
            "convlens/pipeline/paths.py",
            "import convlens.report.build",
            "convlens.pipeline.paths -> convlens.report.build",
        ),
        ("convlens/model/ops.py", "import convlens.data.idx", "convlens.model.ops -> convlens.data.idx"),
        ("convlens/analysis/stats.py", "import stages.samples", "convlens.analysis.stats -> stages.samples"),
    ],
    ids=["pipeline-imports-report", "model-imports-data", "library-imports-a-stage"],
)
def test_a_forbidden_import_breaks_the_lint(tmp_path, module, line, broken):
    for part in ("convlens", "stages"):
        shutil.copytree(PROJECT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(PROJECT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}  # noqa\n", encoding="utf-8")
    done = lint_imports(tmp_path)
    assert done.returncode != 0 and "BROKEN" in done.stdout, done.stdout + done.stderr
    assert broken in done.stdout, done.stdout


def test_no_import_cycle():
    graph = grimp.build_graph("convlens", cache_dir=None)
    cycles = [
        (importer, imported)
        for importer in sorted(graph.modules)
        for imported in sorted(graph.find_modules_directly_imported_by(importer))
        if graph.find_shortest_chain(importer=imported, imported=importer)
    ]
    assert not cycles, f"import cycles through: {cycles}"


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_artifact_paths_are_spelled_only_by_the_paths_module():
    owner = PACKAGE / "pipeline" / "paths.py"
    spelled = [
        f"{path.relative_to(PROJECT)}:{n}"
        for path in [*sources(), *sorted((PROJECT / "stages").glob("*.py"))]
        if path != owner
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"""["']outputs/""", line)
    ]
    assert not spelled, f'"outputs/…" outside convlens/pipeline/paths.py: {spelled}'


def test_no_private_name_is_imported_across_modules():
    taken = [
        f"{path.relative_to(PROJECT)}: from {node.module} import {alias.name}"
        for path in [*sources(), *sorted((PROJECT / "stages").glob("*.py"))]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("convlens")
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert not taken


def test_few_modules_sit_at_the_top_of_the_package():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 6, top
    for package in sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()):
        doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text(encoding="utf-8")))
        assert doc and "import" in doc, f"{package.name}/__init__.py must say what lives there and what it may import"


STAGE_RUN_LINES = 40  # a stage's run reads config, calls a few library functions and writes artifacts


def test_every_stage_run_reads_like_a_paragraph():
    """Checks, metrics and titles live in the library, where unit tests call them: each ``run`` in stages/ is at
    most ``STAGE_RUN_LINES`` lines, from its ``def`` to its last line."""
    lengths = {}
    for path in sorted((PROJECT / "stages").glob("*.py")):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        [run] = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run"]
        lengths[path.stem] = run.end_lineno - run.lineno + 1
    assert {"gradcam", "dataset", "metrics", "feature_maps", "activation_max"} <= set(lengths)
    too_long = {stage: n for stage, n in lengths.items() if n > STAGE_RUN_LINES}
    assert not too_long, f"stages whose run is over {STAGE_RUN_LINES} lines: {too_long}"


def test_the_benchmark_imports_its_own_modules_not_the_librarys():
    """`make bench` (``python -m bench``) starts: its modules ``bench.dataset`` and ``bench.report`` are its own (the
    move into subpackages once rewrote their relative imports into ``convlens.analysis.dataset``)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--help"], cwd=PROJECT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "usage: python -m bench" in done.stdout, done.stderr


@pytest.mark.parametrize("stage", sorted(p.stem for p in (PROJECT / "stages").glob("*.py") if p.stem != "__init__"))
def test_only_the_drawing_stages_import_matplotlib_and_no_stage_imports_tensorflow_at_start(stage):
    """matplotlib costs a process ~0.5 s to import: a stage that computes (``dataset@``'s pass, the metrics, the
    report) must not pay it for a title string; TensorFlow (~3.5 s) is imported inside the functions that need it."""
    probe = f"import sys, stages.{stage}; print(sorted(m for m in ('matplotlib', 'tensorflow') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT, capture_output=True, text=True, check=True)
    expected = ["matplotlib"] if stage.startswith("render_") else []
    assert done.stdout.strip() == str(expected), done.stdout
