"""Stage: the report, one HTML page that tells chapter 8-3 with this run's numbers, its figures as files beside it.

Reads what the other stages wrote (figures, metrics tables, the model's config and weights; no TensorFlow) and
``params.yaml`` (shown on the page, so every param is a dependency); an output not made yet is a note on the page.
Writes ``outputs/report/``: ``index.html``, ``figures/`` (the figures it shows) and ``thumbnails/`` (small copies of
the later samples' figures), all at once or nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from convlens.pipeline import paths
from convlens.pipeline.config import PARAMS_FILE, read_yaml, run_stage
from convlens.pipeline.upstream import standalone_stale
from convlens.report.build import write_report

log = logging.getLogger(__name__)


def run(cfg: DictConfig, root: Path) -> None:
    stale = standalone_stale(root, "report")  # run on its own over stages not rerun: said on the page too
    page, files = write_report(root, read_yaml(root / PARAMS_FILE), cfg.report.language, paths.report_dir(root), stale)
    log.info(
        "%s (%.1f MB, its figures %.1f MB, %s)",
        paths.report_page(root).relative_to(root),
        page / 1e6,
        files / 1e6,
        cfg.report.language,
    )


if __name__ == "__main__":
    run_stage("report", run)
