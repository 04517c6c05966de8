"""The report (outputs/report/index.html) and the comparison page: content, languages, missing inputs, escaping."""

from __future__ import annotations

import importlib
import json
import re
import string

import numpy as np
import pytest
import yaml
from markupsafe import escape

from convlens.analysis.compare import changed, compare_statistics
from convlens.errors import ConvlensError
from convlens.model.archive import Archive
from convlens.pipeline import paths
from convlens.pipeline.config import compose, read_yaml
from convlens.render.language import Strings as FigureStrings
from convlens.report.build import READS, SECTIONS, Report, report_page
from convlens.report.compare_page import changed_params, compare_page, differing_figures
from convlens.report.pages import (
    Figure,
    Image,
    Note,
    Section,
    Strings,
    Table,
    data_uri,
    image,
    inline_code,
    number,
    param_text,
    string_tables,
)
from convlens.report.summary import field_text, model_summary, shape_text
from tests.support.helpers import PROJECT, full_analyses
from tests.support.report_pages import (
    ANALYSES,
    Page,
    assert_offline,
    comparison_page,
    png,
    write_analyses,
    write_sample_stats,
)


@pytest.fixture(scope="module")
def params() -> dict:
    """The project's params with every analysis on (-S analyses=full): these tests build pages of all sections."""
    return with_analyses(yaml.safe_load((PROJECT / "params.yaml").read_text(encoding="utf-8")), "full")


def with_analyses(params: dict, preset: str) -> dict:
    """``params`` with ``-S analyses=PRESET`` as composed (its lists and the deps they set)."""
    from omegaconf import OmegaConf

    return {**params, "analyses": OmegaConf.to_container(compose(PROJECT, [f"analyses={preset}"])["analyses"])}


# -- the strings ---------------------------------------------------------------------------------------------------
def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_key_is_in_both_languages_with_the_same_placeholders():
    tables = string_tables()
    assert set(tables) == {"en", "ko"}
    assert set(tables["en"]) == set(tables["ko"])
    for key in tables["en"]:
        assert placeholders(tables["en"][key]) == placeholders(tables["ko"][key]), key
        assert tables["ko"][key].strip(), key


def test_every_key_the_code_uses_is_in_the_tables():
    sources = sorted((PROJECT / "convlens" / "report").glob("*.py"))
    sources += sorted((PROJECT / "convlens" / "report" / "templates").glob("*.j2"))
    used = {
        k
        for path in sources
        for k in re.findall(r"\bt(?:\.columns)?\(\s*['\"](\w+)['\"]", path.read_text(encoding="utf-8"))
    }
    assert len(used) > 40
    assert used <= set(string_tables()["en"]), used - set(string_tables()["en"])


def test_korean_uses_the_chapters_terms():
    ko = " ".join(string_tables()["ko"].values())
    for term in ("합성곱 층", "특성 맵", "가중치 시각화", "필터", "커널", "훈련하지 않은"):
        assert term in ko, term


def test_strings_fill_placeholders_and_refuse_an_unknown_language():
    t = Strings("en")
    assert t("compare_title", a="HEAD", b="seed7") == "HEAD → seed7: two runs compared"
    assert t.columns("compare_params_columns", a="x", b="y") == ["key", "x", "y"]
    with pytest.raises(ConvlensError, match="no strings for language 'fr'; choose one of en, ko"):
        Strings("fr")


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.0143835, "0.01438"), (-0.014383553, "-0.01438"), (333526, "333,526"), ("18432", "18,432"),
     ("3x3x1x32", "3x3x1x32"), ("", ""), (float("nan"), "–"), (None, "–"), (10000.0, "10,000"), (True, "True"),
     (12345.6, "1.235e+04"), (3.0, "3"), (np.int64(18432), "18,432"), (np.float32(0.25), "0.25"),
     (np.bool_(True), "True"), ("-7", "-7"), ("nan", "–"), ((3, 3), "(3, 3)")],
)  # fmt: skip
def test_numbers_in_captions_and_tables(value, text):
    assert number(value) == text


# -- the report ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("language", ["en", "ko"])
def test_a_run_with_nothing_made_yet_is_a_page_of_notes(tmp_path, params, language):
    """Every section is there; each says what is missing and which stage makes it; no image, no crash."""
    html = report_page(tmp_path, params, language)
    page = Page(html)
    assert page.sections == list(SECTIONS)
    assert page.images == []
    word = {"en": "not run yet", "ko": "아직 실행되지 않음"}[language]
    for section in [s for s in SECTIONS if s not in ("params", "analyses", "training")]:  # training: -S model=train
        assert word in page.section_notes(html, section), section
    assert f'<html lang="{language}">' in html
    t = Strings(language)
    assert page.text.count(t("report_title")) == 2  # <title> and <h1>
    assert t("report_subtitle") in page.text and page.text.count(t("analyses_title")) == 2  # contents, heading
    assert "(stage metrics)" in html or "(metrics 단계)" in html
    assert "untrained.seed" in html  # the params are shown whatever else is missing
    strings = yaml.safe_load(
        (PROJECT / "convlens" / "report" / "templates" / "strings.yaml").read_text(encoding="utf-8")
    )
    keys = {"feature-maps": "maps", "activation-max": "actmax"}
    untrained = inline_code(t("training_title_off", override="-S model=train"))  # the book's model: not trained here
    for section in SECTIONS:  # each under its own title, with its introduction where it has one
        key, shown = keys.get(section, section), page.section_notes(html, section)
        level = 3 if section in ANALYSES else 2  # the analyses are one section's parts
        title = untrained if section == "training" else escape(t(key + "_title"))
        assert f"<h{level}>{title}</h{level}>" in shown, section
        if f"{key}_intro" in strings[language] and section != "training":  # training's: once it has trained
            assert f"<p>{escape(t(key + '_intro'))}</p>" in shown, section


