"""A page that stays light (issue 25 §5): the report's figures are files beside ``index.html``, the later samples'
shown as thumbnails linked to them, so the page does not grow with the figures' bytes and barely with the samples;
every reference is relative and resolves inside the report's folder, wherever it is copied to."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml
from PIL import Image as PILImage

from convlens.analysis.compare import changed, compare_statistics
from convlens.errors import ConvlensError
from convlens.pipeline import paths
from convlens.report import assets as assets_module
from convlens.report.assets import FIGURES, FULL_FIGURES, FULL_SAMPLES, THUMBNAIL_SIZE, THUMBNAILS, Assets, safe_name
from convlens.report.build import report_page, write_report
from convlens.report.compare_page import compare_page, write_page
from tests.support.helpers import PROJECT, full_analyses
from tests.support.report_pages import Page, assert_offline, png, write_sample_stats

LAYER = "conv2d"


@pytest.fixture(scope="module")
def params() -> dict:
    params = yaml.safe_load((PROJECT / "params.yaml").read_text(encoding="utf-8"))
    full = full_analyses()  # Grad-CAM too
    return {**params, "analyses": full, "feature_maps": {**params["feature_maps"], "layers": [LAYER], "each": [LAYER]}}


def noise(path, size: int) -> None:
    """A PNG of random pixels: it does not compress, so its bytes grow with ``size``²."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(size).integers(0, 256, (size, size, 3), dtype=np.uint8)
    PILImage.fromarray(pixels).save(path)


def many_samples(root, count: int, size: int = 8) -> list[int]:
    """A run's per-sample outputs for ``count`` samples: sample images, feature maps of one layer, Grad-CAM."""
    samples = list(range(count))
    paths.sample_index(root).parent.mkdir(parents=True, exist_ok=True)
    index = {"split": "train", "samples": samples, "labels": [s % 10 for s in samples]}
    paths.sample_index(root).write_text(json.dumps(index), encoding="utf-8")
    stats = {"channels": 4, "map_mean": 0.1, "map_fraction_active": 0.5, "dead_channels": 0}
    paths.feature_map_metrics(root).parent.mkdir(parents=True, exist_ok=True)
    metrics = {role: {LAYER: stats} for role in paths.ROLES}
    paths.feature_map_metrics(root).write_text(json.dumps(metrics), encoding="utf-8")
    write_sample_stats(root, LAYER, [stats] * count)
    for sample in samples:
        noise(paths.sample_figure(root, sample), size)
        noise(paths.gradcam_figures_dir(root) / paths.gradcam_figure_name(sample), size)
        for role in paths.ROLES:
            noise(paths.map_figure(root, LAYER, role, sample), size)
    return samples


def per_sample_figures(count: int) -> int:
    return count * (2 + len(paths.ROLES))  # sample image, Grad-CAM, a feature map per model


def test_past_the_first_samples_the_figures_are_thumbnails_linked_to_their_files(tmp_path, params):
    many_samples(tmp_path, FULL_SAMPLES + 3)
    html = report_page(tmp_path, params, "en", Assets())
    page = Page(html)
    assert not [src for src in page.images if src.startswith("data:")]  # no image inline
    full = [src for src in page.images if src.startswith(f"{FIGURES}/")]
    thumbnails = [src for src in page.images if src.startswith(f"{THUMBNAILS}/")]
    assert len(full) == per_sample_figures(FULL_SAMPLES) and len(thumbnails) == per_sample_figures(3)
    assert sorted(link for link in page.links if not link.startswith("#")) == sorted(
        full + [src.replace(THUMBNAILS, FIGURES, 1) for src in thumbnails]
    )  # each figure opens its file, each thumbnail its figure
    later = paths.relative(paths.figures_dir(tmp_path), paths.map_figure(tmp_path, LAYER, "untrained", FULL_SAMPLES))
    assert f'<a href="{FIGURES}/{later}"><img src="{THUMBNAILS}/{later}"' in html
    assert "Sample images: 3 more, as thumbnails" in " ".join(page.text)


def test_the_page_does_not_grow_with_the_figures_and_barely_with_the_samples(tmp_path, params):
    """The page holds no image bytes: the same page for figures of 8 or 200 pixels a side; each sample past the
    first few adds a few hundred bytes of references, so 1,000 samples stay far under 10 MB."""
    small, large = tmp_path / "small", tmp_path / "large"
    many_samples(small, 12, size=8)
    many_samples(large, 12, size=200)
    assert report_page(small, params, "en", Assets()) == report_page(large, params, "en", Assets())
    inline = report_page(large, params, "en")  # the old way: every figure inside the page
    assert len(inline) > 20 * len(report_page(large, params, "en", Assets()))
    sizes = {}
    for count in (100, 1000):
        root = tmp_path / str(count)
        many_samples(root, count)
        sizes[count] = len(report_page(root, params, "en", Assets()).encode("utf-8"))
    per_sample = (sizes[1000] - sizes[100]) / 900
    assert per_sample < 1500  # bytes: references and labels, about 4 figures a sample
    assert sizes[1000] < 2e6


