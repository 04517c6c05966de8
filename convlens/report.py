"""The report: chapter 8-3 told with one run's numbers, as one self-contained HTML page (``outputs/report/index.html``).

In the chapter's order: the model, the kernel statistics, the weight histograms trained vs untrained, the filter
grids, the sample images, the feature maps, then the dataset-scale statistics, the analyses of issue 12 (accuracy,
dataset examples, activation maximization, Grad-CAM) and the run's params. Every section reads what the stages
wrote (no TensorFlow); whatever is missing becomes a note saying which stage makes it, never an error.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import layout
from .archive import Archive
from .errors import ConvlensError
from .pages import (
    Figure,
    Note,
    Section,
    Strings,
    Table,
    flat_items,
    image,
    number,
    param_text,
    percent,
    render,
)

# What the report reads (relative to the project root) and the stage that makes it. Each one a stage in dvc.yaml
# makes must be a dep of the report stage (tests/test_report.py checks it), so the page never goes stale.
READS = {
    "outputs/models/trained.keras": "fetch_model",
    "outputs/metrics/weights_trained.csv": "extract_weights",
    "outputs/metrics/weights_trained.json": "extract_weights",
    "outputs/metrics/weights_untrained.csv": "build_untrained",
    "outputs/metrics/weights_untrained.json": "build_untrained",
    "outputs/figures/weights": "render_figures",
    "outputs/samples": "samples",
    "outputs/figures/samples": "render_figures",
    "outputs/metrics/feature_maps.json": "map_metrics",
    "outputs/figures/feature_maps": "render_maps",
    "outputs/metrics/dataset.json": "dataset_stats",
    "outputs/metrics/dataset": "dataset_stats",
    "outputs/figures/dataset": "render_figures",
    "outputs/figures/dataset/examples": "render_figures",  # the dataset examples (dataset.examples, issue 12)
    "outputs/metrics/evaluate.json": "evaluate",
    "outputs/figures/evaluate": "evaluate",
    "outputs/metrics/activation_max.json": "activation_max",
    "outputs/figures/activation_max": "activation_max",
    "outputs/metrics/gradcam.json": "gradcam",
    "outputs/figures/gradcam": "gradcam",
}

# The sections' anchors, in the page's order (level-3 analyses sit under "analyses").
SECTIONS = (
    "model",
    "kernels",
    "histograms",
    "filters",
    "samples",
    "feature-maps",
    "dataset",
    "analyses",
    "evaluate",
    "examples",
    "activation-max",
    "gradcam",
    "params",
)


@dataclass(frozen=True)
class LayerRow:
    """One row of the model summary: Keras's ``model.summary()`` without TensorFlow."""

    index: int | None
    name: str
    kind: str
    output_shape: tuple[int | None, ...] | None
    params: int


def output_shapes(archive: Archive) -> dict[str, tuple[int | None, ...]]:
    """Each layer's output shape (batch axis ``None``) from the numpy forward pass of one blank input; empty where
    the forward pass does not compute the model (a branch, a nested model, a layer kind it lacks)."""
    from .forward import load_network
    from .ops import Unsupported

    try:
        network = load_network(archive)
    except Unsupported:
        return {}
    if None in network.input_shape:
        return {}
    blank = np.zeros((1, *network.input_shape), np.float32)
    outputs = network.activations(blank, network.names)
    return {name: (None, *out.shape[1:]) for name, out in zip(network.names, outputs, strict=True)}


def parameter_counts(archive: Archive) -> dict[str, int]:
    """Each layer's number of stored weights (Keras's ``Param #``); a nested model counts its layers'."""
    names = [layer.name for layer in archive.layers]
    stored = archive.weights(names)
    own = {name: sum(int(np.size(v)) for v in stored.get(name) or []) for name in names}
    return {name: own[name] + sum(c for n, c in own.items() if n.startswith(f"{name}/")) for name in names}


def model_summary(archive: Archive) -> list[LayerRow]:
    shapes, counts = output_shapes(archive), parameter_counts(archive)
    return [
        LayerRow(layer.index, layer.name, layer.kind, shapes.get(layer.name), counts[layer.name])
        for layer in archive.layers
    ]


