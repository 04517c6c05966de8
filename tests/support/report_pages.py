"""What the report's tests share: a parsed page, tiny PNGs, fabricated analyses, a comparison page of two runs."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

from PIL import Image as PILImage

from convlens.analysis.compare import changed, compare_statistics
from convlens.pipeline import paths
from convlens.report.compare_page import compare_page

ANALYSES = ("evaluate", "examples", "activation-max", "gradcam")


class Page(HTMLParser):
    """What a test needs of a page: section ids, image sources, notes, links, captions, text."""

    def __init__(self, html: str):
        super().__init__()
        self.sections: list[str] = []
        self.images: list[str] = []
        self.links: list[str] = []
        self.notes: list[str] = []
        self.text: list[str] = []
        self._in_note = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append(attrs["id"])
        if tag == "img":
            self.images.append(attrs["src"])
        if tag in ("a", "link"):
            self.links.append(attrs.get("href", ""))
        self._in_note = tag == "p" and attrs.get("class") == "note"

    def handle_endtag(self, tag):
        self._in_note = False

    def handle_data(self, data):
        self.text.append(data)
        if self._in_note:
            self.notes.append(data)

    def section_notes(self, html: str, section: str) -> str:
        """The text of one section (between its <section> tag and the next)."""
        start = html.index(f'<section id="{section}"')
        end = html.find("<section", start + 1)
        return html[start : end if end > 0 else None]


def references(html: str) -> list[str]:
    """Every address an attribute of the page refers to (images, links, forms, posters)."""
    return re.findall(r"""\b(?:src|href|srcset|action|poster)\s*=\s*["']([^"']*)["']""", html)


def assert_offline(html: str, folder: Path | None = None) -> None:
    """The page asks nothing of the network: each reference is an #anchor, a data: PNG, or (with ``folder``, where
    the page lies) a relative path to a file inside ``folder``; no stylesheet fetches anything."""
    refs = references(html)
    assert refs, "the page refers to nothing, not even its own sections"
    outside = []
    for ref in refs:
        if ref.startswith(("#", "data:image/png;base64,")):
            continue
        path = PurePosixPath(unquote(ref))
        inside = folder is not None and not re.match(r"^[a-z][a-z0-9+.-]*:", ref) and not path.is_absolute()
        if not (inside and ".." not in path.parts and (folder / path).resolve().is_relative_to(folder.resolve())):
            outside.append(ref[:80])
        elif not (folder / path).is_file():
            outside.append(f"{ref[:80]} (missing)")
    assert not outside, outside
    # a web address in the text (a param's value) fetches nothing; the one url() is the page's Hangul font, inline
    assert not re.search(r"url\((?!data:font/ttf;base64,[A-Za-z0-9+/=]+\) format)|@import", html)


def png(path: Path, size: tuple[int, int] = (6, 4), value: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.new("RGB", size, (value, 0, 0)).save(path)


def write_sample_stats(root: Path, item: str, per_sample: list[dict]) -> None:
    """``feature_maps@item``'s numbers of each sample (the same for both models), as the stage writes them."""
    path = paths.map_samples(root, item)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({role: per_sample for role in paths.ROLES}), encoding="utf-8")


# gradcam.json's sanity checks per method, as the gradcam stage writes them (the book model's, docs/analyses.md)
SANITY = {
    "gradcam": {"deletion_auc": 0.4917, "spearman": -0.1307, "spearman_nonzero": -0.0712, "tied": 0.6378},
    "integrated_gradients": {"deletion_auc": 0.2481, "spearman": 0.8959, "spearman_nonzero": 0.2702, "tied": 0.4966},
    "occlusion": {"deletion_auc": 0.1993, "spearman": 0.8012, "spearman_nonzero": 0.3871, "tied": 1.0},
    "random": {"deletion_auc": 0.5213},
}


def write_analyses(root: Path, params: dict) -> dict:
    """Tiny files of the shapes docs/contract (issue 12) gives the analyses' outputs."""
    classes = params["data"]["classes"]
    evaluate = {
        role: {"accuracy": acc, "class_accuracy": {c: acc for c in classes}}
        for role, acc in (("trained", 0.9123), ("untrained", 0.0987))
    }
    paths.metrics_dir(root).mkdir(parents=True, exist_ok=True)
    paths.evaluate_metrics(root).write_text(json.dumps(evaluate), encoding="utf-8")
    fed = {"divisor": 255.0, "preprocessing": None, "layer": "conv2d", "silent_channels": 0, "channels": 4}
    fed |= {"split": "test", "images": 2, "suggestion": "raw", "warning": None}  # evaluate's input_range.json
    paths.input_range_path(root).write_text(json.dumps(fed), encoding="utf-8")
    for role in paths.ROLES:
        png(paths.confusion_figure(root, role))
        png(paths.examples_figures_dir(root, role) / paths.examples_figure_name(role, "conv2d"))
        png(paths.activation_max_figures_dir(root, role) / paths.activation_max_figure_name(role, "conv2d"))
    actmax = {
        role: {"conv2d": {"ratio_median": r, "channels": 4}} for role, r in (("trained", 3.25), ("untrained", 1.5))
    }
    paths.activation_max_metrics(root).write_text(json.dumps(actmax), encoding="utf-8")
    for index in (0, 10, 2):
        png(paths.gradcam_figures_dir(root) / paths.gradcam_figure_name(index))
    gradcam = {"samples": {"0": {"spearman": 0.4321, "predicted": 9, "true": 9}}, "median_spearman": 0.2468}
    gradcam["sanity"] = {"split": "test", "images": 200, **SANITY}
    paths.gradcam_metrics(root).write_text(json.dumps(gradcam), encoding="utf-8")
    return {"images": 2 + 2 + 2 + 3}


def comparison_page(tmp_path: Path, language: str = "en") -> tuple[str, bytes, object]:
    """The page of two runs whose untrained seed differs: one statistic and one of two figures changed.

    Returns the HTML, the bytes of the figure both runs share, and the statistics table."""
    table = compare_statistics({("untrained", "conv2d", "std"): 0.21, ("trained", "conv2d", "std"): 0.2}, {
        ("untrained", "conv2d", "std"): 0.19, ("trained", "conv2d", "std"): 0.2})  # fmt: skip
    png(tmp_path / "chart.png")
    png(tmp_path / "a.png", value=10)
    png(tmp_path / "b.png", value=200)
    same = (tmp_path / "a.png").read_bytes()
    figures_a = {"weights/untrained_conv2d_filters.png": same, "weights/trained_conv2d_filters.png": same}
    figures_b = {"weights/untrained_conv2d_filters.png": (tmp_path / "b.png").read_bytes(), **{
        "weights/trained_conv2d_filters.png": same}}  # fmt: skip
    html = compare_page(
        ("HEAD", "seed7"),
        ({"untrained": {"seed": 42}}, {"untrained": {"seed": 7}}),
        table,
        changed(table),
        (tmp_path / "chart.png").read_bytes(),
        (figures_a, figures_b),
        language,
    )
    return html, same, table