def test_the_report_folder_resolves_wherever_it_is_copied(tmp_path, params):
    root = tmp_path / "project"
    many_samples(root, FULL_SAMPLES + 2, size=400)
    folder = paths.report_dir(root)
    page_bytes, file_bytes = write_report(root, params, "en", folder)
    html = (folder / paths.REPORT_NAME).read_text(encoding="utf-8")
    assert page_bytes == len(html.encode("utf-8")) and file_bytes > 0
    assert_offline(html, folder)
    with pytest.raises(AssertionError):
        assert_offline(html)  # without its folder the page is not whole
    for src in Page(html).images:  # every figure as the stage made it, every thumbnail small
        if src.startswith(f"{FIGURES}/"):
            figure = paths.figures_dir(root) / src.removeprefix(f"{FIGURES}/")
            assert (folder / src).read_bytes() == figure.read_bytes()
        else:
            with PILImage.open(folder / src) as thumb:
                assert max(thumb.size) == THUMBNAIL_SIZE
    copy = tmp_path / "mailed" / "report of run 7"
    shutil.copytree(folder, copy)
    shutil.rmtree(root)  # neither the project nor its outputs are needed any more
    assert_offline((copy / paths.REPORT_NAME).read_text(encoding="utf-8"), copy)


def test_a_report_that_fails_to_write_leaves_the_old_one_whole(tmp_path, params, monkeypatch):
    root = tmp_path / "project"
    many_samples(root, FULL_SAMPLES + 2)
    folder = paths.report_dir(root)
    write_report(root, params, "en", folder)
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    many_samples(root, FULL_SAMPLES + 5)
    calls = []

    def broken(data, size=THUMBNAIL_SIZE):
        calls.append(size)
        if len(calls) > 2:
            raise OSError("disk full")
        return b"thumbnail"

    monkeypatch.setattr(assets_module, "thumbnail", broken)
    with pytest.raises(ConvlensError, match="disk full"):
        write_report(root, params, "en", folder)
    assert {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    assert not [p.name for p in folder.parent.iterdir() if p.name.startswith(".")]  # nothing staged left beside it


def test_a_figure_name_stays_inside_the_folder():
    assert safe_name("feature_maps/conv2d/trained_sample_0.png") == "feature_maps/conv2d/trained_sample_0.png"
    assert safe_name("../../etc/passwd") == "etc/passwd"
    assert safe_name("/abs/x.png") == "abs/x.png"
    with pytest.raises(ValueError):
        safe_name("..")


def comparison(count: int, assets: Assets | None, tmp_path):
    table = compare_statistics({("untrained", "conv2d", "std"): 0.21}, {("untrained", "conv2d", "std"): 0.19})
    png(tmp_path / "chart.png")
    chart = (tmp_path / "chart.png").read_bytes()
    figures = [{}, {}]
    for i in range(count):
        for side, value in enumerate((10, 200)):
            png(tmp_path / "fig.png", size=(300, 30), value=value)
            figures[side][f"feature_maps/conv2d/untrained_sample_{i}.png"] = (tmp_path / "fig.png").read_bytes()
    return compare_page(("HEAD", "seed7"), ({"a": 1}, {"a": 2}), table, changed(table), chart, tuple(figures),
                        "en", assets)  # fmt: skip


def test_the_comparison_page_shows_the_first_figures_that_differ_and_thumbnails_of_the_rest(tmp_path):
    more = 5
    assets = Assets(prefix="HEAD_vs_seed7_files/")
    html = comparison(FULL_FIGURES + more, assets, tmp_path)
    page = Page(html)
    assert len(page.images) == 1 + 2 * (FULL_FIGURES + more) and not [s for s in page.images if "data:" in s]
    thumbnails = [src for src in page.images if f"/{THUMBNAILS}/" in src]
    assert len(thumbnails) == 2 * more
    assert f"{more} more figures that differ, as thumbnails" in " ".join(page.text)
    out = tmp_path / "compare"
    write_page(out / "HEAD_vs_seed7.html", html, assets)
    assert sorted(p.name for p in out.iterdir()) == ["HEAD_vs_seed7.html", "HEAD_vs_seed7_files"]
    assert_offline((out / "HEAD_vs_seed7.html").read_text(encoding="utf-8"), out)
    inline = comparison(FULL_FIGURES + more, None, tmp_path)  # one file: the later figures as small images
    assert len(Page(inline).images) == len(page.images)
    assert_offline(inline)
    with pytest.raises(ValueError, match="folder of their own"):
        write_page(out / "x.html", html, Assets())
