"""The report: chapter 8-3 told with one run's numbers, as one HTML page (``outputs/report/index.html``) with its
figures as files beside it (``figures/``, ``thumbnails/``; see ``assets``), so it stays light at any sample count.

In the chapter's order: the model, the kernel statistics, the weight histograms trained vs untrained, the filter
grids, the sample images, the feature maps, then the dataset-scale statistics, the analyses (accuracy,
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
from convlens.pipeline import paths
from convlens.pipeline.files import staged_dir
from convlens.pipeline.upstream import stage_list
from convlens.report.analyses import AnalysisSections
from convlens.report.assets import FULL_SAMPLES, Assets
from convlens.report.chapter import ChapterSections
from convlens.report.pages import Figure, Gallery, Image, Note, Section, Strings, render, string_tables
from convlens.report.training import TrainingSections

# What the report reads (relative to the project root, as its notes show it) and the stage that makes it. Each one a
# stage in dvc.yaml makes must be a dep of the report stage (tests/unit/report/test_report.py checks it), so the
# page never goes stale.
HERE = Path()  # READS' root: its paths relative
READS = {
    paths.relative(HERE, path): stage
    for path, stage in [
        (paths.model_path(HERE, "trained"), "fetch_model"),
        (paths.weight_metrics(HERE, "trained", "csv"), "extract_weights"),
        (paths.weight_metrics(HERE, "trained", "json"), "extract_weights"),
        (paths.weight_metrics(HERE, "untrained", "csv"), "build_untrained"),
        (paths.weight_metrics(HERE, "untrained", "json"), "build_untrained"),
        (paths.weight_figures_dir(HERE), "render_figures"),
        (paths.samples_dir(HERE), "samples"),
        (paths.classes(HERE), "fetch_data"),
        (paths.sample_figures_dir(HERE), "render_figures"),
        (paths.feature_map_metrics(HERE), "map_metrics"),
        (paths.feature_maps_dir(HERE), "feature_maps"),  # each sample's own numbers (``map_samples``)
        (paths.map_figures_dir(HERE), "render_maps"),
        (paths.dataset_metrics(HERE), "metrics"),
        (paths.dataset_dir(HERE), "dataset"),
        (paths.dataset_figures_dir(HERE), "render_dataset"),  # one folder per model, each with its examples:
        *((paths.dataset_figures_dir(HERE, role), f"render_dataset@{role}") for role in paths.ROLES),
        (paths.evaluate_metrics(HERE), "metrics"),
        (paths.input_range_path(HERE), "metrics"),
        (paths.evaluate_figures_dir(HERE), "render_dataset"),
        *((paths.evaluate_figures_dir(HERE, role), f"render_dataset@{role}") for role in paths.ROLES),
        (paths.activation_max_metrics(HERE), "metrics"),
        (paths.activation_max_figures_dir(HERE), "render_activation_max"),
        (paths.gradcam_metrics(HERE), f"gradcam@{paths.ATTRIBUTION}"),
        (paths.gradcam_figures_dir(HERE), f"render_gradcam@{paths.ATTRIBUTION}"),
        (paths.film_dir(HERE), "render_film@trained"),  # -S model=train only: the film, its record film.json
    ]
}

# The sections' anchors, in the page's order (level-3 analyses sit under "analyses").
SECTIONS = (
    "model",
    "kernels",
    "histograms",
    "filters",
    "samples",
    "feature-maps",
    "training",
    "dataset",
    "analyses",
    "evaluate",
    "examples",
    "activation-max",
    "gradcam",
    "params",
)


class Report(ChapterSections, TrainingSections, AnalysisSections):
    """Builds the report's sections for the project at ``root`` from its outputs and ``params`` (``params.yaml``);
    its images go to ``assets`` (by default inline, as ``data:`` URIs)."""

    full_samples = FULL_SAMPLES  # per-sample figures shown full size; those of later samples in a gallery

    def __init__(self, root: Path, params: Mapping[str, Any], t: Strings, assets: Assets | None = None):
        self.root, self.params, self.t = root, params, t
        self.assets = Assets(folder=False) if assets is None else assets
        self.archive: Archive | None = None
        self.shapes: dict[str, tuple[int | None, ...] | None] = {}

    # -- helpers ---------------------------------------------------------------------------------------------
    def relative(self, path: Path) -> str:
        """An output's path as the page shows it (``outputs/…``)."""
        return paths.relative(self.root, path)

    def missing(self, path: Path | str, detail: str = "") -> Note:
        """The note for an output not made yet (its path, or as shown; ``detail`` after it in parentheses): what is
        missing, and the stage that makes it."""
        relative = self.relative(path) if isinstance(path, Path) else path
        owners = [prefix for prefix in READS if relative == prefix or relative.startswith(f"{prefix}/")]
        stage = READS[max(owners, key=len)] if owners else "?"  # the most specific: dataset/examples
        shown = f"{relative} ({detail})" if detail else relative
        return Note(self.t("not_run_yet", what=shown, command="dvc repro", stage=stage))

    def figure_name(self, path: Path) -> str:
        """A figure's name in the report's folder: its path under ``outputs/figures`` (else under the project)."""
        figures = paths.figures_dir(self.root)
        return paths.relative(figures if path.is_relative_to(figures) else self.root, path)

    def image(self, path: Path, label: str, small: bool = False) -> Image | None:
        """The figure at ``path`` (a thumbnail linked to it where ``small``), or None when it is not there (yet)."""
        if not path.is_file():
            return None
        return self.assets.image(path, self.figure_name(path), label, small)

    def figure(self, pictures: Sequence[tuple[Path, str]], caption: str, wide: bool = False) -> Figure | Note:
        """Images side by side (``(path, label)``; ``wide``: one under the other, full width, each linked to its
        file); a note naming the first one missing."""
        images = []
        for path, label in pictures:
            img = self.image(path, label)
            if img is None:
                return self.missing(path)
            images.append(img)
        return Figure(images, caption, wide)

    def gallery(self, pictures: Sequence[tuple[Path, str]], what: str) -> list[Gallery | Note]:
        """The later samples' figures (``(path, label)``) as thumbnails in one grid, each linked to its figure; then
        a note for each one missing. Empty when there are none."""
        images = [(path, self.image(path, label, small=True)) for path, label in pictures]
        shown = [img for _, img in images if img is not None]
        blocks: list[Gallery | Note] = []
        if shown:
            blocks.append(Gallery(shown, self.t("gallery_caption", what=what, count=len(shown))))
        blocks.extend(self.missing(path) for path, img in images if img is None)
        return blocks

    def role(self, role: str) -> str:
        return self.t(role)

    def split(self, split: str) -> str:
        return self.t(f"split_{split}")

    def term(self, kind: str, value: str) -> str:
        """A value's word in the page's language: the key ``{kind}_{value}`` (``column_mean``, ``drawn_first``,
        ``by_max``), or the value itself where the strings have none (a class name, a column the code adds)."""
        key = f"{kind}_{value}"
        return self.t(key) if key in string_tables()[self.t.language] else str(value)

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
        """The page's sections in order, each that shows one kind of figure saying which (``figures_<id>``: the
        images' alt text, ``weight histogram — conv2d: trained model``)."""
        t = self.t
        model = self.model()
        stats = self.weight_stats()
        index = self.sample_index()
        sections = [
            model,
            self.kernels(stats),
            self.histograms(stats),
            self.filters(stats),
            self.samples(index),
            self.feature_maps(index),
            self.training(),
            self.dataset(),
            Section("analyses", t("analyses_title")),
            self.evaluate(),
            self.examples(),
            self.activation_max(),
            self.gradcam(),
            self.params_section(),
        ]
        for section in sections:
            key = f"figures_{section.id.replace('-', '_')}"
            section.figures = t(key) if key in string_tables()[t.language] else ""
        return sections


