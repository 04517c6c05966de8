"""What ``.dvcignore`` keeps out of DVC's hashes.

``convlens`` is a directory dependency of nearly every stage. Python writes ``__pycache__/*.pyc`` beside the modules
it imports unless ``PYTHONDONTWRITEBYTECODE`` is set, so without these patterns the first import after a run (the
next stage, ``pytest``, a shell) changes the directory's hash and the next ``dvc repro`` reruns every stage.
"""

import shutil

import pytest

from tests.support.helpers import PROJECT


def _dir_hash(root, folder):
    from dvc.repo import Repo
    from dvc_data.hashfile.build import build

    with Repo(str(root)) as repo:
        _, _, obj = build(repo.cache.local, str(folder), repo.fs, "md5", ignore=repo.dvcignore, dry_run=True)
    return obj.hash_info.value


@pytest.mark.parametrize(
    "junk",
    [
        "__pycache__/schema.cpython-311.pyc",
        "sub/__pycache__/m.cpython-312.opt-1.pyc",
        ".schema.py.swp",  # outside tester 4 #4: an editor's swap or backup file beside a module open in it
        "sub/.m.py.swo",
        "schema.py~",
        ".#schema.py",
    ],
)
def test_bytecode_does_not_change_a_code_dependency_hash(tmp_path, junk):
    from dvc.repo import Repo

    Repo.init(str(tmp_path), no_scm=True).close()
    shutil.copy(PROJECT / ".dvcignore", tmp_path / ".dvcignore")
    package = tmp_path / "convlens"
    (package / "sub").mkdir(parents=True)
    (package / "schema.py").write_text("LIMIT = 1\n", encoding="utf-8")
    (package / "sub" / "m.py").write_text("X = 2\n", encoding="utf-8")
    before = _dir_hash(tmp_path, package)

    (package / junk).parent.mkdir(parents=True, exist_ok=True)
    (package / junk).write_bytes(b"\x00bytecode")
    assert _dir_hash(tmp_path, package) == before

    # a source edit still shows; of another size, as DVC's state cache keys a file's hash on (inode, mtime, size)
    # and two writes within the file system's timestamp granularity keep the mtime
    (package / "sub" / "m.py").write_text("X = 30\n", encoding="utf-8")
    assert _dir_hash(tmp_path, package) != before


def test_editing_the_commands_that_are_not_stages_changes_no_dependency_hash(tmp_path):
    """outside tester 4 #4: ``convlens/cli`` and ``convlens/__main__.py`` (``python -m convlens experiments``, …)
    are DVC-ignored, so editing them reruns no stage; a module beside them still counts."""
    from dvc.repo import Repo

    Repo.init(str(tmp_path), no_scm=True).close()
    shutil.copy(PROJECT / ".dvcignore", tmp_path / ".dvcignore")
    package = tmp_path / "convlens"
    shutil.copytree(PROJECT / "convlens", package, ignore=shutil.ignore_patterns("__pycache__"))
    before = _dir_hash(tmp_path, package)
    for module in ("cli/experiments.py", "__main__.py"):
        (package / module).write_text((package / module).read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    assert _dir_hash(tmp_path, package) == before
    (package / "errors.py").write_text("# edited, of another size\n", encoding="utf-8")
    assert _dir_hash(tmp_path, package) != before


def test_no_stage_imports_a_module_dvc_ignores():
    """What DVC ignores is no stage's dependency: a stage that imported ``convlens.cli`` would miss its edits."""
    from tests.support.helpers import imported_files

    for script in sorted((PROJECT / "stages").glob("*.py")):
        found = imported_files(script)
        assert not [f for f in found if f.startswith("convlens/cli/") or f == "convlens/__main__.py"], script.name
