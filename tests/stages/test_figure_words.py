"""The words and numbers of the render stages' titles (outside tester 8): counts written as the page writes them
(``10,000``), and the config values a title names (``render.input_channels``, ``dataset.examples.by``) in the
figure's language, not left in English in a Korean figure."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from convlens.render.language import figure_language
from stages import render_dataset, render_figures

DATASET = {"images": 10000, "split": "test", "examples_by": "max"}


@pytest.mark.parametrize(
    ("lang", "heatmap", "examples"),
    [
        ("en", "conv2d: mean activation per class, 10,000 test images",
         "trained conv2d: each channel's top 9 of 10,000 test images (by max)"),
        ("ko", "conv2d: 클래스별 평균 활성화, 테스트 세트 이미지 10,000개",
         "훈련된 모델 conv2d: 채널마다 테스트 세트 이미지 10,000개 중 상위 9개 (최댓값 기준)"),
    ],
    ids=["en", "ko"],
)  # fmt: skip
def test_the_dataset_titles_write_the_count_with_separators_and_the_ranking_in_the_language(lang, heatmap, examples):
    with figure_language(lang):
        assert render_dataset.heatmap_title("conv2d", DATASET) == heatmap
        assert render_dataset.examples_title("trained", "conv2d", 9, DATASET) == examples


def test_the_examples_title_names_a_mean_ranking_in_korean():
    by_mean = DATASET | {"examples_by": "mean"}
    with figure_language("ko"):
        assert "(평균값 기준)" in render_dataset.examples_title("trained", "conv2d", 9, by_mean)


def test_a_confusion_matrix_title_writes_its_count_with_separators():
    confusion = np.diag([1000] * 10)
    english = "trained: accuracy 1.0000 on 10,000 test images"
    assert render_dataset.confusion_title("trained", confusion, "test") == english
    with figure_language("ko"):
        assert render_dataset.confusion_title("trained", confusion, "test") == (
            "훈련된 모델: 테스트 세트 이미지 10,000개에서 정확도 1.0000"
        )


def _filter_title(monkeypatch, tmp_path, lang: str, mode: str, kernel_shape: tuple[int, ...]) -> str:
    """The title ``draw_kernel`` gives a kernel's filter grid under ``render.input_channels=mode``."""
    titles = []
    monkeypatch.setattr(render_figures, "histogram", lambda *a: None)
    monkeypatch.setattr(render_figures, "mosaic_figure", lambda image, path, cmap, title, *a: titles.append(title))
    r = OmegaConf.create(
        {"hist_bins": 10, "dpi": 20, "filter_columns": None, "filter_vmin": -0.5, "filter_vmax": 0.5,
         "input_channels": mode, "filter_cmap": "gray"}
    )  # fmt: skip
    kernel = np.random.default_rng(0).normal(size=kernel_shape)
    with figure_language(lang):
        render_figures.draw_kernel(tmp_path, "trained", "conv2d", kernel, r)
    (title,) = titles
    return title


@pytest.mark.parametrize(
    ("mode", "shape", "en", "ko"),
    [
        ("first", (3, 3, 2, 4), "(input channels: first, -0.5..0.5)", "(입력 채널: 첫 번째 채널, -0.5..0.5)"),
        ("mean", (3, 3, 2, 4), "(input channels: mean, -0.5..0.5)", "(입력 채널: 모든 채널의 평균, -0.5..0.5)"),
        ("all", (3, 3, 2, 4), "(input channels: all, -0.5..0.5)", "(입력 채널: 모든 채널, -0.5..0.5)"),
        ("auto", (3, 3, 3, 4), "(input channels: rgb, each filter min–max scaled)",
         "(입력 채널: RGB, 필터마다 최솟값–최댓값으로 조정)"),
    ],
    ids=["first", "mean", "all", "auto"],
)  # fmt: skip
def test_a_filter_grid_title_names_its_input_channels_in_the_language(monkeypatch, tmp_path, mode, shape, en, ko):
    assert _filter_title(monkeypatch, tmp_path, "en", mode, shape).endswith(en)
    assert _filter_title(monkeypatch, tmp_path, "ko", mode, shape).endswith(ko)