def test_a_missing_output_names_the_stage_of_its_most_specific_folder(tmp_path, params):
    report = Report(tmp_path, params, Strings("en"))
    table = paths.relative(tmp_path, paths.dataset_table(tmp_path, "trained", "conv2d"))
    assert report.missing(paths.dataset_table(tmp_path, "trained", "conv2d")) == Note(
        f"not run yet: {table} is missing; `dvc repro` makes it (stage dataset)"
    )
    assert report.missing(paths.dataset_figures_dir(tmp_path)).text.endswith("(stage render_dataset)")
    for role in paths.ROLES:  # one instance per model draws its own figures
        missing = report.missing(paths.examples_figures_dir(tmp_path, role)).text
        assert missing.endswith(f"(stage render_dataset@{role})")
        assert report.missing(paths.confusion_figure(tmp_path, role)).text.endswith(f"(stage render_dataset@{role})")
    gradcam = report.missing(paths.gradcam_figures_dir(tmp_path)).text
    assert gradcam.endswith("(stage render_gradcam@trained_vs_untrained)")
    assert report.missing(tmp_path / "elsewhere" / "x.png").text.endswith("(stage ?)")
    assert report.missing("outputs/metrics/gradcam.json").text.endswith("(stage gradcam@trained_vs_untrained)")
    assert report.missing(paths.feature_map_metrics(tmp_path), "conv2d") == Note(  # a detail: the stage still named
        "not run yet: outputs/metrics/feature_maps.json (conv2d) is missing; `dvc repro` makes it (stage map_metrics)"
    )
    assert report.layer_names([0, "conv2d"]) == [("0", "0"), ("conv2d", "conv2d")]  # no model read: as configured
    paths.metrics_dir(tmp_path).mkdir(parents=True)
    for role in paths.ROLES:  # the JSON without the CSV stage extract_weights writes beside it
        stats = json.dumps({role: {"conv2d": {"mean": 0.1}}})
        paths.weight_metrics(tmp_path, role, "json").write_text(stats, encoding="utf-8")
    assert report.weight_stats() is None
    assert [report.class_name(i) for i in (0, 9, 10, -1)] == ["0", "9", "10", "-1"]  # no classes.json: the labels
    classes = params["data"]["classes"]
    paths.classes(tmp_path).parent.mkdir(parents=True, exist_ok=True)
    paths.classes(tmp_path).write_text(json.dumps(classes), encoding="utf-8")
    assert [report.class_name(i) for i in (0, 9, 10, -1)] == [classes[0], classes[9], "10", "-1"]


def test_configured_layers_are_named_by_the_model_or_as_configured_when_they_do_not_resolve(
    tmp_path, params, tiny_assets
):
    report = Report(tmp_path, params, Strings("en"))
    report.archive = Archive.read(tiny_assets["model"])
    assert report.layer_names([2, "conv2d"]) == [("2", "conv2d_1"), ("conv2d", "conv2d")]
    assert report.layer_names([0, "conv2d"]) == [("0", "0"), ("conv2d", "conv2d")]  # one layer twice: not resolved


def test_the_feature_maps_of_a_model_the_report_could_not_read_have_no_shape(tmp_path, params):
    params = {**params, "feature_maps": {**params["feature_maps"], "layers": ["conv2d"], "each": ["conv2d"]}}
    stats = {"channels": 32, "map_mean": 0.1, "map_fraction_active": 0.5, "dead_channels": 0}
    paths.metrics_dir(tmp_path).mkdir(parents=True)
    maps = {role: {"conv2d": stats} for role in paths.ROLES}
    paths.feature_map_metrics(tmp_path).write_text(json.dumps(maps), encoding="utf-8")
    write_sample_stats(tmp_path, "conv2d", [stats])
    for role in paths.ROLES:
        png(paths.map_figure(tmp_path, "conv2d", role, 0))
    [figure] = Report(tmp_path, params, Strings("en")).feature_maps({"split": "train", "samples": [0]}).blocks
    assert ": output –. Trained: mean activation 0.1, 50.0 % of activations above zero" in figure.caption


def test_each_feature_map_caption_gives_its_own_images_numbers_not_those_of_all_samples(tmp_path, params):
    params = {**params, "feature_maps": {**params["feature_maps"], "layers": ["conv2d"], "each": ["conv2d"]}}
    paths.metrics_dir(tmp_path).mkdir(parents=True)
    over_all = {"channels": 32, "map_mean": 0.25, "map_fraction_active": 0.5, "dead_channels": 0}
    paths.feature_map_metrics(tmp_path).write_text(
        json.dumps({r: {"conv2d": over_all} for r in paths.ROLES}), encoding="utf-8"
    )
    own = [{**over_all, "map_mean": 0.125, "map_fraction_active": 0.375}, {**over_all, "map_mean": 0.375}]
    write_sample_stats(tmp_path, "conv2d", own)
    for role in paths.ROLES:
        for sample in (4, 9):
            png(paths.map_figure(tmp_path, "conv2d", role, sample))
    blocks = Report(tmp_path, params, Strings("en")).feature_maps({"split": "train", "samples": [4, 9]}).blocks
    assert [block.caption.split(". Untrained")[0] for block in blocks] == [
        "conv2d, training image 4: output –. Trained: mean activation 0.125, 37.5 % of activations above zero, "
        "0 of 32 channels never fire",
        "conv2d, training image 9: output –. Trained: mean activation 0.375, 50.0 % of activations above zero, "
        "0 of 32 channels never fire",
    ]


