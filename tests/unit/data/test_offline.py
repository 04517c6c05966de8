"""Offline with no local copy: one failure names every missing file (the book's model too), its sha256 and each
place it may go, and leaves no empty cache folder behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from convlens.errors import ConvlensError
from stages import fetch_data
from tests.support.helpers import DATA_FILES

OFFLINE = "http://127.0.0.1:9/"  # a closed port: refused at once


@pytest.fixture
def offline(project, monkeypatch, tmp_path):
    """No mirror, an empty home (no ~/.keras), a cache folder that does not exist yet."""
    monkeypatch.delenv("CONVLENS_MIRROR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cache = tmp_path / "cache" / "convlens"
    monkeypatch.setenv("CONVLENS_CACHE", str(cache))
    return cache


def book_model(stage_config) -> list[str]:
    book = stage_config("fetch_data", "model=book").model
    return ["model=book", f"model.url={OFFLINE}{book.file}"], book


def test_offline_one_failure_lists_every_missing_file_and_its_places(project, stage_config, offline, tmp_path):
    overrides, book = book_model(stage_config)
    cfg = stage_config("fetch_data", *overrides, f"data.urls=[{OFFLINE}]")
    with pytest.raises(ConvlensError) as e:
        fetch_data.run(cfg, project)
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith("5 files are missing (no local copy, no download): ")
    assert f"{book.file} (sha256 {book.sha256}: {OFFLINE}{book.file}: server unreachable)" in message
    for key in DATA_FILES:
        file = cfg.data.files[key]
        assert f"{file.name} (sha256 {file.sha256}: {OFFLINE}{file.name}: server unreachable)" in message
    shared = tmp_path / "shared" / "mirror"  # ../shared/mirror beside the project
    home = tmp_path / "home"
    data_names = ", ".join(cfg.data.files[key].name for key in cfg.data.files)
    assert message.endswith(
        f". Offline? Put {book.file} in any of $CONVLENS_MIRROR (set CONVLENS_MIRROR=<dir>), {shared}, {offline}; "
        f"{data_names} in any of $CONVLENS_MIRROR/fashion-mnist (set CONVLENS_MIRROR=<dir>), {shared}/fashion-mnist, "
        f"{home}/.keras/datasets/fashion-mnist, {offline}/fashion-mnist"
    )
    assert not offline.exists() and not (project / "outputs" / "data").exists()  # no empty cache folder


def test_a_model_that_is_there_is_not_listed(project, stage_config, offline, tiny_assets, monkeypatch, tmp_path):
    overrides, book = book_model(stage_config)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    monkeypatch.setenv("CONVLENS_MIRROR", str(mirror))
    # a stand-in for the book's model, pinned by its own checksum
    (mirror / book.file).write_bytes(Path(tiny_assets["model"]).read_bytes())
    from convlens.data.fetch import sha256sum

    overrides.append(f"model.sha256={sha256sum(mirror / book.file)}")
    with pytest.raises(ConvlensError) as e:
        fetch_data.run(stage_config("fetch_data", *overrides, f"data.urls=[{OFFLINE}]"), project)
    assert str(e.value).startswith("4 files are missing") and book.file not in str(e.value)
    assert f"in any of {mirror}/fashion-mnist, " in str(e.value)
    assert not offline.exists()


def test_a_local_model_is_left_to_fetch_model(project, stage_config, offline):
    with pytest.raises(ConvlensError, match=r"^4 files are missing \(no local copy, no download\): train-images") as e:
        fetch_data.run(stage_config("fetch_data", f"data.urls=[{OFFLINE}]"), project)
    assert "best-cnn-model" not in str(e.value)
