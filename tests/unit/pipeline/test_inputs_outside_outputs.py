"""``model.path`` or ``data.path`` inside ``outputs/`` is refused while ``conf/`` is composed, naming the key and the
fix; before, ``dvc exp run -S model=local -S model.path=outputs/models/trained.keras`` gave DVC's raw "Same item(s) are
defined as both a dependency and an output in stage: fetch_model." (outside tester, own model, finding 2)."""

from __future__ import annotations

import pytest

from convlens.errors import ConvlensError
from convlens.pipeline.config import compose
from convlens.pipeline.paths import check_inputs_outside_outputs, inside_outputs
from tests.support.helpers import PROJECT
from tests.unit.pipeline.test_compose_paths import convlens_error, dvc_compose

MODEL_LINE = (
    "model.path {value} lies inside outputs/, which the pipeline's stages write, so DVC cannot also read it as your "
    "model; copy it elsewhere, e.g. `mkdir -p models && cp {value} models/ && dvc add models/trained.keras`, and set "
    "-S model.path=models/trained.keras"
)
DATA_LINE = (
    "data.path outputs/figures lies inside outputs/, which the pipeline's stages write, so DVC cannot also read it "
    "as your data; copy it elsewhere, e.g. `mkdir -p data && cp -r outputs/figures data/ && dvc add data/figures`, "
    "and set -S data.path=data/figures"
)


@pytest.mark.parametrize(
    "value",
    ["outputs/models/trained.keras", "./outputs/../outputs/models/trained.keras", "/ROOT/outputs/models/trained.keras"],
)
def test_a_model_path_inside_outputs_is_one_line_when_convlens_composes(value):
    value = value.replace("/ROOT", str(PROJECT))
    with pytest.raises(ConvlensError) as err:  # whether a run left the file there or not
        compose(PROJECT, ["model=local", f"model.path={value}"])
    assert str(err.value) == MODEL_LINE.format(value=value)


def test_a_data_path_inside_outputs_is_one_line_when_convlens_composes():
    with pytest.raises(ConvlensError) as err:
        compose(PROJECT, ["data=folder", "data.path=outputs/figures"])
    assert str(err.value) == DATA_LINE


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (
            ["model=local", "model.path=outputs/models/trained.keras"],
            MODEL_LINE.format(value="outputs/models/trained.keras"),
        ),
        (["data=folder", "data.path=outputs/figures"], DATA_LINE),
    ],
    ids=["model", "data"],
)
def test_an_input_inside_outputs_is_one_line_when_dvc_composes(tmp_path, monkeypatch, overrides, line):
    monkeypatch.chdir(PROJECT)
    with pytest.raises(Exception) as err:
        dvc_compose(PROJECT, tmp_path, overrides)
    assert convlens_error(err) == line


@pytest.mark.parametrize(
    ("value", "inside"),
    [
        ("outputs", True),
        ("outputs/train/model.keras", True),
        ("outputs-old/model.keras", False),
        ("models/outputs/model.keras", False),
        ("../outputs/model.keras", False),
        ("models/../outputs/x.keras", True),
    ],
)
def test_inside_outputs_reads_the_path_as_dvc_does_relative_to_the_root(tmp_path, value, inside):
    assert inside_outputs(tmp_path / "project", value) is inside


def test_the_model_training_writes_is_read_from_outputs_by_design(tmp_path):
    model = {"path": "outputs/train/model.keras", "train_runs": ["trained"]}  # -S model=train
    check_inputs_outside_outputs({"model": model, "data": {"path": None}}, tmp_path)
    assert compose(PROJECT, ["model=train"]).model.path == "outputs/train/model.keras"
    with pytest.raises(ConvlensError, match=r"^model.path outputs/train/model.keras lies inside outputs/"):
        check_inputs_outside_outputs({"model": {**model, "train_runs": []}}, tmp_path)


@pytest.mark.parametrize(
    ("link", "target", "value"),
    [
        ("models/link.keras", "../outputs/models/trained.keras", "models/link.keras"),
        ("models/outdir", "../outputs", "models/outdir/models/trained.keras"),
    ],
    ids=["the file", "a folder above it"],
)
def test_a_model_path_linked_into_outputs_is_refused_naming_the_key_and_the_link(project, link, target, value):
    """``ln -s ../outputs/models/trained.keras models/link.keras`` (or ``models/outdir -> ../outputs``) and
    ``-S model.path=models/link.keras`` was accepted: fetch_model read its own output through the link."""
    (project / link).parent.mkdir(parents=True, exist_ok=True)
    (project / link).symlink_to(target)
    with pytest.raises(ConvlensError) as err:
        compose(project, ["model=local", f"model.path={value}"])
    assert str(err.value) == (
        f"model.path {value} (a link to outputs/models/trained.keras) lies inside outputs/, which the pipeline's "
        "stages write, so DVC cannot also read it as your model; copy it elsewhere, e.g. `mkdir -p models && "
        "cp outputs/models/trained.keras models/ && dvc add models/trained.keras`, and set "
        "-S model.path=models/trained.keras"
    )
    assert not inside_outputs(project, "models")  # a folder beside the link is still read where it is


def test_a_data_path_through_a_link_into_outputs_is_refused(project):
    (project / "data").mkdir(exist_ok=True)
    (project / "data" / "out").symlink_to("../outputs/figures", target_is_directory=True)
    with pytest.raises(ConvlensError, match=r"^data.path data/out \(a link to outputs/figures\) lies inside outputs/"):
        compose(project, ["data=folder", "data.path=data/out"])
