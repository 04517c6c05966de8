"""Outside tester 2 #6: a queued experiment whose model.path (or data.path) neither git nor DVC tracks failed in the
queue with "model.path /…/.dvc/tmp/exps/tmpXXXX/models/x.keras does not exist; point it at a .keras file", although
the file is right there in the workspace. Inside a queued experiment's copy the line now says why (a queued run sees
only git- and DVC-tracked files) and the fix (dvc add it, or an absolute path); elsewhere it is as before."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from convlens.checks import in_experiment_copy, model_file
from convlens.errors import ConvlensError
from convlens.pipeline import paths
from convlens.pipeline.config import PARAMS_FILE, compose
from stages import check_config
from tests.support.datasets import keras_npz
from tests.support.helpers import PROJECT


@pytest.fixture
def copy(tmp_path):
    """DVC's copy of the project for a queued experiment (`dvc queue start`), without the workspace's own files."""
    root = tmp_path / "project" / ".dvc" / "tmp" / "exps" / "tmp9vh8xpw5"
    root.mkdir(parents=True)
    return root


def test_a_model_file_missing_from_a_queued_copy_says_why_and_how(copy):
    with pytest.raises(ConvlensError) as err:
        model_file(copy, "models/untracked.keras")
    assert str(err.value) == (
        f"model.path {copy}/models/untracked.keras does not exist in this queued experiment's copy of the project: "
        "a queued run sees only git- and DVC-tracked files; track it with dvc add models/untracked.keras and queue "
        "again, or give an absolute model.path"
    )


def test_a_data_path_missing_from_a_queued_copy_stops_check_config_with_the_reason(copy, tmp_path):
    """The stage the queue runs first, on the params.yaml DVC composed in the workspace (where the file is)."""
    npz = tmp_path / "project" / "data" / "rgb.npz"
    npz.parent.mkdir()
    keras_npz(npz)
    params = OmegaConf.to_container(compose(PROJECT, ["data=npz", f"data.path={npz}"]))
    params["data"]["path"] = params["data"]["source"] = "data/rgb.npz"  # as queued: relative to the project
    (copy / PARAMS_FILE).write_text(yaml.safe_dump(params), encoding="utf-8")
    with pytest.raises(ConvlensError) as err:
        check_config.run(OmegaConf.create({}), copy)
    assert str(err.value) == (
        f"data.path {copy}/data/rgb.npz does not exist in this queued experiment's copy of the project: a queued "
        "run sees only git- and DVC-tracked files; track it with dvc add data/rgb.npz and queue again, or give an "
        "absolute data.path"
    )
    assert not paths.config_check_path(copy).exists()


def test_a_relative_path_out_of_a_queued_copy_says_to_give_an_absolute_one(copy):
    """outside tester 4 #10: ``model.path=../outside.keras`` works in the workspace, never in a queue, and
    ``dvc add`` refuses a file outside the project: the line offers what works."""
    with pytest.raises(ConvlensError) as err:
        model_file(copy, "../outside.keras")
    assert str(err.value) == (
        "model.path ../outside.keras lies outside the project, which a queued experiment's copy does not hold: give "
        "an absolute model.path, or move the file into the project, track it with dvc add and queue again"
    )


def test_outside_a_queued_copy_the_line_is_as_before(tmp_path):
    with pytest.raises(ConvlensError) as err:
        model_file(tmp_path, "models/x.keras")
    assert str(err.value) == f"model.path {tmp_path}/models/x.keras does not exist; point it at a .keras file"


@pytest.mark.parametrize(
    ("path", "inside"),
    [
        ("/p/.dvc/tmp/exps/tmpab/models/x.keras", True),
        ("/p/.dvc/tmp/exps/standalone/tmpab/x.npz", True),  # dvc exp run --temp's copy
        ("/p/.dvc/tmp/x.keras", False),
        ("/p/dvc/tmp/exps/x.keras", False),
        ("/p/models/.dvc/tmp/exps", True),
        ("/p/tmp/exps/.dvc/x.keras", False),
    ],
)
def test_a_queued_copy_is_told_by_the_folders_dvc_makes(path, inside):
    assert in_experiment_copy(Path(path)) is inside
