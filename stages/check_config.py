"""Stage 0: the whole ``params.yaml`` checked against the schema, before any other stage runs.

Every stage depends on this one, so ``dvc repro`` and ``dvc exp run`` stop here on a bad value, before
DVC deletes any stage's outputs: a layer name such as ``../../x`` never becomes a folder DVC removes.
Its mark never changes, so a config change reruns only the stages that read the changed keys.
It also depends on ``conf/``: a ``conf/`` edit that ``params.yaml`` lacks (no ``make params`` before ``dvc repro``)
is refused, not run stale; its record of ``conf/`` (``convlens.pipeline.conf_record``) is an output nothing reads.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from omegaconf import DictConfig

from convlens.checks import model_file
from convlens.model.defaults import check_derived
from convlens.pipeline import conf_record, paths
from convlens.pipeline.config import PARAMS_FILE, read_yaml, run_stage
from convlens.pipeline.files import atomic_path
from convlens.schema import check_config, check_data_location

log = logging.getLogger(__name__)


def run(cfg: DictConfig, root: Path) -> None:
    """``cfg`` is empty: this stage depends on the whole file (a dep of its own), read here as it is."""
    params = read_yaml(root / PARAMS_FILE)
    check_config(params)  # every key, unknown ones included
    paths.check_analysis_deps(params["analyses"])  # metrics and report wait for the analyses that run
    if params["model"]["path"] is not None and not params["model"]["train_runs"]:  # train@ makes a trained-here one
        model_file(root, params["model"]["path"])
    check_derived(params, root)  # feature_maps.each as derived from the model file now (a hand-edited model.path)
    check_data_location(params, root)  # a hand-edited params.yaml: our line, not DVC's missing-dependency error
    # under dvc exp run (DVC_EXP_NAME set), DVC composed params.yaml from conf/ just before this stage
    conf_record.check_recomposed(root, params, composed_by_dvc=bool(os.environ.get("DVC_EXP_NAME")))
    with atomic_path(paths.config_check_path(root)) as tmp:
        tmp.write_text("params.yaml passed convlens/schema.py\n", encoding="utf-8")
    log.info("%s checked", PARAMS_FILE)


if __name__ == "__main__":
    run_stage("check_config", run)
