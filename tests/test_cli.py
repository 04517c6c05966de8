"""``python -m convlens``: each command by name; anything else is one message listing them."""

from __future__ import annotations

import shutil

import pytest
import yaml

import convlens.__main__ as cli
from tests.helpers import PROJECT


@pytest.mark.parametrize(
    ("argv", "said"),
    [([], ""), (["-h"], ""), (["bogus", "x"], "unknown command 'bogus'; ")],
)
def test_anything_but_a_command_lists_the_commands(argv, said):
    with pytest.raises(SystemExit) as exit:
        cli.main(argv)
    assert exit.value.code == f"convlens: {said}choose one of: compare, experiments, params\n{cli.__doc__}"


def test_a_command_gets_the_arguments_after_its_name(tmp_path, monkeypatch, capsys):
    shutil.copytree(PROJECT / "conf", tmp_path / "conf")
    shutil.copy(PROJECT / "dvc.yaml", tmp_path)
    monkeypatch.chdir(tmp_path)
    cli.main(["params", "untrained.seed=7"])
    assert capsys.readouterr().out == "params: wrote params.yaml\n"
    assert yaml.safe_load((tmp_path / "params.yaml").read_text(encoding="utf-8"))["untrained"]["seed"] == 7
