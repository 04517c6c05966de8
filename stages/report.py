"""Stage: the report, one self-contained HTML page that tells chapter 8-3 with this run's numbers.

Reads what the other stages wrote (figures, metrics tables, the model's config and weights; no TensorFlow) and
``params.yaml`` (shown on the page, so every param is a dependency); an output not made yet is a note on the page.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from convlens.pipeline import paths
from convlens.pipeline.config import PARAMS_FILE, read_yaml, run_stage
from convlens.pipeline.files import staged_dir
from convlens.report.build import report_page

log = logging.getLogger(__name__)


def run(cfg: DictConfig, root: Path) -> None:
    page = report_page(root, read_yaml(root / PARAMS_FILE), cfg.report.language)
    with staged_dir(paths.report_dir(root)) as out:
        (out / paths.REPORT_NAME).write_text(page, encoding="utf-8")
    size = len(page.encode("utf-8"))
    log.info("%s (%.1f MB, %s)", paths.report_page(root).relative_to(root), size / 1e6, cfg.report.language)


if __name__ == "__main__":
    run_stage("report", run)
