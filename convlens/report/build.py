"""The report: chapter 8-3 told with one run's numbers, as one self-contained HTML page (``outputs/report/index.html``).

In the chapter's order: the model, the kernel statistics, the weight histograms trained vs untrained, the filter
grids, the sample images, the feature maps, then the dataset-scale statistics, the analyses of issue 12 (accuracy,
dataset examples, activation maximization, Grad-CAM) and the run's params. Every section reads what the stages
wrote (no TensorFlow); whatever is missing becomes a note saying which stage makes it, never an error.

This module holds the page: what it reads, its sections' order, the ``Report`` with the helpers every section uses.
The sections themselves: the chapter's in ``report_chapter``, the rest in ``report_analyses``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from convlens.errors import ConvlensError
from convlens.model.archive import Archive
from convlens.report.analyses import AnalysisSections
from convlens.report.chapter import ChapterSections
from convlens.report.pages import Figure, Note, Section, Strings, image, render

# What the report reads (relative to the project root) and the stage that makes it. Each one a stage in dvc.yaml
# makes must be a dep of the report stage (tests/test_report.py checks it), so the page never goes stale.
READS = {
    "outputs/models/trained.keras": "fetch_model",
    "outputs/metrics/weights_trained.csv": "extract_weights",
    "outputs/metrics/weights_trained.json": "extract_weights",
    "outputs/metrics/weights_untrained.csv": "build_untrained",
    "outputs/metrics/weights_untrained.json": "build_untrained",
    "outputs/figures/weights": "render_figures",
    "outputs/samples": "samples",
    "outputs/figures/samples": "render_figures",
    "outputs/metrics/feature_maps.json": "map_metrics",
    "outputs/figures/feature_maps": "render_maps",
    "outputs/metrics/dataset.json": "dataset_stats",
    "outputs/metrics/dataset": "dataset_stats",
    "outputs/figures/dataset": "render_figures",
    "outputs/figures/dataset/examples": "render_figures",  # the dataset examples (dataset.examples, issue 12)
    "outputs/metrics/evaluate.json": "evaluate",
    "outputs/metrics/input_range.json": "evaluate",
    "outputs/figures/evaluate": "evaluate",
    "outputs/metrics/activation_max.json": "activation_max",
    "outputs/figures/activation_max": "activation_max",
    "outputs/metrics/gradcam.json": "gradcam",
    "outputs/figures/gradcam": "gradcam",
}

# The sections' anchors, in the page's order (level-3 analyses sit under "analyses").
SECTIONS = (
    "model",
    "kernels",
    "histograms",
    "filters",
    "samples",
    "feature-maps",
    "dataset",
    "analyses",
    "evaluate",
    "examples",
    "activation-max",
    "gradcam",
    "params",
)


class Report(ChapterSections, AnalysisSections):
    """Builds the report's sections for the project at ``root`` from its outputs and ``params`` (``params.yaml``)."""

    def __init__(self, root: Path, params: Mapping[str, Any], t: Strings):
        self.root, self.params, self.t = root, params, t
        self.archive: Archive | None = None
        self.shapes: dict[str, tuple[int | None, ...] | None] = {}

    # -- helpers ---------------------------------------------------------------------------------------------
    def path(self, relative: str) -> Path:
        return self.root / relative

    def missing(self, relative: str) -> Note:
        """The note for an output not made yet: what is missing, and the stage that makes it."""
        owners = [prefix for prefix in READS if relative == prefix or relative.startswith(f"{prefix}/")]
        stage = READS[max(owners, key=len)] if owners else "?"  # the most specific: dataset/examples
        return Note(self.t("not_run_yet", what=relative, command="dvc repro", stage=stage))

    def figure(self, paths: Sequence[tuple[str, str]], caption: str) -> Figure | Note:
        """Images side by side (``(relative path, label)``); a note naming the first one missing."""
        images = []
        for relative, label in paths:
            img = image(self.path(relative), label)
            if img is None:
                return self.missing(relative)
            images.append(img)
        return Figure(images, caption)

    def role(self, role: str) -> str:
        return self.t(role)

    def split(self, split: str) -> str:
        return self.t(f"split_{split}")

    def layer_names(self, items: Sequence[Any]) -> list[tuple[str, str]]:
        """``(item, layer name)`` for configured layer entries (names or indices into ``model.layers``)."""
        if self.archive is None:
            return [(str(item), str(item)) for item in items]
        try:
            names = self.archive.resolve(list(items), "feature_maps.layers")
        except ConvlensError:
            return [(str(item), str(item)) for item in items]
        return [(str(item), name) for item, name in zip(items, names, strict=True)]

    def sections(self) -> list[Section]:
        t = self.t
        model = self.model()
        stats = self.weight_stats()
        index = self.sample_index()
        return [
            model,
            self.kernels(stats),
            self.histograms(stats),
            self.filters(stats),
            self.samples(index),
            self.feature_maps(index),
            self.dataset(),
            Section("analyses", t("analyses_title")),
            self.evaluate(),
            self.examples(),
            self.activation_max(),
            self.gradcam(),
            self.params_section(),
        ]


def report_page(root: Path, params: Mapping[str, Any], language: str) -> str:
    """The report of the project at ``root`` as one HTML page, in ``language`` (``report.language``)."""
    t = Strings(language)
    sections = Report(root, params, t).sections()
    return render("report.html.j2", t, t("report_title"), t("report_subtitle"), sections)