def test_feature_maps_without_each_samples_numbers_are_a_note_naming_the_file_and_its_stage(tmp_path, params):
    params = {**params, "feature_maps": {**params["feature_maps"], "layers": ["conv2d"], "each": ["conv2d"]}}
    stats = {"channels": 32, "map_mean": 0.1, "map_fraction_active": 0.5, "dead_channels": 0}
    paths.metrics_dir(tmp_path).mkdir(parents=True)
    paths.feature_map_metrics(tmp_path).write_text(
        json.dumps({r: {"conv2d": stats} for r in paths.ROLES}), encoding="utf-8"
    )
    [note] = Report(tmp_path, params, Strings("en")).feature_maps({"split": "train", "samples": [0]}).blocks
    assert isinstance(note, Note) and "outputs/feature_maps/conv2d/samples.json" in note.text
    assert "(stage feature_maps)" in note.text


def test_a_figure_embeds_its_images_with_their_labels_or_is_the_note_of_the_first_missing(tmp_path, params):
    report = Report(tmp_path, params, Strings("en"))
    a, b = (paths.weight_figures_dir(tmp_path) / name for name in ("a.png", "b.png"))
    png(a)
    shown = report.figure([(a, "trained")], "the filters")
    assert shown == Figure([Image(data_uri(a.read_bytes()), "trained")], "the filters")
    missing = report.figure([(a, "a"), (b, "b")], "x")
    assert missing == report.missing(b)
    assert missing.text.startswith("not run yet: outputs/figures/weights/b.png is missing")


def test_the_analyses_are_shown_when_their_outputs_exist(tmp_path, params):
    params = {**params, "dataset": {**params["dataset"], "examples": {"k": 9, "by": "max"}}}
    expected = write_analyses(tmp_path, params)
    html = report_page(tmp_path, params, "en")
    page = Page(html)
    assert len(page.images) == expected["images"]
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    for section in ANALYSES:
        assert "not run yet" not in page.section_notes(html, section), section
    text = " ".join(page.text)
    assert "trained 91.2 %, untrained 9.9 %" in text  # accuracy, from evaluate.json
    evaluate = page.section_notes(html, "evaluate")
    assert all(f"<td>{escape(c)}</td>" in evaluate for c in params["data"]["classes"])  # a row per class
    assert "median ratio of its activation to the best real image's: 3.25" in text
    assert "the 9 images of the split with the highest max activation" in text
    assert "samples.0.spearman" in text and "0.4321" in text and "median_spearman" in text  # in the numbers' table
    gradcam = page.section_notes(html, "gradcam")
    assert gradcam.index("Sample 2:") < gradcam.index("Sample 10:")  # numeric order
    assert "not run yet" in page.section_notes(html, "model")  # the core stages have not run here
    summary = {"trained": {"conv2d": {"data_selectivity": 0.5}}}
    paths.dataset_metrics(tmp_path).write_text(json.dumps(summary), encoding="utf-8")
    index = {"split": "test", "images": 6, "layers": ["conv2d"]}
    paths.dataset_index(tmp_path).parent.mkdir(parents=True)
    paths.dataset_index(tmp_path).write_text(json.dumps(index), encoding="utf-8")
    dataset = page.section_notes(report_page(tmp_path, params, "en"), "dataset")  # without its per-channel tables
    for role in paths.ROLES:
        assert f"{paths.relative(tmp_path, paths.dataset_table(tmp_path, role, 'conv2d'))} is missing" in dataset
    paths.activation_max_metrics(tmp_path).unlink()  # figures without their metrics
    actmax = page.section_notes(report_page(tmp_path, params, "en"), "activation-max")
    assert "outputs/metrics/activation_max.json is missing" in actmax and "<img" in actmax


def sanity_table(root, params, language: str) -> Table:
    """The attribution section's table of the sanity checks (its header: ``sanity_columns``)."""
    t = Strings(language)
    blocks = Report(root, params, t).gradcam().blocks
    [table] = [b for b in blocks if isinstance(b, Table) and b.columns == t.columns("sanity_columns")]
    return table


def cell_value(cell: str) -> float | None:
    """A cell of the sanity table as the number it shows (a percentage as a fraction); None for ``–``."""
    if cell == "–":
        return None
    return float(cell.removesuffix("%").strip()) / 100 if cell.endswith("%") else float(cell)


