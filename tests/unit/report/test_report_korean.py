"""The ``ko`` page writes numbers as a Korean reader does (issue 24 §5): counts with their counter after the noun
(``이미지 10,000개``), percentages without a space (``91.2%``), sizes as ``3×3×1×32``, table headers and values in
Korean where the page names them; the ``en`` page as before. The conventions live in ``convlens.render.formats``."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from convlens.pipeline import paths
from convlens.report.build import report_page
from tests.support.helpers import PROJECT
from tests.support.report_pages import Page, png, write_analyses


@pytest.fixture
def run(tmp_path) -> tuple:
    """A project with the weights' statistics, one layer's dataset statistics and the analyses made."""
    params = yaml.safe_load((PROJECT / "params.yaml").read_text(encoding="utf-8"))
    params["dataset"]["examples"] = {"k": 9, "by": "max"}
    root = tmp_path
    write_analyses(root, params)
    for role, mean in (("trained", -0.01438), ("untrained", 0.005319)):
        stats = {"conv2d": {"shape": "3x3x1x32", "count": 288, "mean": mean, "std": 0.2335, "min": -1.37, "max": 0.36}}
        paths.weight_metrics(root, role, "json").write_text(json.dumps({role: stats}), encoding="utf-8")
        paths.weight_metrics(root, role, "csv").write_text(
            "layer,shape,count,mean,std,min,max\nconv2d,3x3x1x32,288,0.1,0.2,-1.37,0.36\n", encoding="utf-8"
        )
        png(paths.filters_figure(root, role, "conv2d"))
        png(paths.histogram(root, role, "conv2d"))
    png(paths.histogram_overlay(root, "conv2d"))
    summary = {role: {"conv2d": {"data_mean": 0.03, "data_fraction_active": 0.43}} for role in paths.ROLES}
    paths.dataset_metrics(root).write_text(json.dumps(summary), encoding="utf-8")
    index = {"split": "test", "images": 10000, "layers": ["conv2d"]}
    paths.dataset_index(root).parent.mkdir(parents=True, exist_ok=True)
    paths.dataset_index(root).write_text(json.dumps(index), encoding="utf-8")
    for role in paths.ROLES:
        table = paths.dataset_table(root, role, "conv2d")
        table.parent.mkdir(parents=True, exist_ok=True)
        table.write_text("channel,mean,fraction_active,top_image_mean\n0,0.02,0.36,0.066\n", encoding="utf-8")
    return root, params


def shown(html: str) -> str:
    return " ".join(" ".join(Page(html[html.index("<body") : html.index("<script")]).text).split())


def test_the_korean_page_counts_and_percents_as_korean_does(run):
    root, params = run
    text = shown(report_page(root, params, "ko"))
    assert "테스트 세트의 이미지 10,000개를" in text  # a count: the noun, the number with its separators, 개
    assert "필터 32개" in text and "커널 가중치 288개의 히스토그램" in text
    assert "훈련된 모델 91.2%, 훈련하지 않은 모델 9.9%" in text  # the evaluate caption: no space before %
    assert not re.search(r"\d %", text)  # nowhere a spaced percentage
    assert "커널 크기가 3×3×1×32인 필터 32개" in text and "3×3×1×32" in text.split("모델 층 크기")[1]
    assert "그린 입력 채널은 첫 번째 채널입니다" in text  # render.input_channels in words
    assert "활성화의 최댓값이 가장 큰 이미지 9개" in text  # dataset.examples.by in words
    for heading in ("모델 층 크기 개수 평균 표준 편차 최솟값 최댓값", "채널 평균 활성화 비율 최고 이미지의 평균"):
        assert heading in text  # the metrics tables' headers in Korean


def test_the_english_page_keeps_its_conventions(run):
    root, params = run
    text = shown(report_page(root, params, "en"))
    assert "10,000 test images through both models" in text and "32 filters of kernel 3×3×1×32" in text
    assert "trained 91.2 %, untrained 9.9 %" in text
    assert "model layer shape count mean std min max" in text  # the CSV's own column names
    assert "channel mean fraction_active top_image_mean" in text
    assert "input channels drawn: first." in text and "highest max activation" in text