def report_page(
    root: Path, params: Mapping[str, Any], language: str, assets: Assets | None = None, stale: Sequence[str] = ()
) -> str:
    """The report of the project at ``root`` as one HTML page, in ``language`` (``report.language``); its images
    go to ``assets`` (by default inline: one file, as large as its figures). ``stale``: the upstream stages DVC
    finds out of date, which a report built on its own reads anyway: a note at the top says so."""
    t = Strings(language)
    sections = Report(root, params, t, assets).sections()
    if stale:
        sections[0].blocks.insert(0, Note(t("stale_upstream", stages=stage_list(stale))))
    return render("report.html.j2", t, t("report_title"), t("report_subtitle"), sections)


def write_report(
    root: Path, params: Mapping[str, Any], language: str, folder: Path, stale: Sequence[str] = ()
) -> tuple[int, int]:
    """Write the report to ``folder`` (the stage: ``outputs/report``): ``index.html`` and its figures' files, all
    at once or nothing (a staged dir renamed into place). Returns the page's bytes and its files' bytes."""
    assets = Assets()
    page = report_page(root, params, language, assets, stale)
    with staged_dir(folder) as out:
        files = assets.write(out)
        (out / paths.REPORT_NAME).write_text(page, encoding="utf-8")
    return len(page.encode("utf-8")), files
