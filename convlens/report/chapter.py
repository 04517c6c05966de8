"""The report's sections that tell chapter 8-3 in its order: the model, the kernel statistics, the weight histograms
trained vs untrained, the filter grids, the sample images and the feature maps; and the readers of the metrics
files every section uses.

``ChapterSections`` is mixed into ``report.Report``, which gives it ``root``, ``t``, ``params``, the model's
``archive`` and ``shapes`` (set by ``model``, the first section), and the helpers ``relative``, ``missing``,
``figure``, ``gallery``, ``role``, ``split`` and ``layer_names``. The per-sample figures of the first
``full_samples`` samples are shown full size, those of later samples as one gallery of thumbnails.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from convlens.model.archive import Archive
from convlens.model.layers import DEPTHWISE_KINDS
from convlens.pipeline import paths
from convlens.render.formats import size
from convlens.render.grids import drawn_mode
from convlens.report.pages import Note, Section, Table, number, percent
from convlens.report.summary import field_text, model_summary, shape_text


def read_rows(path: Path) -> list[dict[str, str]]:
    """A CSV table as row dicts (strings, as written)."""
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def read_json_file(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


class ChapterSections:
    """The chapter's sections, one method each (a mixin of ``report.Report``)."""

    @property
    def kinds(self) -> dict[str, str]:
        """The model's layer classes by name (none before ``model`` read it, or where it could not)."""
        return {} if self.archive is None else {layer.name: layer.kind for layer in self.archive.layers}

    def model(self) -> Section:
        t, path = self.t, paths.model_path(self.root, "trained")
        section = Section("model", t("model_title"), t("model_intro"))
        if not path.is_file():
            section.blocks.append(self.missing(path))
            return section
        self.archive = Archive.read(path, self.relative(path))
        images = paths.sample_images(self.root)  # a model of open input size: its table at the samples' size
        rows = model_summary(self.archive, np.load(images, mmap_mode="r").shape[1:] if images.is_file() else None)
        self.shapes = {row.name: row.output_shape for row in rows}
        total = sum(row.params for row in rows if "/" not in row.name)
        table = [
            [
                "" if r.index is None else str(r.index), r.name, r.kind, shape_text(r.output_shape),
                field_text(r.field, t("model_field_whole")), number(r.params),
            ]
            for r in rows
        ]  # fmt: skip
        table.append(["", t("model_total"), "", "", "", number(total)])
        sources = {row.shape_source for row in rows if row.output_shape is not None}
        caption = t(
            "model_caption" if "numpy" in sources else "model_caption_graph" if sources else "model_caption_no_shapes",
            layers=len(rows),
            params=number(total),
            input=shape_text((None, *self.archive.input_shape)),
        )
        section.blocks.append(Table(t.columns("model_columns"), table, caption))
        return section

    def weight_stats(self) -> dict[str, dict[str, dict[str, Any]]] | None:
        """``{role: {layer: {statistic: value}}}`` from the weights metrics (JSON and CSV), or None if missing."""
        stats: dict[str, dict[str, dict[str, Any]]] = {}
        for role in paths.ROLES:
            csv_path, json_path = (paths.weight_metrics(self.root, role, ext) for ext in ("csv", "json"))
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
                self.missing(paths.weight_metrics(self.root, role, "csv"))
                for role in paths.ROLES
                if not paths.weight_metrics(self.root, role, "csv").is_file()
                or not paths.weight_metrics(self.root, role, "json").is_file()
            )
            return section
        trained = paths.weight_metrics(self.root, "trained", "csv")
        columns = list(dict.fromkeys(c for row in read_rows(trained) for c in row))
        if not stats["trained"] or not columns:
            section.blocks.append(self.missing(trained, "no layer"))
            return section
        rows = [
            [self.role(role), *((size if c == "shape" else number)(values.get(c, "")) for c in columns)]
            for role in paths.ROLES
            for values in (stats[role][layer] for layer in stats[role])
        ]
        first = next(iter(stats["trained"]))
        caption = t(
            "kernels_caption",
            layer=first,
            source=self.relative(paths.weight_metrics(self.root, "*", "csv")),
            **{f"{role}_{s}": number(stats[role][first][s]) for role in paths.ROLES for s in ("mean", "std")},
        )
        section.blocks.append(Table([t("model"), *(self.term("column", c) for c in columns)], rows, caption))
        return section

    def histograms(self, stats) -> Section:
        t = self.t
        section = Section("histograms", t("histograms_title"), t("histograms_intro"))
        if stats is None:
            section.blocks.append(self.missing(paths.weight_metrics(self.root, "trained", "json")))
            return section
        for layer in stats["trained"]:
            numbers = {
                f"{role}_{s}": number(stats[role][layer][s])
                for role in paths.ROLES
                for s in ("mean", "std", "min", "max")
            }
            caption = t(
                "histogram_caption", layer=layer, count=number(stats["trained"][layer].get("count", "?")), **numbers
            )
            pictures = [
                (paths.histogram_overlay(self.root, layer), f"{layer}: {t('trained')} / {t('untrained')}"),
                *((paths.histogram(self.root, role, layer), f"{layer}: {self.role(role)}") for role in paths.ROLES),
            ]
            section.blocks.append(self.figure(pictures, caption))
        return section

    def filters(self, stats) -> Section:
        t = self.t
        section = Section("filters", t("filters_title"), t("filters_intro"))
        if stats is None:
            section.blocks.append(self.missing(paths.weight_metrics(self.root, "trained", "csv")))
            return section
        render_params = self.params.get("render", {})
        for layer, values in stats["trained"].items():
            shape = str(values.get("shape", ""))
            if len(shape.split("x")) != 4:
                continue  # a Dense kernel: histogram only, no filter grid
            dims = [int(d) for d in shape.split("x")]
            depthwise = self.kinds.get(layer) in DEPTHWISE_KINDS  # C·m filters, one per channel and multiplier
            mode = "depthwise" if depthwise else drawn_mode(render_params.get("input_channels", "first"), dims[2])
            caption = t(
                "filter_caption",
                layer=layer,
                filters=dims[2] * dims[3] if depthwise else dims[3],
                shape=size(shape),
                vmin=render_params.get("filter_vmin", "?"),
                vmax=render_params.get("filter_vmax", "?"),
                channels=self.term("drawn", mode),
            )
            pictures = [
                (paths.filters_figure(self.root, role, layer), f"{layer}: {self.role(role)}") for role in paths.ROLES
            ]
            section.blocks.append(self.figure(pictures, caption, wide=True))  # a 3×3 filter's cells visible
        return section

    def sample_index(self) -> dict | None:
        path = paths.sample_index(self.root)
        return read_json_file(path) if path.is_file() else None

    def class_name(self, label: int) -> str:
        """The label's class name as ``fetch_data`` wrote them (``classes.json``), else the label itself."""
        path = paths.classes(self.root)
        classes = read_json_file(path) if path.is_file() else []
        return str(classes[label]) if isinstance(classes, list) and 0 <= label < len(classes) else str(label)

    def samples(self, index: dict | None) -> Section:
        t = self.t
        section = Section("samples", t("samples_title"), t("samples_intro"))
        if index is None:
            section.blocks.append(self.missing(paths.sample_index(self.root)))
            return section
        pairs = list(zip(index["samples"], index["labels"], strict=True))
        for sample, label in pairs[: self.full_samples]:
            caption = t(
                "sample_caption",
                split=self.split(index["split"]),
                index=sample,
                label=label,
                name=self.class_name(label),
            )
            section.blocks.append(
                self.figure([(paths.sample_figure(self.root, sample), f"{t('sample')} {sample}")], caption)
            )
        later = [
            (paths.sample_figure(self.root, sample), f"{sample}: {self.class_name(label)}")
            for sample, label in pairs[self.full_samples :]
        ]
        section.blocks.extend(self.gallery(later, t("samples_title")))
        return section

    def disagree(self, first: Path, samples: list[int], second: Path, other: object) -> Note:
        """The note for two outputs made from different samples (``first`` lists ``samples``, ``second`` ``other``):
        the section shows neither until ``dvc repro report`` remakes them from the same samples."""
        return Note(
            self.t(
                "samples_disagree",
                first=self.relative(first),
                samples=samples,
                second=self.relative(second),
                other=other,
                command="dvc repro report",
            )
        )

    def maps_samples(self, item: str, per_sample: dict, samples: list[int]) -> list[int] | str:
        """The samples ``feature_maps@item`` ran on (its ``layer.json``; ``samples``, the index's, where it has none),
        or the count of each model's per-sample numbers where they are not one per sample (``"1, 1"``)."""
        path = paths.map_layer(self.root, item)
        made = read_json_file(path).get("samples") if path.is_file() else samples
        counts = [len(per_sample.get(role, [])) for role in paths.ROLES]
        if isinstance(made, list) and counts == [len(made)] * len(counts):
            return made
        return ", ".join(str(n) for n in counts)

    def feature_maps(self, index: dict | None) -> Section:
        t = self.t
        section = Section("feature-maps", t("maps_title"), t("maps_intro"))
        metrics_path = paths.feature_map_metrics(self.root)
        if index is None or not metrics_path.is_file():
            section.blocks.append(self.missing(paths.sample_index(self.root) if index is None else metrics_path))
            return section
        metrics = read_json_file(metrics_path)
        for item, name in self.layer_names(self.params.get("feature_maps", {}).get("each", [])):
            samples_path = paths.map_samples(self.root, item)
            if None in (metrics.get(role, {}).get(name) for role in paths.ROLES):
                section.blocks.append(self.missing(metrics_path, name))
                continue
            if not samples_path.is_file():
                section.blocks.append(self.missing(samples_path))
                continue
            per_sample = read_json_file(samples_path)  # each image's own numbers, not those of all samples
            other = self.maps_samples(item, per_sample, index["samples"])
            if other != index["samples"]:  # feature_maps ran on other samples than those of samples/index.json
                shown = paths.map_layer(self.root, item) if isinstance(other, list) else samples_path
                section.blocks.append(self.disagree(paths.sample_index(self.root), index["samples"], shown, other))
                continue
            for i, sample in enumerate(index["samples"][: self.full_samples]):
                stats = {role: per_sample[role][i] for role in paths.ROLES}
                caption = t(
                    "map_caption",
                    layer=name,
                    split=self.split(index["split"]),
                    index=sample,
                    shape=shape_text(self.shapes.get(name)),
                    channels=stats["trained"]["channels"],
                    **{f"{role}_mean": number(stats[role]["map_mean"]) for role in paths.ROLES},
                    **{
                        f"{role}_active": percent(stats[role]["map_fraction_active"], t.language)
                        for role in paths.ROLES
                    },
                    **{f"{role}_dead": stats[role]["dead_channels"] for role in paths.ROLES},
                )
                pictures = [
                    (
                        paths.map_figure(self.root, item, role, sample),
                        f"{name}, {t('sample')} {sample}: {self.role(role)}",
                    )
                    for role in paths.ROLES
                ]
                section.blocks.append(self.figure(pictures, caption))
            later = [
                (paths.map_figure(self.root, item, role, sample), f"{name}, {sample}: {self.role(role)}")
                for sample in index["samples"][self.full_samples :]
                for role in paths.ROLES
            ]
            section.blocks.extend(self.gallery(later, name))
        return section