@pytest.mark.parametrize("language", ["en", "ko"])
def test_the_sanity_checks_are_a_table_of_each_methods_numbers_read_out_in_both_languages(tmp_path, params, language):
    """Outside tester: integrated gradients' ρ 0.8959 over every pixel was only in the folded key/value table, where
    it read as a failed randomization test; each method's ρ over the lit pixels, ties and deletion AUC beside it,
    the random order's AUC last, and how to read them, in the page's language."""
    write_analyses(tmp_path, params)
    sanity = json.loads(paths.gradcam_metrics(tmp_path).read_text(encoding="utf-8"))["sanity"]
    table = sanity_table(tmp_path, params, language)
    assert not table.folded
    figures = FigureStrings(language)  # the methods named as the figures name them
    methods = [m for m in sanity if isinstance(sanity[m], dict) and m != "random"]
    names = [figures.term("method", m) for m in methods]
    assert [row[0] for row in table.rows] == [*names, Strings(language)("sanity_random")]
    keys = ("spearman", "spearman_nonzero", "tied", "deletion_auc")
    for row, method in zip(table.rows, [*methods, "random"], strict=True):  # 4 digits; ties to 0.1 %
        numbers = [row[1], row[2], row[3], row[5]]  # row[4]: the verdict, '–' where the file has none
        assert [cell_value(c) for c in numbers] == [pytest.approx(sanity[method].get(k), abs=5e-4) for k in keys]
    html = report_page(tmp_path, params, language)
    gradcam = Page(html).section_notes(html, "gradcam")
    caption = escape(table.caption)
    assert f'<p class="caption">{caption}</p>' in gradcam and "<details><summary>" + caption not in gradcam
    said = {
        "en": ("<td>integrated gradients</td>", "ρ over every pixel counts the ties as agreement", "200 test images"),
        "ko": ("<td>통합 그레이디언트</td>", "0이 아닌 픽셀의 ρ를 읽으세요", "테스트 세트의 이미지 200개"),
    }
    assert all(words in gradcam for words in said[language])


def test_a_sanity_check_a_method_lacks_is_a_dash_and_no_checks_no_table(tmp_path, params):
    write_analyses(tmp_path, params)
    path = paths.gradcam_metrics(tmp_path)
    record = json.loads(path.read_text(encoding="utf-8"))
    record["sanity"]["saliency"] = {"deletion_auc": 0.47}  # deletion only: no cascade for it
    path.write_text(json.dumps(record), encoding="utf-8")
    rows = {row[0]: row[1:] for row in sanity_table(tmp_path, params, "en").rows}
    assert rows["saliency"] == ["–", "–", "–", "–", "0.47"]
    assert rows["random order"] == ["–", "–", "–", "–", "0.5213"] and list(rows)[-1] == "random order"  # last
    record["sanity"] = {"split": "test", "images": 0}  # attribution.sanity_images=0
    path.write_text(json.dumps(record), encoding="utf-8")
    blocks = Report(tmp_path, params, Strings("en")).gradcam().blocks
    assert [b.caption for b in blocks if isinstance(b, Table)] == [
        f"Grad-CAM numbers (from {paths.relative(tmp_path, path)})"
    ]


def test_each_methods_verdict_and_the_images_its_medians_rest_on_are_on_the_page(tmp_path, params):
    """Outside tester: the randomization check never said pass or fail (ρ 1.00 everywhere read as nothing), and
    "images": 200 hid the images whose ρ was undefined; one sample must not read as a pass."""
    write_analyses(tmp_path, params)
    path = paths.gradcam_metrics(tmp_path)
    record = json.loads(path.read_text(encoding="utf-8"))
    record["sanity"]["max_rho"] = 0.5
    record["sanity"]["gradcam"] |= {"spearman_images": 200, "spearman_nonzero_images": 180, "passes": 1}
    record["sanity"]["integrated_gradients"] |= {"spearman_images": 200, "spearman_nonzero_images": 200, "passes": 0}
    record["sanity"]["occlusion"] |= {"spearman_images": 7, "spearman_nonzero_images": 7, "passes": None}
    record["spearman"] = {"median": {"predicted": -0.28, "true": -0.28}, "defined": {"predicted": 1, "true": 1}}
    record["spearman"]["sample_0"] = {"predicted": -0.28, "true": -0.28}
    record["passes"] = {"predicted": None, "true": None}
    path.write_text(json.dumps(record), encoding="utf-8")
    table = sanity_table(tmp_path, params, "en")
    rows = {row[0]: row[1:] for row in table.rows}
    assert rows["Grad-CAM"][:2] == ["-0.1307", "-0.0712 (180 / 200)"] and rows["Grad-CAM"][3] == "passes"
    assert rows["integrated gradients"][1] == "0.2702" and rows["integrated gradients"][3] == "fails"
    assert rows["occlusion"][:2] == ["0.8012 (7 / 200)", "0.3871 (7 / 200)"]
    assert rows["occlusion"][3] == "too few images to decide" and rows["random order"][3] == "–"
    assert "at most 0.5 (attribution.sanity_max_rho)" in table.caption and "Under 10 images" in table.caption
    html = report_page(tmp_path, params, "en")
    gradcam = Page(html).section_notes(html, "gradcam")
    assert "Too few samples to decide whether Grad-CAM passes: a verdict needs at least 10" in gradcam
    record["passes"] = {"predicted": 0, "true": 1}
    path.write_text(json.dumps(record), encoding="utf-8")
    html = report_page(tmp_path, params, "ko")
    assert "예측 클래스는 실패, 실제 클래스는 통과" in Page(html).section_notes(html, "gradcam")


