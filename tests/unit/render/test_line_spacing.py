"""A title of several lines in a Korean figure keeps its lines apart (outside tester 8): NanumGothic's metrics set
them 1 em apart under matplotlib's ``"normal"`` spacing, and a line of Hangul touched the next; English figures
keep matplotlib's spacing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from convlens.render import figures
from convlens.render.language import figure_language, words

DPI = 100


def ink_runs(png) -> list[tuple[int, int]]:
    """The runs of pixel rows with ink (any pixel darker than light gray), top to bottom: one per line of text
    that touches no other."""
    rows = (np.asarray(Image.open(png).convert("L")) < 200).any(axis=1)
    edges = np.flatnonzero(np.diff(np.r_[0, rows.astype(np.int8), 0]))
    return list(zip(edges[::2], edges[1::2], strict=True))


def panel_title() -> str:
    """A Grad-CAM panel's title of three lines (the model, the prediction, its probability), in words' language."""
    t = words()
    predicted = t.term("target", "predicted")
    return t("attribution_panel", model=t.term("model", "untrained"), name="Ankle boot", p="0.97",
             target=predicted, pt="0.97")  # fmt: skip


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_lines_of_a_title_do_not_touch(tmp_path, lang):
    with figure_language(lang):
        fig = figures.new_figure((3.0, 1.0))
        title = panel_title()
        fig.text(0.5, 0.5, title, ha="center", va="center", fontsize=8)
        figures.save_figure(fig, tmp_path / "t.png", DPI)
    assert len(ink_runs(tmp_path / "t.png")) == title.count("\n") + 1


def test_a_wrapped_mosaic_title_in_korean_keeps_its_lines_apart(tmp_path):
    with figure_language("ko") as t:
        title = t("actmax_title", model=t.term("model", "untrained"), layer="conv2d", steps=224)
        title += "\n" + t("actmax_legend", dead_mark="×", dead=1, below_mark="↓", below=1, what="")
        image = np.random.default_rng(0).random((11, 23))
        figures.mosaic_figure(image, tmp_path / "m.png", "gray", title, 4.0, (2, 4), DPI)
    with Image.open(tmp_path / "m.png") as png:  # the title band: the rows above the mosaic
        png.crop((0, 0, png.width, round(figures.TITLE_INCHES * DPI))).save(tmp_path / "band.png")
    assert len(ink_runs(tmp_path / "band.png")) == 2


def test_english_keeps_matplotlibs_line_spacing(tmp_path):
    with figure_language("en"):
        fig = figures.new_figure((3.0, 1.0))
        text = fig.text(0.5, 0.5, "trained\npredicts: Ankle boot", ha="center", va="center")
        figures.save_figure(fig, tmp_path / "t.png", DPI)
    assert text.get_linespacing() == "normal"


@pytest.mark.parametrize("lang", ["en", "ko"])
@pytest.mark.parametrize("rows", [1, 6])
def test_a_gradcam_title_is_clear_of_its_panels_titles(monkeypatch, tmp_path, lang, rows):
    from convlens.render import analyses

    made, real = [], analyses.new_figure
    monkeypatch.setattr(analyses, "new_figure", lambda size: made.append(real(size)) or made[-1])
    heat = np.random.default_rng(0).random((8, 8))
    with figure_language(lang) as t:
        label = t("attribution_row", method="Grad-CAM", target=t.term("target", "true"), name="Dress", rho="0.46")
        row = (label, [(heat, panel_title()), (heat, panel_title())])
        title = analyses.gradcam_title("train", 0, 0, ["T-shirt/top"], "conv2d_1", {"predicted": -0.17, "true": None})
        analyses.attribution_figure(
            heat, [row] * rows, tmp_path / "g.png", title, ("gray", "plasma", 0.6, "shared"), 60
        )
        (fig,) = made
        renderer = fig.canvas.get_renderer()
        top = fig._suptitle.get_window_extent(renderer)
        panels = [ax.title.get_window_extent(renderer) for ax in fig.axes if ax.get_title()]
    assert top.y1 <= fig.bbox.y1 and panels and all(top.y0 > box.y1 for box in panels), (top, panels)
