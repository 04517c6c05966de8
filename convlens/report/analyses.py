"""The report's sections beyond the chapter: the dataset-scale statistics, the analyses (accuracy, dataset
examples, activation maximization, Grad-CAM; each optional, a note until its stage has run, or why it does not
apply to the model) and the run's params.

``AnalysisSections`` is mixed into ``report.Report``, which gives it ``root``, ``t``, ``params`` and the helpers
``relative``, ``missing``, ``figure``, ``gallery``, ``role`` and ``split``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from convlens.analysis.attribution import MIN_VERDICT_IMAGES, RANDOM, TARGETS
from convlens.model.inputs import PIXEL_MAX
from convlens.pipeline import paths
from convlens.pipeline.artifacts import skip_reason
from convlens.render.language import Strings as FigureStrings
from convlens.report.chapter import read_json_file, read_rows
from convlens.report.pages import Note, Section, Table, Text, flat_items, number, param_text, percent
from convlens.schema import HEATMAP_ORDERS, HEATMAP_SCALES


def sample_key(path: Path) -> tuple[int, str]:
    """Sort ``sample_10.png`` after ``sample_9.png``."""
    digits = re.findall(r"\d+", path.stem)
    return (int(digits[-1]) if digits else -1, path.name)


def sanity_row(
    name: str, values: Mapping[str, Any], language: str, images: int, verdicts: Mapping[Any, str]
) -> list[str]:
    """One row of the sanity table: ``name``, then ρ trained vs untrained over every pixel and over the pixels not
    zero in both maps, each with ``(k / n)`` where its median rests on fewer than all ``images`` (the others have no
    ρ), the share of tied values (a percentage), the randomization check's verdict (``verdicts``: the word for
    ``passes`` 1, 0 and None) and the deletion AUC; ``–`` for a value not there."""

    def rho(key: str) -> str:
        n = values.get(f"{key}_images")
        shown = number(values.get(key))
        return f"{shown} ({number(n)} / {number(images)})" if isinstance(n, int) and n != images else shown

    tied = values.get("tied")
    ties = percent(tied, language) if isinstance(tied, int | float) and math.isfinite(tied) else "–"
    verdict = verdicts[values["passes"]] if "passes" in values else "–"
    return [name, rho("spearman"), rho("spearman_nonzero"), ties, verdict, number(values.get("deletion_auc"))]


def sanity_rows(
    sanity: Mapping[str, Any], name: Callable[[str], str], random: str, language: str, verdicts: Mapping[Any, str]
) -> list[list[str]]:
    """The sanity table of gradcam.json's ``sanity``: a row per method (``name``: its word), in the file's order,
    then the random order's (``random``: its word) for its deletion AUC; ``verdicts``: :func:`sanity_row`'s."""
    methods = [(key, values) for key, values in sanity.items() if isinstance(values, Mapping) and key != RANDOM]
    images = sanity.get("images")
    rows = [sanity_row(name(key), values, language, images, verdicts) for key, values in methods]
    shuffled = sanity.get(RANDOM)
    return rows + ([sanity_row(random, shuffled, language, images, verdicts)] if isinstance(shuffled, Mapping) else [])


class AnalysisSections:
    """The dataset statistics, the analyses and the params, one method each (a mixin of ``report.Report``)."""

    def dataset(self) -> Section:
        t = self.t
        section = Section("dataset", t("dataset_title"), t("dataset_intro"))
        summary_path, index_path = paths.dataset_metrics(self.root), paths.dataset_index(self.root)
        if not (summary_path.is_file() and index_path.is_file()):
            section.blocks.append(self.missing(summary_path))
            return section
        summary, index = read_json_file(summary_path), read_json_file(index_path)
        split = self.split(index["split"])
        render = self.params.get("render", {})
        scale, order = render.get("heatmap_scale"), render.get("heatmap_order")  # absent: a run from before them
        scale, order = scale if scale in HEATMAP_SCALES else "channel", order if order in HEATMAP_ORDERS else "layer"
        view = {"scale": t(f"heatmap_scale_{scale}"), "order": t(f"heatmap_order_{order}")}
        statistics = ("data_mean", "data_fraction_active", "data_dead_channels", "data_selectivity")
        rows = [
            [self.role(role), layer, *(number(values.get(s)) for s in statistics)]
            for role in paths.ROLES
            for layer, values in summary.get(role, {}).items()
        ]
        caption = t("dataset_caption", images=number(index["images"]), split=split, source=self.relative(summary_path))
        section.blocks.append(Table(t.columns("dataset_columns"), rows, caption))
        for layer in index["layers"]:
            selectivity = {
                role: number(summary.get(role, {}).get(layer, {}).get("data_selectivity")) for role in paths.ROLES
            }
            caption = t(
                "heatmap_caption", layer=layer, images=number(index["images"]), split=split, **view, **selectivity
            )
            heatmaps = [
                (paths.class_heatmap(self.root, role, layer), f"{layer}: {self.role(role)}") for role in paths.ROLES
            ]
            section.blocks.append(self.figure(heatmaps, caption))  # one figure per model, side by side
            for role in paths.ROLES:
                table_path = paths.dataset_table(self.root, role, layer)
                if not table_path.is_file():
                    section.blocks.append(self.missing(table_path))
                    continue
                table = read_rows(table_path)
                columns = list(table[0]) if table else []
                cells = [[number(row[c]) for c in columns] for row in table]
                source = self.relative(table_path)
                caption = t("channels_caption", layer=layer, model=self.role(role), source=source)
                headings = [self.term("column", c) for c in columns]
                section.blocks.append(Table(headings, cells, caption, folded=True))
        return section

    def evaluate(self) -> Section:
        t = self.t
        section = Section("evaluate", t("evaluate_title"), level=3)
        path = paths.evaluate_metrics(self.root)
        if not path.is_file():
            section.blocks.append(self.missing(path))
            return section
        metrics = read_json_file(path)
        section.blocks.extend(self.input_range())
        reason = skip_reason(metrics)
        if reason is not None:
            section.blocks.append(Note(t("skipped", stage="evaluate", reason=reason)))
            return section
        roles = [role for role in paths.ROLES if role in metrics]
        classes = list(dict.fromkeys(c for role in roles for c in metrics[role].get("class_accuracy", {})))
        rows = [[t("accuracy"), *(percent(metrics[role]["accuracy"], t.language) for role in roles)]]
        rows += [[c, *(percent(metrics[role]["class_accuracy"][c], t.language) for role in roles)] for c in classes]
        accuracy = {
            role: percent(metrics[role]["accuracy"], t.language) if role in metrics else "–" for role in paths.ROLES
        }
        caption = t("evaluate_caption", source=self.relative(path), **accuracy)
        section.blocks.append(Table([t.columns("evaluate_columns")[0], *map(self.role, roles)], rows, caption))
        for role in roles:
            caption = t("confusion_caption", model=self.role(role))
            section.blocks.append(self.figure([(paths.confusion_figure(self.root, role), self.role(role))], caption))
        return section

    def input_range(self) -> list[Text | Note]:
        """The input range evaluate fed, and its warning when most of the first conv layer's channels never fired
        (``input_range.json``): a wrong ``input.scale`` otherwise shows only as a low accuracy; for a model trained
        here (at this very scale) a training that may have diverged."""
        t, path = self.t, paths.input_range_path(self.root)
        if not path.is_file():
            return [self.missing(path)]
        record = read_json_file(path)
        divisor, preprocessing = record["divisor"], record["preprocessing"]
        if preprocessing:
            blocks: list[Text | Note] = [Text(t("input_raw", preprocessing=preprocessing))]
        else:
            blocks = [Text(t("input_scaled", divisor=number(divisor), top=number(PIXEL_MAX / divisor)))]
        if record["warning"]:
            fields = {
                "silent": record["silent_channels"],
                "channels": record["channels"],
                "layer": record["layer"],
                "images": number(record["images"]),
                "split": self.split(record["split"]),
            }
            if self.trained_here():  # trained here at this very scale: its training is the suspect, not the scale
                blocks.append(Note(t("input_warning_trained", **fields)))
            else:
                hints = {
                    "raw": t("input_hint_raw"),
                    "unit": t("input_hint_unit"),
                    "own": t("input_hint_own", preprocessing=preprocessing),
                }
                blocks.append(Note(t("input_warning", **fields, hint=hints[record["suggestion"]])))
        return blocks

    def examples(self) -> Section:
        t = self.t
        section = Section("examples", t("examples_title"), level=3)
        folders = [paths.examples_figures_dir(self.root, role) for role in paths.ROLES]  # render_dataset@<model>'s
        figures = [sorted(f.glob(paths.examples_figure_name("*", "*"))) if f.is_dir() else [] for f in folders]
        section.blocks.extend(self.missing(folder) for folder, drawn in zip(folders, figures, strict=True) if not drawn)
        settings = self.params.get("dataset", {}).get("examples", {})
        for path in (path for drawn in figures for path in drawn):
            role, _, stem = path.stem.partition("_")
            model = self.role(role) if role in paths.ROLES else role
            caption = t(
                "examples_caption",
                layer=stem,
                model=model,
                k=settings.get("k", "?"),
                by=self.term("by", settings.get("by", "?")),
            )
            section.blocks.append(self.figure([(path, f"{stem}: {model}")], caption))
        return section

    def analysis_on(self, key: str) -> bool:
        """Whether ``analyses.<key>`` lists a run (``-S analyses=full``): outputs of an earlier full run that lie in
        the workspace are not this run's."""
        return bool((self.params.get("analyses") or {}).get(key))

    def analysis_off(self, section: Section) -> Section:
        section.blocks.append(Text(self.t("analysis_off", command="dvc exp run -S analyses=full")))
        return section

    def activation_max(self) -> Section:
        t = self.t
        section = Section("activation-max", t("actmax_title"), level=3)
        if not self.analysis_on("activation_max"):
            return self.analysis_off(section)
        folder, metrics_path = paths.activation_max_figures_dir(self.root), paths.activation_max_metrics(self.root)
        figures = sorted(folder.glob("*/" + paths.activation_max_figure_name("*", "*"))) if folder.is_dir() else []
        if not figures:
            section.blocks.append(self.missing(folder))
            return section
        metrics = read_json_file(metrics_path) if metrics_path.is_file() else {}
        by_stem = {
            (role, paths.layer_stem(layer)): (layer, values)
            for role, layers in metrics.items()
            if isinstance(layers, Mapping)
            for layer, values in layers.items()
            if isinstance(values, Mapping)
        }
        for path in figures:
            role, _, stem = path.stem.partition("_")
            layer, values = by_stem.get((role, stem), (stem, {}))
            model = self.role(role) if role in paths.ROLES else role
            caption = t(
                "actmax_caption",
                layer=layer,
                model=model,
                ratio=number(values.get("ratio_median")),
                dead=number(values.get("dead")),
                below=number(values.get("below_dataset")),
                selectivity=number(values.get("selectivity")),
            )
            section.blocks.append(self.figure([(path, f"{layer}: {model}")], caption))
        if by_stem:
            rows = [
                [self.role(role), layer, key, number(value)]
                for (role, _), (layer, values) in by_stem.items()
                for key, value in flat_items(values)
            ]
            section.blocks.append(Table(t.columns("actmax_columns"), rows, self.relative(metrics_path), folded=True))
        elif not metrics_path.is_file():
            section.blocks.append(self.missing(metrics_path))
        return section

    def gradcam(self) -> Section:
        t = self.t
        section = Section("gradcam", t("gradcam_title"), level=3)
        if not self.analysis_on("attribution"):
            return self.analysis_off(section)
        folder, metrics_path = paths.gradcam_figures_dir(self.root), paths.gradcam_metrics(self.root)
        figures = sorted(folder.glob(paths.gradcam_figure_name("*")), key=sample_key) if folder.is_dir() else []
        if not figures:
            section.blocks.append(self.missing(folder))
            return section
        record = read_json_file(metrics_path) if metrics_path.is_file() else {}
        numbers = flat_items(record) if metrics_path.is_file() else []
        spearman = record.get("spearman", {}) if isinstance(record, Mapping) else {}
        for path in figures[: self.full_samples]:
            index = str(sample_key(path)[0])
            caption = t("gradcam_caption", index=index)
            own = spearman.get(f"sample_{index}")  # the randomization test's ρ, read out; every number in the table
            if isinstance(own, Mapping):
                caption += " " + t("gradcam_rho", predicted=number(own.get("predicted")), true=number(own.get("true")))
            section.blocks.append(self.figure([(path, f"{t('sample')} {index}")], caption))
        medians, defined = spearman.get("median"), spearman.get("defined")
        if isinstance(medians, Mapping) and isinstance(defined, Mapping):
            samples = sum(1 for key in spearman if key.startswith("sample_"))
            said = t(
                "gradcam_medians",
                predicted=number(medians.get("predicted")),
                predicted_n=defined.get("predicted", 0),
                true=number(medians.get("true")),
                true_n=defined.get("true", 0),
                samples=samples,
            )
            section.blocks.append(Text(f"{said} {self.sample_verdict(record)}"))
        later = [(path, f"{t('sample')} {sample_key(path)[0]}") for path in figures[self.full_samples :]]
        section.blocks.extend(self.gallery(later, t("gradcam_title")))
        sanity = record.get("sanity") if isinstance(record, Mapping) else None
        if isinstance(sanity, Mapping):
            section.blocks.extend(self.sanity_table(sanity, self.relative(metrics_path)))
        if numbers:
            rows = [[k, number(v) if not isinstance(v, list) else param_text(v)] for k, v in numbers]
            caption = t("gradcam_numbers", source=self.relative(metrics_path))
            section.blocks.append(Table([t("key"), t("value")], rows, caption, folded=True))
        else:
            section.blocks.append(self.missing(metrics_path))
        return section

    def sample_verdict(self, record: Mapping[str, Any]) -> str:
        """The samples' randomization check of Grad-CAM, in words: per target passes or fails, or too few samples
        to decide (gradcam.json's ``passes``: null where fewer than ``MIN_VERDICT_IMAGES`` samples have a ρ)."""
        t, passes = self.t, record.get("passes")
        sanity = record.get("sanity") if isinstance(record.get("sanity"), Mapping) else {}
        if not isinstance(passes, Mapping) or all(passes.get(target) is None for target in TARGETS):
            return t("gradcam_too_few", least=MIN_VERDICT_IMAGES)
        verdicts = {1: t("sanity_passes"), 0: t("sanity_fails"), None: t("sanity_too_few")}
        return t(
            "gradcam_verdict",
            predicted=verdicts[passes.get("predicted")],
            true=verdicts[passes.get("true")],
            max_rho=number(sanity.get("max_rho")),
        )

    def sanity_table(self, sanity: Mapping[str, Any], source: str) -> list[Table]:
        """The attribution methods' sanity checks (gradcam.json's ``sanity``) as a table, the methods named as the
        figures name them, and how to read it; none where the checks ran on no image."""
        t, figures = self.t, FigureStrings(self.t.language)
        verdicts = {1: t("sanity_passes"), 0: t("sanity_fails"), None: t("sanity_too_few")}
        rows = sanity_rows(sanity, lambda m: figures.term("method", m), t("sanity_random"), t.language, verdicts)
        if not rows:
            return []
        caption = t("sanity_caption", images=number(sanity["images"]), split=self.split(sanity["split"]), source=source)
        caption += " " + t("sanity_verdict", max_rho=number(sanity.get("max_rho")), least=MIN_VERDICT_IMAGES)
        return [Table(t.columns("sanity_columns"), rows, caption)]

    def params_section(self) -> Section:
        t = self.t
        items = flat_items(self.params)
        rows = [[key, param_text(value)] for key, value in items]
        section = Section("params", t("params_title"))
        section.blocks.append(Table([t("key"), t("value")], rows, t("params_caption", count=len(items))))
        return section
