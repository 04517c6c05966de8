"""Figures that do not mislead (issue 27 §5): the class heatmaps' absolute scale, selectivity order and bars, and the
confusion matrix's row shares, read back from the figures drawn and the PNGs written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from markupsafe import escape
from PIL import Image

from convlens.analysis.dataset import selectivity
from convlens.pipeline import paths
from convlens.render import analyses as figures_analyses
from convlens.report.build import report_page
from tests.support.helpers import PROJECT
from tests.support.report_pages import Page, png, write_analyses

CLASSES = ["T-shirt/top", "Trouser", "Ankle boot"]


def pixel(fig, ax, png: np.ndarray, dpi: int, xy: tuple[float, float]) -> np.ndarray:
    """The PNG's RGB at the centre of data cell ``xy`` (column, row) of ``ax``."""
    x, y = ax.transData.transform(xy) * dpi / fig.dpi
    return png[int(png.shape[0] - y), int(x), :3].astype(int)


def heatmap_pixels(drawn, tmp_path, scale: str) -> np.ndarray:
    """A weak channel (0.0044..0.0064) beside a strong one (0..2), in gray_r (0 white), rows in layer order: each
    cell's RGB read back from the PNG, (channels, classes, 3)."""
    means = np.array([[0.0044, 0.0], [0.0054, 1.0], [0.0064, 2.0]])  # classes × channels
    path, style = tmp_path / f"{scale}.png", ("gray_r", scale, "layer")
    figures_analyses.class_heatmaps({"trained": means}, {"trained": selectivity(means)}, CLASSES, path, "t", style, 60)
    fig, _, dpi = drawn[-1]
    with Image.open(path) as image:
        png = np.asarray(image.convert("RGB"))
    return np.array([[pixel(fig, fig.axes[0], png, dpi, (j, i)) for j in range(3)] for i in range(2)])


def test_the_absolute_scale_keeps_a_near_constant_channel_pale(drawn, tmp_path):
    absolute = heatmap_pixels(drawn, tmp_path, "absolute")
    assert absolute[0].min() >= 250  # the weak channel: white, every class (0.0064 of 2 is 0.3 %)
    assert absolute[1, 0].min() >= 250 and absolute[1, 2].max() <= 5  # the strong one: white to black
    assert 100 < absolute[1, 1].mean() < 160  # its middle class, mid grey
    assert drawn[-1][0].axes[0].images[0].get_clim() == (0.0, 2.0)  # one range, in activations
    channel = heatmap_pixels(drawn, tmp_path, "channel")
    assert channel[0, 0].min() >= 250 and channel[0, 2].max() <= 5  # each channel scaled: as dark as the strong one


def test_rows_are_sorted_by_the_selectivity_computed_by_hand_and_drawn_beside_them(drawn, tmp_path):
    means = np.array([[1.0, 0.0, 2.0, 0.0], [1.0, 0.0, 1.0, 0.0], [1.0, 3.0, 0.0, 0.0]])  # classes × channels
    # (top − mean over classes) / top: flat 0; (3 − 1) / 3; (2 − 1) / 2; silent 0
    by_hand = np.array([0.0, 2 / 3, 0.5, 0.0])
    np.testing.assert_allclose(selectivity(means), by_hand)
    style = ("viridis", "absolute", "selectivity")
    figures_analyses.class_heatmaps({"m": means}, {"m": by_hand}, CLASSES, tmp_path / "s.png", "t", style, 30)
    fig, _, _ = drawn[-1]
    heat, bars, _ = fig.axes
    order = [1, 2, 0, 3]  # most selective first; the two zeros in the layer's order
    assert [t.get_text() for t in heat.get_yticklabels()] == [str(c) for c in order]
    np.testing.assert_array_equal(heat.images[0].get_array(), means.T[order])
    assert [p.get_width() for p in bars.patches] == pytest.approx(by_hand[order].tolist())
    assert [p.get_y() + p.get_height() / 2 for p in bars.patches] == [0, 1, 2, 3]  # beside their rows
    assert bars.get_ylim() == heat.get_ylim() and bars.get_xlabel() == "selectivity"
    assert "most selective first" in heat.get_ylabel()


