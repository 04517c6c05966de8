"""Issue 9 §7: every stage works under a locale whose preferred encoding is not UTF-8 (the book's readers may
run ``ko_KR.EUC-KR``; dvc.yaml's first line is Korean). Every text file is read and written as UTF-8."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stages import build_untrained, dataset, fetch_data, fetch_model
from tests.support.helpers import PROJECT, configure, copy_project


def _locale() -> str:
    """``ko_KR.EUC-KR`` where it is installed, else ``C`` (with UTF-8 mode and coercion off: ASCII)."""
    found = subprocess.run(["locale", "-a"], capture_output=True, text=True, check=False).stdout.split()
    return next((name for name in found if name.lower().replace("-", "") == "ko_kr.euckr"), "C")


NON_UTF8 = {"LC_ALL": _locale(), "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}


def in_locale(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        env={**os.environ, **NON_UTF8},
        check=False,
    )


def test_the_environment_really_is_not_utf8(tmp_path):
    done = in_locale(tmp_path, "-c", "import locale, sys; print(locale.getpreferredencoding(), sys.flags.utf8_mode)")
    encoding, utf8_mode = done.stdout.split()
    assert encoding.lower().replace("-", "") not in {"utf8"} and utf8_mode == "0"


def test_stages_run_under_a_non_utf8_locale_in_a_korean_path(tmp_path, project, stage_config, tiny_assets):
    """CONVLENS_MIRROR (set by ``project``) points the children at the tiny data."""
    project = copy_project(tmp_path / "혼공머신")  # messages that name it must not crash either
    configure(project, str(tiny_assets["model"]), tiny_assets["sums"])
    for stage in (fetch_model, fetch_data, build_untrained):  # inputs of render_figures, with the dataset pass
        stage.run(stage_config(stage.__name__.rsplit(".", 1)[1]), project)
    for role in ("trained", "untrained"):
        dataset.run(stage_config("dataset"), project, role)

    missing = in_locale(project, "-m", "stages.render_figures")  # no weights yet: one error line
    assert missing.returncode == 1 and "Traceback" not in missing.stderr, missing.stderr
    assert missing.stderr.startswith("render_figures: error: ") and missing.stderr.count("\n") == 1
    assert "\\ud" in missing.stderr or "혼공머신" in missing.stderr  # the path, escaped where it cannot be encoded

    bad_sum = in_locale(project, "-m", "stages.fetch_data", f"data.files.train_images.sha256={'0' * 64}")
    assert bad_sum.returncode == 1 and "Traceback" not in bad_sum.stderr, bad_sum.stderr  # logging's either
    assert "its sha256 is not the expected 000000000000\\u2026" in bad_sum.stdout  # "…" escaped, not a crash

    for module in (["convlens", "params"], ["stages.samples"], ["stages.extract_weights"], ["stages.render_figures"]):
        done = in_locale(project, "-m", *module)
        assert done.returncode == 0 and "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    assert (project / "params.yaml").read_text(encoding="utf-8").count("\n") > 10
    assert (project / "outputs" / "figures" / "samples" / "sample_0.png").is_file()


def test_dvc_reads_the_korean_dvc_yaml_under_a_non_utf8_locale(tmp_path):
    copy_project(tmp_path)
    assert "혼자 공부하는" in (tmp_path / "dvc.yaml").read_text(encoding="utf-8").splitlines()[0]
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    done = in_locale(tmp_path, "-m", "dvc", "init", "-q")
    assert done.returncode == 0, done.stderr
    done = in_locale(tmp_path, "-m", "dvc", "status")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "fetch_model:" in done.stdout and "render_figures:" in done.stdout


# os.open, PIL's Image.open, tarfile.open and zipfile members (``z.open``, ``zin``/``zout``, an NPZ's
# ``archive.open``) are binary, never text.
BINARY_OPENERS = {"os", "Image", "PILImage", "tarfile", "z", "zin", "zout", "archive"}


def _unspecified_encodings(path: Path) -> list[str]:
    """``read_text``/``write_text``/``open`` calls in text mode without ``encoding=`` in a source file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call) or any(k.arg == "encoding" for k in node.keywords):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        owner = node.func.value if isinstance(node.func, ast.Attribute) else None
        if name in {"read_text", "write_text"}:
            found.append(f"{path.relative_to(PROJECT)}:{node.lineno}")
        elif name == "open" and not (isinstance(owner, ast.Name) and owner.id in BINARY_OPENERS):
            modes = [a.value for a in [*node.args[1:2], *(k.value for k in node.keywords if k.arg == "mode")]]
            if not any(isinstance(m, str) and "b" in m for m in modes):
                found.append(f"{path.relative_to(PROJECT)}:{node.lineno}")
    return found


@pytest.mark.parametrize("folder", ["stages", "bench", "tests"])
def test_every_text_file_is_read_and_written_as_utf8(folder):
    assert [hit for path in sorted((PROJECT / folder).rglob("*.py")) for hit in _unspecified_encodings(path)] == []