def test_what_the_page_shows_is_escaped(tmp_path, params):
    params = {
        **params,
        "data": {**params["data"], "classes": ["<script>alert(1)</script>", *params["data"]["classes"][1:]]},
    }
    paths.samples_dir(tmp_path).mkdir(parents=True)
    paths.sample_index(tmp_path).write_text(
        json.dumps({"split": "train", "samples": [0], "labels": [0]}), encoding="utf-8"
    )
    html = report_page(tmp_path, params, "en")
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_shape_reads_as_keras_prints_it_and_an_image_is_embedded_with_its_label(tmp_path):
    assert [shape_text(s) for s in [(None, 26, 26, 32), (None, 10), None]] == ["(None, 26, 26, 32)", "(None, 10)", "–"]
    png(tmp_path / "a.png")
    shown = image(tmp_path / "a.png", "filters of conv2d")
    assert shown == Image(data_uri((tmp_path / "a.png").read_bytes()), "filters of conv2d")
    assert image(tmp_path / "missing.png", "x") is None


def test_model_summary_is_what_keras_says(tiny_assets):
    """Layers, output shapes and parameter counts as Keras's model.summary() gives them, without TensorFlow."""
    from convlens.model.keras_models import keras

    model = keras.models.load_model(tiny_assets["model"])
    rows = model_summary(Archive.read(tiny_assets["model"]))
    assert [(r.name, r.kind) for r in rows] == [(layer.name, type(layer).__name__) for layer in model.layers]
    assert [r.output_shape for r in rows] == [tuple(layer.output.shape) for layer in model.layers]
    assert [r.params for r in rows] == [layer.count_params() for layer in model.layers]
    assert sum(r.params for r in rows) == model.count_params()
    fields = {r.name: field_text(r.field, "whole") for r in rows}  # the tiny model: the book's layers, fewer filters
    assert fields == {
        "conv2d": "3×3", "max_pooling2d": "4×4", "conv2d_1": "8×8", "max_pooling2d_1": "10×10",
        "flatten": "whole", "dense": "whole",
    }  # fmt: skip


DRAWN_PER_MODEL = (("dataset", ""), ("dataset", "/examples"), ("evaluate", ""))  # render_dataset@<model>'s folders


