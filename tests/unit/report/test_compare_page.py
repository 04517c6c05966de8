"""The comparison page's figures (``python -m convlens compare``): which come full size, in what order, and how the
figures of one run only are listed."""

from __future__ import annotations

import io
from pathlib import Path

from convlens.analysis.compare import changed, compare_statistics
from convlens.pipeline import paths
from convlens.report.assets import FULL_FIGURES
from convlens.report.compare_page import compare_page, differing_figures
from convlens.report.pages import Figure, Gallery

ROOT = Path()


def figure(path: Path) -> str:
    """A figure's name as ``compare`` reads it: its path under ``outputs/figures``."""
    return paths.relative(paths.figures_dir(ROOT), path)


# The figures two training runs (-S model=train) both drew, named as the render stages of dvc.yaml name them.
FILM = paths.film_dir(ROOT)
TRAINING_RUN = [
    figure(paths.class_heatmap(ROOT, "trained", "conv2d")),
    figure(paths.examples_figures_dir(ROOT, "trained") / paths.examples_figure_name("trained", "conv2d")),
    figure(paths.confusion_figure(ROOT, "trained")),
    figure(paths.map_figure(ROOT, "conv2d", "trained", 10)),
    figure(paths.map_figure(ROOT, "conv2d", "trained", 2)),
    figure(FILM / paths.film_filters_name("conv2d")),
    figure(FILM / paths.film_filters_name("conv2d_1")),
    figure(FILM / paths.film_maps_name("conv2d", 0)),
    figure(FILM / paths.LEARNING_CURVES_NAME),
    figure(FILM / paths.film_strip_name("conv2d")),
    figure(paths.gradcam_figures_dir(ROOT) / paths.gradcam_figure_name(0)),
    figure(paths.sample_figure(ROOT, 0)),
    figure(paths.filters_figure(ROOT, "trained", "conv2d")),
    figure(paths.filters_figure(ROOT, "trained", "conv2d_1")),
    figure(paths.histogram(ROOT, "trained", "conv2d")),
    figure(paths.histogram_overlay(ROOT, "conv2d")),
]


def test_the_films_gifs_then_the_chapters_figures_differ_first():
    """Issue: two training runs differ in every figure and the first 8 in path order were all ``dataset/…``, so the
    film's GIFs (which play only full size) and the filter grids ended up thumbnails. Now: the GIFs, the filter
    grids, the histograms, the feature maps, the film's stills, then the rest; numbers in natural order."""
    a = {path: b"A" for path in TRAINING_RUN}
    b = {path: b"B" for path in TRAINING_RUN}
    differ, only, same = differing_figures(a, b)
    assert (only, same) == ([], 0)
    assert differ == [
        "film/conv2d_1_filters.gif",
        "film/conv2d_filters.gif",
        "film/conv2d_maps_0.gif",
        "weights/trained_conv2d_1_filters.png",
        "weights/trained_conv2d_filters.png",
        "weights/conv2d_hist_overlay.png",
        "weights/trained_conv2d_hist.png",
        "feature_maps/conv2d/trained_sample_2.png",
        "feature_maps/conv2d/trained_sample_10.png",
        "film/conv2d_filters_strip.png",
        "film/learning_curves.png",
        "dataset/trained/conv2d_classes.png",
        "dataset/trained/examples/trained_conv2d.png",
        "evaluate/trained/trained_confusion.png",
        "gradcam/sample_0.png",
        "samples/sample_0.png",
    ]


def figures_shown(a: dict[str, bytes], b: dict[str, bytes], monkeypatch) -> list:
    """The blocks of the comparison page's figures section (its other sections and the HTML left out)."""
    from convlens.report import compare_page as module

    monkeypatch.setattr(module, "render", lambda template, t, title, subtitle, sections: sections)
    table = compare_statistics({("untrained", "conv2d", "std"): 0.2}, {("untrained", "conv2d", "std"): 0.2})
    sections = compare_page(("tr1", "tr2"), ({}, {}), table, changed(table), b"chart", (a, b))
    return sections[-1].blocks


def picture(shade: int, suffix: str) -> bytes:
    """A 4×4 gray image as PNG or GIF bytes."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (4, 4), shade).save(out, format=suffix.removeprefix(".").upper())
    return out.getvalue()


def test_the_films_gifs_come_full_size_however_many_dataset_figures_differ(monkeypatch):
    dataset = [f"dataset/trained/examples/trained_conv2d_{i}.png" for i in range(FULL_FIGURES + 2)]
    gif = "film/conv2d_filters.gif"
    a, b = ({path: picture(shade, Path(path).suffix) for path in [*dataset, gif]} for shade in (0, 200))
    blocks = figures_shown(a, b, monkeypatch)
    full = [block for block in blocks if isinstance(block, Figure)]
    assert len(full) == FULL_FIGURES
    assert full[0].caption == f"{gif}: left tr1, right tr2."
    assert [image.src.split(";")[0] for image in full[0].images] == ["data:image/gif"] * 2  # the GIF itself: it plays
    (thumbnails,) = [block for block in blocks if isinstance(block, Gallery)]
    assert len(thumbnails.images) == 2 * 3 and not any(gif in image.alt for image in thumbnails.images)


def test_figures_of_one_run_only_are_counted_by_folder_in_natural_order_and_shown_as_thumbnails(monkeypatch):
    """Outside tester: the note was one paragraph of 145 paths sorted ``sample_1, sample_10, …``, of neither run in
    particular. Now each run's own: by folder with counts, ``sample_2`` before ``sample_10``, the first names of a
    folder and the rest counted, and the most important of them as thumbnails (Grad-CAM where one run ran
    ``analyses=full``)."""
    shared = {"weights/trained_conv2d_filters.png": picture(9, ".png")}
    first = [f"samples/sample_{i}.png" for i in range(20)]
    first += [f"feature_maps/conv2d/trained_sample_{i}.png" for i in range(20)]
    second = ["gradcam/sample_1.png", "gradcam/sample_0.png", "film/conv2d_filters.gif"]
    a = shared | {path: picture(i, Path(path).suffix) for i, path in enumerate(first)}
    b = shared | {path: picture(i, Path(path).suffix) for i, path in enumerate(second)}
    note_a, gallery_a, note_b, gallery_b = figures_shown(a, b, monkeypatch)[1:]
    names = ", ".join(f"trained_sample_{i}.png" for i in range(6))
    samples = ", ".join(f"sample_{i}.png" for i in range(6))
    assert note_a.text == (
        f"Figures in tr1 only (40), by folder: feature_maps/conv2d/ (20): {names}, … and 14 more; "
        f"samples/ (20): {samples}, … and 14 more."
    )
    assert note_b.text == (
        "Figures in tr2 only (3), by folder: film/ (1): conv2d_filters.gif; gradcam/ (2): sample_0.png, sample_1.png."
    )
    assert [image.alt for image in gallery_a.images] == [
        f"tr1: feature_maps/conv2d/trained_sample_{i}.png" for i in range(12)
    ]  # the chapter's feature maps before the samples, and at most 12
    assert [image.alt for image in gallery_b.images] == [f"tr2: {path}" for path in reversed(second)]
    assert gallery_b.caption.startswith("tr2 only, as thumbnails (3 of them, most important first)")
