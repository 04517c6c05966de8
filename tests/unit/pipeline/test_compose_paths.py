"""The user's own files are checked while conf/ is composed, by convlens (``compose``) and by DVC (``dvc exp run``
composes with DVC's ``compose_and_dump``, our resolvers registered by ``hydra_plugins``): ``model=local`` without
``model.path`` (before: Hydra's ``???`` leaked as a path) and a ``data.path`` that does not exist (before: DVC's
own "failed to reproduce 'fetch_data': [Errno 2]" once the pipeline ran); outside tester, findings 11 and 14."""

import pytest
import yaml
from dvc.utils.hydra import compose_and_dump

from convlens.checks import MODEL_PATH_UNSET, model_file
from convlens.errors import ConvlensError
from convlens.pipeline.config import compose
from hydra_plugins.convlens import register
from tests.support.helpers import PROJECT


def dvc_compose(root, tmp_path, overrides):
    """What `dvc exp run -S …` does in DVC's process (working directory: the project root)."""
    register()  # what importing hydra_plugins/convlens.py does there
    out = tmp_path / "params.yaml"
    compose_and_dump(out, str(root / "conf"), None, "config", str(PROJECT), overrides)
    return yaml.safe_load(out.read_text(encoding="utf-8"))


def convlens_error(err: pytest.ExceptionInfo) -> str:
    """The ConvlensError a resolver raised, wherever OmegaConf and Hydra wrapped it."""
    cause: BaseException | None = err.value
    while cause is not None and not isinstance(cause, ConvlensError):
        cause = cause.__cause__ or cause.__context__
    assert cause is not None, repr(err.value)
    return str(cause)


def test_model_local_without_a_path_says_so_when_convlens_composes():
    with pytest.raises(ConvlensError) as err:
        compose(PROJECT, ["model=local"])
    assert str(err.value) == MODEL_PATH_UNSET
    assert MODEL_PATH_UNSET == (
        "model=local reads model.path, which is not set; set it: -S model=local -S model.path=FILE"
    )


def test_model_local_without_a_path_says_so_when_dvc_composes(tmp_path, monkeypatch):
    monkeypatch.chdir(PROJECT)
    with pytest.raises(Exception) as err:
        dvc_compose(PROJECT, tmp_path, ["model=local"])
    assert convlens_error(err) == MODEL_PATH_UNSET
    assert "???" not in convlens_error(err)


def test_the_model_file_check_never_takes_hydras_mark_for_a_path(tmp_path):
    with pytest.raises(ConvlensError) as err:
        model_file(tmp_path, "???")
    assert str(err.value) == MODEL_PATH_UNSET


def test_a_data_path_that_does_not_exist_is_one_line_when_convlens_composes():
    with pytest.raises(ConvlensError) as err:
        compose(PROJECT, ["data=folder", "data.path=no/such/photos"])
    assert str(err.value) == f"data.path {PROJECT}/no/such/photos does not exist; point it at a folder of class folders"


def test_a_data_path_of_the_wrong_kind_is_one_line(tmp_path):
    with pytest.raises(ConvlensError) as err:
        compose(PROJECT, ["data=npz", f"data.path={tmp_path}"])
    assert str(err.value).startswith(f"data.path {tmp_path} is a ") and "\n" not in str(err.value)


def test_a_data_path_is_read_from_the_project_dvc_composes_in(tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    with pytest.raises(Exception) as err:
        dvc_compose(PROJECT, tmp_path, ["data=folder", "data.path=photos"])
    assert convlens_error(err) == (f"data.path {project}/photos does not exist; point it at a folder of class folders")
    (project / "photos" / "cat").mkdir(parents=True)
    assert dvc_compose(PROJECT, tmp_path, ["data=folder", "data.path=photos"])["data"]["source"] == "photos"


def test_dvc_composes_one_analysis_alone_with_the_deps_its_list_sets(tmp_path):
    """`dvc exp run -S analyses=full -S 'analyses.activation_max=[]'` (outside tester 3, #18): Grad-CAM alone, the
    ascent's deps back to the file metrics and report depend on anyway (was: refused at composition)."""
    analyses = dvc_compose(PROJECT, tmp_path, ["analyses=full", "analyses.activation_max=[]"])["analyses"]
    assert analyses["activation_max"] == [] and analyses["attribution"] == ["trained_vs_untrained"]
    assert analyses["activation_max_outputs"] == analyses["activation_max_figures"] == "outputs/checked_config.txt"
    assert analyses["attribution_metrics"] == "outputs/metrics/gradcam.json"