def test_the_report_of_a_tiny_run(project, run_pipeline):
    """The stage in the pipeline, as dvc repro runs it: every figure the run made is on the page, with its numbers."""
    run_pipeline(project)
    html = paths.report_page(project).read_text(encoding="utf-8")
    page = Page(html)
    assert page.sections == list(SECTIONS)
    figures = sorted(paths.figures_dir(project).rglob("*.png"))
    folders = {p.parent.relative_to(paths.figures_dir(project)).as_posix() for p in figures}
    per_model = {f"{kind}/{role}{sub}" for kind, sub in DRAWN_PER_MODEL for role in paths.ROLES}  # render_dataset@
    assert {"weights", "samples", "feature_maps/conv2d", *per_model} <= folders
    # each figure is on the page: a file in the report's folder with the figure's bytes, by a relative path
    folder = paths.report_dir(project)
    assert_offline(html, folder)
    assert not [src for src in page.images if src.startswith("data:")]  # the page holds no image bytes
    shown = {(folder / ref).read_bytes() for ref in page.images + page.links if not ref.startswith("#")}
    assert {p.read_bytes() for p in figures} <= shown
    filters = page.section_notes(html, "filters")  # issue 24 §5: one grid under the other, full width, linked
    linked = re.findall(r'<a href="([^"]+)"><img src="([^"]+)"', filters)
    assert 'class="panes wide"' in filters and len(linked) == 4 and all(href == src for href, src in linked)
    assert "panes wide" not in page.section_notes(html, "feature-maps")  # the others stay side by side
    stages = yaml.safe_load((PROJECT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    missing = [s for s in ("dataset", "activation_max", "gradcam") if s not in stages]
    assert len(page.notes) == len(missing)  # only analyses whose stage is not in dvc.yaml are missing, a note each
    notes = " ".join(page.notes)
    assert all(f"(stage {s})" in notes for s in missing)
    if "gradcam" in stages:  # its randomization test read out under the figure, and over the samples
        gradcam = json.loads(paths.gradcam_metrics(project).read_text(encoding="utf-8"))["spearman"]
        own, median = gradcam["sample_0"], gradcam["median"]
        said = f"predicted class {number(own['predicted'])}, true class {number(own['true'])}. A ρ near 0"
        assert said in " ".join(page.text)
        assert f"median ρ {number(median['predicted'])} for the predicted class (over the" in " ".join(page.text)
    weights = json.loads(paths.weight_metrics(project, "trained", "json").read_text(encoding="utf-8"))
    mean = weights["trained"]["conv2d"]["mean"]
    assert f"conv2d: trained mean {number(mean)}" in " ".join(page.text)
    maps = json.loads(paths.feature_map_metrics(project).read_text(encoding="utf-8"))
    assert f"mean activation {number(maps['trained']['conv2d_1']['map_mean'])}" in " ".join(page.text)
    assert "(None, 14, 14, 8)" in html  # conv2d_1's output shape (the tiny model's 8 filters)
    shown = " ".join(" ".join(Page(html[html.index("<body") : html.index("<script")]).text).split())
    shown = re.sub(r"\(None(, \d+)*\)", "(shape)", shown)  # Keras's output shapes start with None
    assert not re.findall(r".{30}(?:\bNone\b|\?|XX|\{\w+\}).{30}", shown)  # every value filled in, every title
    rows = model_summary(Archive.read(paths.model_path(project, "trained")))
    layers = {r.name for r in rows}
    total = sum(r.params for r in rows)
    assert f"{len(rows)} layers, {total:,} parameters in all; input (shape)." in shown
    tables = shown.count("channel mean fraction_active max top_image_mean selectivity")  # per-channel headers
    assert tables == 2 * len(json.loads(paths.dataset_index(project).read_text(encoding="utf-8"))["layers"])
    kernels = re.findall(r"(\S+): (\d+) filters of kernel \d+×\d+×\d+×(\d+)", shown)
    assert [k for k in kernels if k[1] != k[2]] == [] and {k[0] for k in kernels} == {"conv2d", "conv2d_1"}
    per_model = re.findall(r"(\S+), (\S+) model: for each channel, (?:the|an)", shown)
    assert len(per_model) >= 12  # dataset examples (4 layers), activation maximization (2), each model
    assert {(layer in layers, role) for layer, role in per_model} == {(True, "trained"), (True, "untrained")}
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)


def test_the_stage_writes_korean_when_asked(project, tmp_path):
    """``python -m stages.report report.language=ko`` (standalone override) with nothing else made yet."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "stages.report", "report.language=ko"], cwd=project, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "outputs/report/index.html" in done.stdout and "Traceback" not in done.stderr
    html = paths.report_page(project).read_text(encoding="utf-8")
    assert '<html lang="ko">' in html and "특성 맵" in html and "훈련하지 않은 모델" in html
    assert read_yaml(project / "params.yaml")["report"]["language"] == "ko"


def test_the_report_depends_on_every_output_it_reads_that_a_stage_makes():
    """Once a stage that makes something the report reads is in dvc.yaml (issue 12's analyses), the report must
    list it as a dep, or DVC would keep a stale page."""
    stages = yaml.safe_load((PROJECT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]

    def outs(body: dict) -> list[str]:
        body = body.get("do", body)
        return [o if isinstance(o, str) else next(iter(o)) for o in [*body.get("outs", []), *body.get("metrics", [])]]

    made = {out for name, body in stages.items() if name != "report" for out in outs(body)}
    film = read_yaml(PROJECT / "conf" / "model" / "train.yaml")["film"]  # ${model.film} with -S model=train
    full = full_analyses()  # ${analyses.…} with -S analyses=full
    opt_in = {"${model.film}": film, **{f"${{analyses.{key}}}": value for key, value in full.items()}}
    deps = [opt_in.get(d, d) for d in stages["report"]["deps"]]
    for path in READS:
        overlaps = [o for o in made if o == path or o.startswith(f"{path}/") or path.startswith(f"{o}/")]
        if overlaps:
            assert any(path == d or path.startswith(f"{d}/") for d in deps), f"report: add {path} to its deps"
    assert set(deps) - {
        "stages/report.py",
        "stages/__init__.py",
        "convlens",
        "outputs/checked_config.txt",
        "params.yaml",
    } <= set(READS)
    assert stages["report"]["params"] == ["report"] and "params.yaml" in stages["report"]["deps"]


def test_analyses_left_out_by_the_default_say_how_to_opt_in_even_beside_older_outputs(tmp_path, params):
    """analyses=light (the default): no activation maximization or attribution section, however many figures an
    earlier -S analyses=full left in the workspace; each says how to turn it on."""
    write_analyses(tmp_path, params)  # an earlier full run's figures and numbers
    light = with_analyses(params, "light")
    assert light["analyses"]["activation_max"] == light["analyses"]["attribution"] == []
    html = report_page(tmp_path, light, "en")
    for section in ("activation-max", "gradcam"):
        text = Page(html).section_notes(html, section)
        assert "dvc exp run -S analyses=full" in text and "<img" not in text and "<table" not in text, section
    html = report_page(tmp_path, params, "en")
    assert "<img" in Page(html).section_notes(html, "gradcam")


def test_report_language_is_checked(project):
    with pytest.raises(ConvlensError, match="report.language"):
        compose(project, ["report.language=fr"])


# -- the comparison page -------------------------------------------------------------------------------------------
def test_the_recipe_of_a_model_not_trained_here_is_no_change():
    """outside tester 7 F3: the book's run against one trained here: train.epochs is the trained run's choice only
    (–), as in the experiments table; model.path, null against the path model=train pins, is no row."""
    book = {"model": {"name": "book", "path": None, "train_runs": []}, "train": {"epochs": 20, "seed": 0}}
    here = {"model": {"name": "train", "path": "outputs/train/model.keras", "train_runs": ["trained"]},
            "train": {"epochs": 1, "seed": 0}}  # fmt: skip
    assert changed_params(book, here) == [
        ("model.name", "book", "train"),
        ("model.train_runs", [], ["trained"]),
        ("train.epochs", "–", 1),
        ("train.seed", "–", 0),
    ]
    assert changed_params(book, {**book, "train": {"epochs": 3, "seed": 0}}) == []  # neither trained here


def test_changed_params_and_differing_figures():
    a = {"untrained": {"seed": 42}, "samples": {"indices": [0]}, "report": {"language": "en"}}
    b = {"untrained": {"seed": 7}, "samples": {"indices": [0]}, "render": {"dpi": 50}}
    assert changed_params(a, b) == [
        ("untrained.seed", 42, 7),
        ("report.language", "en", None),
        ("render.dpi", None, 50),
    ]
    assert changed_params(a, a) == []
    differ, only, same = differing_figures(
        {"x.png": b"1", "y.png": b"2", "a.png": b"3"}, {"x.png": b"1", "y.png": b"3", "b.png": b"0"}
    )
    assert (differ, only, same) == (["y.png"], ["a.png", "b.png"], 1)


@pytest.mark.parametrize("language", ["en", "ko"])
def test_the_comparison_page(tmp_path, language):
    html, same, table = comparison_page(tmp_path, language)
    page = Page(html)
    assert page.sections == ["params", "statistics", "figures"]
    assert Strings(language)("report_subtitle") in page.text
    assert len(page.images) == 3  # the chart, then the one figure that differs, twice
    text = " ".join(page.text)
    assert "untrained.seed" in text and "42" in text and "7" in text
    assert "weights/untrained_conv2d_filters.png" in text and "weights/trained_conv2d_filters.png" not in text
    assert "0.19" in text and "-0.09524" in text  # the changed statistic and its relative change
    unreadable = compare_page(("HEAD", "x"), ({}, {}), table.head(0), table.head(0), same, ({}, "no cache"), language)
    assert "no cache" in " ".join(Page(unreadable).notes)


SEEDS = ({"untrained": {"seed": 42}}, {"untrained": {"seed": 7}})


def compare_sections(monkeypatch, figures, params=SEEDS):
    """What ``compare_page`` puts on the page (its sections and title), without the HTML around them."""
    from convlens.report import compare_page as module

    monkeypatch.setattr(module, "render", lambda template, t, title, subtitle, sections: (title, sections))
    table = compare_statistics({("untrained", "conv2d", "std"): 0.21, ("trained", "conv2d", "std"): 0.2}, {
        ("untrained", "conv2d", "std"): 0.19, ("trained", "conv2d", "std"): 0.2})  # fmt: skip
    return compare_page(("HEAD", "seed7"), params, table, changed(table), b"chart", figures)


def test_the_comparison_page_holds_each_change_labelled_with_its_run(monkeypatch):
    figures = {"weights/a.png": b"A", "weights/b.png": b"B", "weights/c.png": b"C"}
    title, (params, statistics, shown) = compare_sections(
        monkeypatch, (figures, {**figures, "weights/b.png": b"b", "weights/c.png": b"c"})
    )
    assert title == "HEAD → seed7: two runs compared"
    assert params == Section(
        "params", "Changed params", blocks=[Table(["key", "HEAD", "seed7"], [["untrained.seed", "42", "7"]])]
    )
    assert statistics == Section("statistics", "Changed statistics", blocks=[
        Figure([Image(data_uri(b"chart"), "HEAD → seed7")],
               "1 of 2 statistics in both runs changed (relative change, bars clipped at ±100 %)."),
        Table(["model", "layer", "statistic", "HEAD", "seed7", "change", "relative change"],
              [["untrained", "conv2d", "std", "0.21", "0.19", "-0.02", "-0.09524"]]),
    ])  # fmt: skip
    assert shown == Section("figures", "Figures that differ", blocks=[
        Figure([Image(data_uri(b"B"), "HEAD: weights/b.png"), Image(data_uri(b"b"), "seed7: weights/b.png")],
               "weights/b.png: left HEAD, right seed7."),
        Figure([Image(data_uri(b"C"), "HEAD: weights/c.png"), Image(data_uri(b"c"), "seed7: weights/c.png")],
               "weights/c.png: left HEAD, right seed7."),
    ])  # fmt: skip


def test_the_comparison_page_says_what_did_not_change_or_could_not_be_read(monkeypatch):
    figures = {"weights/a.png": b"A", "weights/b.png": b"B"}
    _, (params, _, shown) = compare_sections(monkeypatch, (figures, figures), params=({"a": 1}, {"a": 1}))
    assert params.blocks == [Note("No param differs.")]
    assert shown.blocks == [Note("No figure differs (2 figures are the same in both runs).")]
    _, (_, _, shown) = compare_sections(monkeypatch, ("no cache", figures))
    assert shown.blocks == [Note("The figures of HEAD are not available (no cache); dvc pull, or run it again.")]
    _, (_, _, shown) = compare_sections(monkeypatch, (figures, "gone"))
    assert shown.blocks == [Note("The figures of seed7 are not available (gone); dvc pull, or run it again.")]


def test_a_param_shows_as_params_yaml_writes_it_inline():
    long = [f"block_{i}/conv" for i in range(40)]
    assert [param_text(v) for v in (42, None, 0.5, "데이터", ["conv2d", "conv2d_1"], {"k": [1, 2]})] == [
        "42", "null", "0.5", "데이터", "[conv2d, conv2d_1]", "{k: [1, 2]}"
    ]  # fmt: skip
    assert param_text(long) == "[" + ", ".join(long) + "]"  # one line, however long


def test_a_param_one_run_lacks_differs_from_one_set_to_none():
    assert changed_params({"a": None}, {}) == [("a", None, None)]
    assert changed_params({}, {"a": None}) == [("a", None, None)]


@pytest.mark.slow
def test_compare_writes_a_page_of_two_runs(good_repo):
    """``python -m convlens compare HEAD <experiment>`` on the tiny run: the changed param, no changed statistic, and
    exactly the figures that param changed, side by side (HEAD's read from DVC's cache)."""
    from tests.support.dvc_repo import DVC, dvc, sh

    root, env = good_repo
    dvc(root, env, "exp", "run", "-n", "gray", "-S", "render.filter_cmap=gray")
    out = sh(root, DVC[0], "-m", "convlens", "compare", "HEAD", "gray", env=env)
    assert "wrote HEAD_vs_gray.csv, .png, .html and HEAD_vs_gray_files/" in out
    html = (paths.compare_dir(root) / "HEAD_vs_gray.html").read_text(encoding="utf-8")
    page = Page(html)
    text = " ".join(page.text)
    assert "render.filter_cmap" in text and "viridis" in text and "gray" in text
    assert "untrained.seed" not in text  # unchanged params are not listed
    assert "0 of " in text  # no statistic changed
    filters = [f"weights/{role}_{layer}_filters.png" for role in paths.ROLES for layer in ("conv2d", "conv2d_1")]
    shown = re.findall(r"(\S+\.png): left HEAD, right gray", text)
    assert sorted(shown) == sorted(filters)
    assert len(page.images) == 1 + 2 * len(filters)  # the chart, then each figure twice


def test_a_class_with_no_image_shows_as_a_dash():
    """``evaluate.json`` holds null for a class with no image (tiny splits): the report shows ``–``, not a crash."""
    from convlens.report.pages import percent

    assert percent(None) == "–" and percent(0.5) == "50.0 %"


@pytest.mark.parametrize(
    ("mode", "shape", "drawn"),
    [("auto", "3x3x1x32", "first"), ("auto", "3x3x3x8", "rgb"), ("mean", "3x3x32x64", "mean")],
)
def test_the_filter_caption_names_the_input_channel_mode_each_kernel_was_drawn_in(tmp_path, params, mode, shape, drawn):
    """``render.input_channels: auto`` is drawn as ``rgb`` or ``first`` by kernel: the caption says which."""
    from PIL import Image

    params = {**params, "render": {**params["render"], "input_channels": mode}}
    paths.metrics_dir(tmp_path).mkdir(parents=True)
    paths.weight_figures_dir(tmp_path).mkdir(parents=True)
    for role in paths.ROLES:
        paths.weight_metrics(tmp_path, role, "json").write_text(json.dumps({role: {"c": {}}}), encoding="utf-8")
        paths.weight_metrics(tmp_path, role, "csv").write_text(f"layer,shape\nc,{shape}\n", encoding="utf-8")
        Image.new("RGB", (4, 4)).save(paths.filters_figure(tmp_path, role, "c"))
    report = Report(tmp_path, params, Strings("en"))
    [figure] = report.filters(report.weight_stats()).blocks
    assert f"input channels drawn: {drawn}." in figure.caption


def test_a_depthwise_kernels_caption_counts_its_filters_of_every_input_channel(tmp_path, params):
    """outside tester 3 #3: "dw: 1 filters of kernel 3×3×16×1" for a DepthwiseConv2D of 16 channels."""
    from types import SimpleNamespace

    from PIL import Image

    from convlens.model.layers import LayerInfo

    paths.metrics_dir(tmp_path).mkdir(parents=True)
    paths.weight_figures_dir(tmp_path).mkdir(parents=True)
    for role in paths.ROLES:
        paths.weight_metrics(tmp_path, role, "json").write_text(json.dumps({role: {"dw": {}}}), encoding="utf-8")
        paths.weight_metrics(tmp_path, role, "csv").write_text("layer,shape\ndw,3x3x16x1\n", encoding="utf-8")
        Image.new("RGB", (4, 4)).save(paths.filters_figure(tmp_path, role, "dw"))
    report = Report(tmp_path, params, Strings("en"))
    report.archive = SimpleNamespace(layers=[LayerInfo(1, "dw", "DepthwiseConv2D")])  # what model() reads
    [figure] = report.filters(report.weight_stats()).blocks
    assert figure.caption.startswith("dw: 16 filters of kernel 3×3×16×1")
    assert "input channels drawn: each its own (a depthwise kernel" in figure.caption


def test_feature_maps_of_other_samples_than_the_samples_stages_are_a_note_not_a_crash(project, run_pipeline):
    """``python -m stages.samples 'samples.indices=[0,5]'`` after the maps of sample 0, then the report on its own:
    the feature maps' section names both files and ``dvc repro report`` (it raised IndexError); the rest is shown."""
    made = ("fetch_data", "fetch_model", "build_untrained", "samples", "feature_maps", "map_metrics", "render_maps")
    run_pipeline(project, stages=[importlib.import_module(f"stages.{name}") for name in made])
    run_pipeline(
        project,
        "samples.indices=[0,5]",
        stages=[importlib.import_module(f"stages.{name}") for name in ("samples", "report")],
    )
    html = paths.report_page(project).read_text(encoding="utf-8")
    maps = " ".join(" ".join(Page(Page(html).section_notes(html, "feature-maps")).text).split())
    for item in ("conv2d", "conv2d_1"):  # feature_maps.each
        assert (
            f"inputs disagree: outputs/samples/index.json lists the samples [0, 5], outputs/feature_maps/{item}/"
            "layer.json was made for [0]; dvc repro report remakes them from the same samples" in maps
        )
    assert "training image 0" not in maps  # none of the maps' numbers beside images they were not made for
    shown = " ".join(" ".join(Page(Page(html).section_notes(html, "samples")).text).split())
    assert "outputs/figures/samples/sample_5.png is missing" in shown  # the samples: each one's figure, or a note
