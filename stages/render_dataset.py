"""Stage: one model's dataset figures as PNG, beyond the chapter (``render_dataset@trained``,
``render_dataset@untrained``): per dataset layer its channels × classes heatmap and its dataset examples (each
channel's top images of the split), and its confusion matrix.

Its own stage, so that a change to the chapter's figures (``render.filter_cmap``) does not redraw these, and the
chapter's stages (``dvc repro render_figures render_maps``) need no pass over the dataset; one instance per model,
so that a change to one model (``untrained.seed``) redraws only its figures (the report shows the two models'
heatmaps side by side). No TensorFlow: it reads the tables ``dataset@<model>`` wrote and the split's images.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from convlens.analysis.dataset import selectivity
from convlens.analysis.evaluate import accuracy, confusion_from_rows
from convlens.analysis.examples import PATCH_COLUMNS, cut_ties, examples_grid, patch_note, tie_note, tile_captions
from convlens.pipeline import paths
from convlens.pipeline.artifacts import load_classes
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import read_csv_columns, read_json, staged_dir
from convlens.render.analyses import class_heatmaps, confusion_figure, examples_figure
from convlens.render.formats import number
from convlens.render.language import accuracy_title, figure_language, words
from convlens.render.pool import Job, run_jobs

log = logging.getLogger(__name__)
EXAMPLE_COLUMNS = ["channel", "rank", "image", "label", "tied", "activation", "peak", *PATCH_COLUMNS]  # its tables


def class_heatmap_jobs(out: Path, root: Path, r: DictConfig, role: str) -> list[Job]:
    """Per dataset layer (one job each): the ``role`` model's channels × classes mean activations, each channel's
    selectivity beside its row (``render.heatmap_scale``, ``render.heatmap_order``)."""
    dataset = read_json(paths.dataset_index(root, role))
    return [partial(draw_class_heatmap, out, root, r, dataset, name, role) for name in dataset["layers"]]


def draw_class_heatmap(out: Path, root: Path, r: DictConfig, dataset: dict, name: str, role: str) -> None:
    """One model's class heatmap of one dataset layer (``dataset``: its dataset index)."""
    tables = {role: read_csv_columns(paths.dataset_table(root, role, name), dataset["classes"]).T}
    title = heatmap_title(name, dataset)
    path, style = out / paths.class_heatmap_name(name), (r.heatmap_cmap, r.heatmap_scale, r.heatmap_order)
    chosen = {role: selectivity(t) for role, t in tables.items()}
    class_heatmaps(tables, chosen, dataset["classes"], path, title, style, r.dpi)


def heatmap_title(layer: str, dataset: dict) -> str:
    """A class heatmap's title: the layer, and how many images of which split (``dataset``: the dataset index), the
    count written as the page writes it (``10,000``)."""
    t = words()
    return t("heatmap_title", layer=layer, images=number(dataset["images"]), split=t.term("split", dataset["split"]))


def examples_title(role: str, layer: str, k: int, dataset: dict) -> str:
    """The dataset examples' title: the model, the layer, each channel's top ``k`` of how many images of which split,
    ranked by what (``dataset.examples.by``), in :func:`words`' language, the count as the page writes it."""
    t = words()
    return t(
        "examples_title", model=t.term("model", role), layer=layer, k=k, images=number(dataset["images"]),
        split=t.term("split", dataset["split"]), by=t.term("by", dataset["examples_by"]),
    )  # fmt: skip


def examples_jobs(out: Path, root: Path, r: DictConfig, role: str) -> list[Job]:
    """Per dataset layer of the ``role`` model (one job each): each channel's top images of the split as one tile,
    captioned with the channel and its images' most frequent class, or with the size of the tie its last place falls
    in, and its top image's peak activation. The tile shows the patch each image's peak sees (the table's box, from
    ``dataset@<model>``'s receptive fields), enlarged, and the top image whole beside them, its patch outlined;
    where the patch is the whole image, the images."""
    dataset = read_json(paths.dataset_index(root, role))
    return [partial(draw_examples, out, root, r, dataset, name, role) for name in dataset["layers"]]


def draw_examples(out: Path, root: Path, r: DictConfig, dataset: dict, name: str, role: str) -> None:
    """One model's dataset examples of one layer (``dataset``: the dataset index)."""
    images = np.load(paths.images(root, dataset["split"]), mmap_mode="r")
    table = read_csv_columns(paths.examples_table(root, role, name), EXAMPLE_COLUMNS)
    shape = (int(table[:, 0].max()) + 1, int(table[:, 1].max()) + 1)  # channel by channel, rank by rank
    image, label, tied, score, peak = (column.reshape(shape) for column in table[:, 2:7].T)
    known = not np.isnan(table[:, 7:]).any()  # empty patch cells: the layer's field is not known
    boxes = table[:, 7:].astype(np.int64).reshape(*shape, 4) if known else None
    pictures = np.asarray(images[image.ravel().astype(np.int64)], np.float64)
    pictures = pictures.reshape(*shape, *images.shape[1:]) / 255.0
    ties = cut_ties(score, tied)
    captions = tile_captions(label.astype(np.int64), ties, dataset["classes"], peak)
    grid = examples_grid(pictures, boxes=boxes)
    title = examples_title(role, name, shape[1], dataset) + patch_note(grid.patch, known) + tie_note(ties)
    path = out / paths.examples_figure_name(role, name)
    examples_figure(grid, captions, path, r.sample_cmap, title, r.dpi)


def confusion_jobs(out: Path, root: Path, r: DictConfig, role: str) -> list[Job]:
    """The ``role`` model's confusion matrix (one job), counted from ``dataset@<model>``'s rows (none where
    evaluation was skipped)."""
    dataset, classes = read_json(paths.dataset_index(root, role)), load_classes(root)
    rows = paths.confusion_dir(root, role) / paths.confusion_name(role)
    return [partial(draw_confusion, out, r, dataset, classes, role, rows)] if rows.is_file() else []


def confusion_title(role: str, confusion: np.ndarray, split: str) -> str:
    """A confusion matrix's title: the model's accuracy on how many images of the split, the count written as the
    page writes it (``10,000``)."""
    return accuracy_title(role, accuracy(confusion), number(int(confusion.sum())), split)


def draw_confusion(out: Path, r: DictConfig, dataset: dict, classes: list[str], role: str, rows: Path) -> None:
    """One model's confusion matrix from its ``rows`` (``dataset``: the dataset index)."""
    confusion = confusion_from_rows(rows, classes)
    title = confusion_title(role, confusion, dataset["split"])
    confusion_figure(confusion, classes, out / paths.confusion_figure_name(role), title, "Blues", r.dpi)


def run(cfg: DictConfig, root: Path, role: str) -> None:
    """Every figure of the ``role`` model one job, the jobs run on every usable CPU
    (:func:`convlens.render.pool.run_jobs`); both its folders are replaced only once all are drawn."""
    r, role = cfg.render, paths.check_role(role)
    figures = paths.dataset_figures_dir(root, role)
    with (
        figure_language(cfg.report.language),
        staged_dir(figures) as out,
        staged_dir(paths.evaluate_figures_dir(root, role)) as evaluated,
    ):
        examples = out / paths.examples_figures_dir(root, role).relative_to(figures)
        heatmaps, confusions = class_heatmap_jobs(out, root, r, role), confusion_jobs(evaluated, root, r, role)
        run_jobs([*heatmaps, *confusions, *examples_jobs(examples, root, r, role)])  # the longest first
    log.info("%s class heatmaps and dataset examples written to %s", role, figures.relative_to(root))


if __name__ == "__main__":
    run_stage("render_dataset", run)