def test_the_layer_order_keeps_the_channels_as_they_are():
    assert figures_analyses.channel_order(np.array([0.1, 0.9, np.nan, 0.5]), "layer").tolist() == [0, 1, 2, 3]
    assert figures_analyses.channel_order(np.array([0.1, 0.9, np.nan, 0.5]), "selectivity").tolist() == [1, 3, 0, 2]


def test_the_confusion_figure_shows_each_rows_shares_beside_the_counts(drawn, tmp_path):
    confusion = np.array([[9, 1, 0], [2, 6, 2], [0, 0, 0]])  # the last class has no image
    figures_analyses.confusion_figure(confusion, CLASSES, tmp_path / "c.png", "test split", "Blues", 20)
    fig, _, _ = drawn[-1]
    counts_ax, shares_ax = fig.axes
    np.testing.assert_array_equal(counts_ax.images[0].get_array(), confusion)
    shares = np.ma.filled(shares_ax.images[0].get_array(), np.nan)
    np.testing.assert_allclose(shares[:2], confusion[:2] / confusion[:2].sum(axis=1, keepdims=True))
    np.testing.assert_allclose(shares[:2].sum(axis=1), [1, 1])
    assert np.isnan(shares[2]).all() and shares_ax.images[0].get_clim() == (0, 1)
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in shares_ax.texts}
    assert texts[(0, 0)] == "0.90" and texts[(1, 1)] == "0.60" and texts[(1, 2)] == "0.20" and texts[(2, 2)] == "–"
    assert "recall" in shares_ax.get_title() and fig.get_suptitle() == "test split"
    assert len(shares_ax.patches) == 3  # the diagonal outlined on both panels


def test_the_absolute_scale_is_one_range_for_both_models(drawn, tmp_path):
    trained, untrained = np.array([[0.0, 4.0], [1.0, 2.0]]), np.array([[0.01, 0.02], [0.0, 0.03]])
    tables = {"trained": trained, "untrained": untrained}
    chosen = {role: selectivity(t) for role, t in tables.items()}
    style = ("viridis", "absolute", "layer")
    figures_analyses.class_heatmaps(tables, chosen, CLASSES[:2], tmp_path / "a.png", "t", style, 30)
    fig, _, _ = drawn[-1]
    left, right = fig.axes[0], fig.axes[3]
    assert left.images[0].get_clim() == right.images[0].get_clim() == (0.0, 4.0)  # the untrained one looks weak
    np.testing.assert_array_equal(right.images[0].get_array(), untrained.T)


@pytest.mark.parametrize(
    ("render", "says"),
    [
        (
            {"heatmap_scale": "absolute", "heatmap_order": "selectivity"},
            ("from 0 to the model's largest class mean", "each model has its own range", "Rows sorted"),
        ),
        ({"heatmap_scale": "channel", "heatmap_order": "layer"}, ("each channel scaled", "the layer's channel order")),
        ({}, ("each channel scaled", "the layer's channel order")),  # a run from before the keys: as it was drawn
    ],
)
def test_the_report_says_how_the_heatmaps_and_the_confusion_matrix_were_drawn(tmp_path, render, says):
    params = yaml.safe_load((PROJECT / "params.yaml").read_text(encoding="utf-8"))
    params = {**params, "render": render}
    write_analyses(tmp_path, params)
    paths.dataset_metrics(tmp_path).write_text(json.dumps({"trained": {"conv2d": {}}}), encoding="utf-8")
    paths.dataset_index(tmp_path).parent.mkdir(parents=True, exist_ok=True)
    index = {"split": "test", "images": 6, "layers": ["conv2d"]}
    paths.dataset_index(tmp_path).write_text(json.dumps(index), encoding="utf-8")
    for role in paths.ROLES:
        png(paths.class_heatmap(tmp_path, role, "conv2d"))
    html = report_page(tmp_path, params, "en")
    dataset, evaluate = Page(html).section_notes(html, "dataset"), Page(html).section_notes(html, "evaluate")
    assert all(str(escape(s)) in dataset for s in says) and "(its top class mean − its mean over all" in dataset
    assert "each row divided by its total" in evaluate and "recall" in evaluate