def shape_text(shape: Sequence[int | None] | None) -> str:
    return "–" if shape is None else "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def read_rows(path: Path) -> list[dict[str, str]]:
    """A CSV table as row dicts (strings, as written)."""
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def read_json_file(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def sample_key(path: Path) -> tuple[int, str]:
    """Sort ``sample_10.png`` after ``sample_9.png``."""
    digits = re.findall(r"\d+", path.stem)
    return (int(digits[-1]) if digits else -1, path.name)


class Report:
    """Builds the report's sections for the project at ``root`` from its outputs and ``params`` (``params.yaml``)."""

    def __init__(self, root: Path, params: Mapping[str, Any], t: Strings):
        self.root, self.params, self.t = root, params, t
        self.archive: Archive | None = None
        self.shapes: dict[str, tuple[int | None, ...] | None] = {}

    # -- helpers ---------------------------------------------------------------------------------------------
    def path(self, relative: str) -> Path:
        return self.root / relative

    def missing(self, relative: str) -> Note:
        """The note for an output not made yet: what is missing, and the stage that makes it."""
        owners = [prefix for prefix in READS if relative == prefix or relative.startswith(f"{prefix}/")]
        stage = READS[max(owners, key=len)] if owners else "?"  # the most specific: dataset/examples
        return Note(self.t("not_run_yet", what=relative, command="dvc repro", stage=stage))

    def figure(self, paths: Sequence[tuple[str, str]], caption: str) -> Figure | Note:
        """Images side by side (``(relative path, label)``); a note naming the first one missing."""
        images = []
        for relative, label in paths:
            img = image(self.path(relative), label)
            if img is None:
                return self.missing(relative)
            images.append(img)
        return Figure(images, caption)

    def role(self, role: str) -> str:
        return self.t(role)

    def split(self, split: str) -> str:
        return self.t(f"split_{split}")

    def layer_names(self, items: Sequence[Any]) -> list[tuple[str, str]]:
        """``(item, layer name)`` for configured layer entries (names or indices into ``model.layers``)."""
        if self.archive is None:
            return [(str(item), str(item)) for item in items]
        try:
            names = self.archive.resolve(list(items), "feature_maps.layers")
        except ConvlensError:
            return [(str(item), str(item)) for item in items]
        return [(str(item), name) for item, name in zip(items, names, strict=True)]

    # -- the chapter -----------------------------------------------------------------------------------------
    def model(self) -> Section:
        t, relative = self.t, "outputs/models/trained.keras"
        section = Section("model", t("model_title"), t("model_intro"))
        if not self.path(relative).is_file():
            section.blocks.append(self.missing(relative))
            return section
        self.archive = Archive.read(self.path(relative), relative)
        rows = model_summary(self.archive)
        self.shapes = {row.name: row.output_shape for row in rows}
        total = sum(row.params for row in rows if "/" not in row.name)
        table = [
            ["" if r.index is None else str(r.index), r.name, r.kind, shape_text(r.output_shape), number(r.params)]
            for r in rows
        ]
        table.append(["", t("model_total"), "", "", number(total)])
        caption = t(
            "model_caption",
            layers=len(rows),
            params=number(total),
            input=shape_text((None, *self.archive.input_shape)),
        )
        section.blocks.append(Table(t.columns("model_columns"), table, caption))
        return section

    def weight_stats(self) -> dict[str, dict[str, dict[str, Any]]] | None:
        """``{role: {layer: {statistic: value}}}`` from the weights metrics (JSON and CSV), or None if missing."""
        stats: dict[str, dict[str, dict[str, Any]]] = {}
        for role in layout.ROLES:
            csv_path, json_path = (
                self.path(f"outputs/metrics/weights_{role}.csv"),
                self.path(f"outputs/metrics/weights_{role}.json"),
            )
            if not (csv_path.is_file() and json_path.is_file()):
                return None
            layers = read_json_file(json_path)[role]
            for row in read_rows(csv_path):
                layers.setdefault(row["layer"], {}).update(
                    {k: v for k, v in row.items() if k not in layers[row["layer"]]}
                )
            stats[role] = layers
        return stats

    def kernels(self, stats) -> Section:
        t = self.t
        section = Section("kernels", t("kernels_title"), t("kernels_intro"))
        if stats is None:
            section.blocks.extend(
                self.missing(f"outputs/metrics/weights_{role}.csv")
                for role in layout.ROLES
                if not self.path(f"outputs/metrics/weights_{role}.csv").is_file()
                or not self.path(f"outputs/metrics/weights_{role}.json").is_file()
            )
            return section
        columns = list(
            dict.fromkeys(c for row in read_rows(self.path("outputs/metrics/weights_trained.csv")) for c in row)
        )
        if not stats["trained"] or not columns:
            section.blocks.append(self.missing("outputs/metrics/weights_trained.csv (no layer)"))
            return section
        rows = [
            [self.role(role), *(number(values.get(c, "")) for c in columns)]
            for role in layout.ROLES
            for values in (stats[role][layer] for layer in stats[role])
        ]
        first = next(iter(stats["trained"]))
        caption = t(
            "kernels_caption",
            layer=first,
            **{f"{role}_{s}": number(stats[role][first][s]) for role in layout.ROLES for s in ("mean", "std")},
        )
        section.blocks.append(Table([t("model"), *columns], rows, caption))
        return section

    def histograms(self, stats) -> Section:
        t = self.t
        section = Section("histograms", t("histograms_title"), t("histograms_intro"))
        if stats is None:
            section.blocks.append(self.missing("outputs/metrics/weights_trained.json"))
            return section
        for layer in stats["trained"]:
            stem = layout.layer_stem(layer)
            numbers = {
                f"{role}_{s}": number(stats[role][layer][s])
                for role in layout.ROLES
                for s in ("mean", "std", "min", "max")
            }
            caption = t(
                "histogram_caption", layer=layer, count=number(stats["trained"][layer].get("count", "?")), **numbers
            )
            paths = [
                (f"outputs/figures/weights/{stem}_hist_overlay.png", f"{layer}: {t('trained')} / {t('untrained')}"),
                *(
                    (f"outputs/figures/weights/{role}_{stem}_hist.png", f"{layer}: {self.role(role)}")
                    for role in layout.ROLES
                ),
            ]
            section.blocks.append(self.figure(paths, caption))
        return section

    def filters(self, stats) -> Section:
        t = self.t
        section = Section("filters", t("filters_title"), t("filters_intro"))
        if stats is None:
            section.blocks.append(self.missing("outputs/metrics/weights_trained.csv"))
            return section
        render_params = self.params.get("render", {})
        for layer, values in stats["trained"].items():
            shape = str(values.get("shape", ""))
            if len(shape.split("x")) != 4:
                continue  # a Dense kernel: histogram only, no filter grid
            stem = layout.layer_stem(layer)
            caption = t(
                "filter_caption",
                layer=layer,
                filters=shape.split("x")[-1],
                shape=shape.replace("x", "×"),
                vmin=render_params.get("filter_vmin", "?"),
                vmax=render_params.get("filter_vmax", "?"),
                channels=render_params.get("input_channels", "?"),
            )
            paths = [
                (f"outputs/figures/weights/{role}_{stem}_filters.png", f"{layer}: {self.role(role)}")
                for role in layout.ROLES
            ]
            section.blocks.append(self.figure(paths, caption))
        return section

    def sample_index(self) -> dict | None:
        path = self.path("outputs/samples/index.json")
        return read_json_file(path) if path.is_file() else None

    def class_name(self, label: int) -> str:
        classes = self.params.get("data", {}).get("classes", [])
        return classes[label] if 0 <= label < len(classes) else str(label)

    def samples(self, index: dict | None) -> Section:
        t = self.t
        section = Section("samples", t("samples_title"), t("samples_intro"))
        if index is None:
            section.blocks.append(self.missing("outputs/samples/index.json"))
            return section
        for sample, label in zip(index["samples"], index["labels"], strict=True):
            caption = t(
                "sample_caption",
                split=self.split(index["split"]),
                index=sample,
                label=label,
                name=self.class_name(label),
            )
            section.blocks.append(
                self.figure([(f"outputs/figures/samples/sample_{sample}.png", f"{t('sample')} {sample}")], caption)
            )
        return section

    def feature_maps(self, index: dict | None) -> Section:
        t = self.t
        section = Section("feature-maps", t("maps_title"), t("maps_intro"))
        metrics_path = self.path("outputs/metrics/feature_maps.json")
        if index is None or not metrics_path.is_file():
            section.blocks.append(
                self.missing("outputs/samples/index.json" if index is None else "outputs/metrics/feature_maps.json")
            )
            return section
        metrics = read_json_file(metrics_path)
        for item, name in self.layer_names(self.params.get("feature_maps", {}).get("layers", [])):
            stats = {role: metrics.get(role, {}).get(name) for role in layout.ROLES}
            if None in stats.values():
                section.blocks.append(self.missing(f"outputs/metrics/feature_maps.json ({name})"))
                continue
            for sample in index["samples"]:
                caption = t(
                    "map_caption",
                    layer=name,
                    split=self.split(index["split"]),
                    index=sample,
                    shape=shape_text(self.shapes.get(name)),
                    channels=stats["trained"]["channels"],
                    **{f"{role}_mean": number(stats[role]["map_mean"]) for role in layout.ROLES},
                    **{f"{role}_active": percent(stats[role]["map_fraction_active"]) for role in layout.ROLES},
                    **{f"{role}_dead": stats[role]["dead_channels"] for role in layout.ROLES},
                )
                paths = [
                    (f"outputs/figures/feature_maps/{item}/{role}_sample_{sample}.png", f"{name}: {self.role(role)}")
                    for role in layout.ROLES
                ]
                section.blocks.append(self.figure(paths, caption))
        return section

    def dataset(self) -> Section:
        t = self.t
        section = Section("dataset", t("dataset_title"), t("dataset_intro"))
        summary_path, index_path = (
            self.path("outputs/metrics/dataset.json"),
            self.path("outputs/metrics/dataset/index.json"),
        )
        if not (summary_path.is_file() and index_path.is_file()):
            section.blocks.append(self.missing("outputs/metrics/dataset.json"))
            return section
        summary, index = read_json_file(summary_path), read_json_file(index_path)
        split = self.split(index["split"])
        statistics = ("data_mean", "data_fraction_active", "data_dead_channels", "data_selectivity")
        rows = [
            [self.role(role), layer, *(number(values.get(s)) for s in statistics)]
            for role in layout.ROLES
            for layer, values in summary.get(role, {}).items()
        ]
        caption = t("dataset_caption", images=number(index["images"]), split=split)
        section.blocks.append(Table(t.columns("dataset_columns"), rows, caption))
        for layer in index["layers"]:
            stem = layout.layer_stem(layer)
            selectivity = {
                role: number(summary.get(role, {}).get(layer, {}).get("data_selectivity")) for role in layout.ROLES
            }
            caption = t("heatmap_caption", layer=layer, images=number(index["images"]), split=split, **selectivity)
            section.blocks.append(self.figure([(f"outputs/figures/dataset/{stem}_classes.png", layer)], caption))
            for role in layout.ROLES:
                file = f"{role}_{stem}.csv"
                table_path = self.path(f"outputs/metrics/dataset/{file}")
                if not table_path.is_file():
                    section.blocks.append(self.missing(f"outputs/metrics/dataset/{file}"))
                    continue
                table = read_rows(table_path)
                columns = list(table[0]) if table else []
                cells = [[number(row[c]) for c in columns] for row in table]
                caption = t("channels_caption", layer=layer, model=self.role(role), file=file)
                section.blocks.append(Table(columns, cells, caption, folded=True))
        return section

    # -- issue 12's analyses: each optional, a note until its stage has run ----------------------------------
    def evaluate(self) -> Section:
        t = self.t
        section = Section("evaluate", t("evaluate_title"), level=3)
        relative = "outputs/metrics/evaluate.json"
        if not self.path(relative).is_file():
            section.blocks.append(self.missing(relative))
            return section
        metrics = read_json_file(self.path(relative))
        roles = [role for role in layout.ROLES if role in metrics]
        classes = list(dict.fromkeys(c for role in roles for c in metrics[role].get("class_accuracy", {})))
        rows = [[t("accuracy"), *(percent(metrics[role]["accuracy"]) for role in roles)]]
        rows += [[c, *(percent(metrics[role]["class_accuracy"][c]) for role in roles)] for c in classes]
        accuracy = {role: percent(metrics[role]["accuracy"]) if role in metrics else "–" for role in layout.ROLES}
        section.blocks.append(
            Table([t.columns("evaluate_columns")[0], *map(self.role, roles)], rows, t("evaluate_caption", **accuracy))
        )
        for role in roles:
            caption = t("confusion_caption", model=self.role(role))
            section.blocks.append(
                self.figure([(f"outputs/figures/evaluate/{role}_confusion.png", self.role(role))], caption)
            )
        return section

    def examples(self) -> Section:
        t = self.t
        section = Section("examples", t("examples_title"), level=3)
        folder = self.path("outputs/figures/dataset/examples")
        figures = sorted(folder.glob("*.png")) if folder.is_dir() else []
        if not figures:
            section.blocks.append(self.missing("outputs/figures/dataset/examples"))
            return section
        settings = self.params.get("dataset", {}).get("examples", {})
        for path in figures:
            role, _, stem = path.stem.partition("_")
            caption = t(
                "examples_caption",
                layer=stem,
                model=self.role(role) if role in layout.ROLES else role,
                k=settings.get("k", "?"),
                by=settings.get("by", "?"),
            )
            section.blocks.append(self.figure([(f"outputs/figures/dataset/examples/{path.name}", path.stem)], caption))
        return section

    def activation_max(self) -> Section:
        t = self.t
        section = Section("activation-max", t("actmax_title"), level=3)
        folder, metrics_path = (
            self.path("outputs/figures/activation_max"),
            self.path("outputs/metrics/activation_max.json"),
        )
        figures = sorted(folder.glob("*.png")) if folder.is_dir() else []
        if not figures:
            section.blocks.append(self.missing("outputs/figures/activation_max"))
            return section
        metrics = read_json_file(metrics_path) if metrics_path.is_file() else {}
        by_stem = {
            (role, layout.layer_stem(layer)): (layer, values)
            for role, layers in metrics.items()
            if isinstance(layers, Mapping)
            for layer, values in layers.items()
            if isinstance(values, Mapping)
        }
        for path in figures:
            role, _, stem = path.stem.partition("_")
            layer, values = by_stem.get((role, stem), (stem, {}))
            caption = t(
                "actmax_caption",
                layer=layer,
                model=self.role(role) if role in layout.ROLES else role,
                ratio=number(values.get("ratio_median")),
            )
            section.blocks.append(self.figure([(f"outputs/figures/activation_max/{path.name}", path.stem)], caption))
        if by_stem:
            rows = [
                [self.role(role), layer, key, number(value)]
                for (role, _), (layer, values) in by_stem.items()
                for key, value in flat_items(values)
            ]
            section.blocks.append(
                Table(t.columns("actmax_columns"), rows, "outputs/metrics/activation_max.json", folded=True)
            )
        elif not metrics_path.is_file():
            section.blocks.append(self.missing("outputs/metrics/activation_max.json"))
        return section

    def gradcam(self) -> Section:
        t = self.t
        section = Section("gradcam", t("gradcam_title"), level=3)
        folder, metrics_path = self.path("outputs/figures/gradcam"), self.path("outputs/metrics/gradcam.json")
        figures = sorted(folder.glob("sample_*.png"), key=sample_key) if folder.is_dir() else []
        if not figures:
            section.blocks.append(self.missing("outputs/figures/gradcam"))
            return section
        numbers = flat_items(read_json_file(metrics_path)) if metrics_path.is_file() else []
        for path in figures:
            index = str(sample_key(path)[0])
            own = [(k, v) for k, v in numbers if index in k.split(".") or f"sample_{index}" in k.split(".")]
            caption = t("gradcam_caption", index=index)
            if own:
                caption += " " + "; ".join(f"{k}: {number(v)}" for k, v in own)
            section.blocks.append(self.figure([(f"outputs/figures/gradcam/{path.name}", path.stem)], caption))
        if numbers:
            rows = [[k, number(v) if not isinstance(v, list) else param_text(v)] for k, v in numbers]
            section.blocks.append(Table([t("key"), t("value")], rows, t("gradcam_numbers"), folded=True))
        else:
            section.blocks.append(self.missing("outputs/metrics/gradcam.json"))
        return section

    def params_section(self) -> Section:
        t = self.t
        items = flat_items(self.params)
        rows = [[key, param_text(value)] for key, value in items]
        section = Section("params", t("params_title"))
        section.blocks.append(Table([t("key"), t("value")], rows, t("params_caption", count=len(items))))
        return section

    def sections(self) -> list[Section]:
        t = self.t
        model = self.model()
        stats = self.weight_stats()
        index = self.sample_index()
        return [
            model,
            self.kernels(stats),
            self.histograms(stats),
            self.filters(stats),
            self.samples(index),
            self.feature_maps(index),
            self.dataset(),
            Section("analyses", t("analyses_title")),
            self.evaluate(),
            self.examples(),
            self.activation_max(),
            self.gradcam(),
            self.params_section(),
        ]


def report_page(root: Path, params: Mapping[str, Any], language: str) -> str:
    """The report of the project at ``root`` as one HTML page, in ``language`` (``report.language``)."""
    t = Strings(language)
    sections = Report(root, params, t).sections()
    return render("report.html.j2", t, t("report_title"), t("report_subtitle"), sections)
