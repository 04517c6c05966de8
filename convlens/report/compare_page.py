"""The comparison page of two runs (``python -m convlens compare A B``): changed params, changed statistics (the
table and chart of ``compare``), and the figures that differ, side by side, most important first (the film's GIFs,
then the chapter's figures: :func:`figure_order`): the first ``FULL_FIGURES`` full size, the rest as thumbnails.
Its images inline (one HTML file), or, with ``Assets(prefix="<stem>_files/")``, files in a folder beside it
(``write_page``), so the page stays light however many figures differ."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from convlens.analysis.compare import one_sided, shared
from convlens.pipeline import paths
from convlens.pipeline.files import atomic_path, staged_dir
from convlens.report.assets import FULL_FIGURES, Assets
from convlens.report.pages import (
    Figure,
    Gallery,
    Note,
    Section,
    Strings,
    Table,
    flat_items,
    number,
    param_text,
    render,
)
from convlens.schema import not_chosen

NOT_CHOSEN = "–"  # a param that is not the run's choice (schema.not_chosen: train.* of a model not trained here)


def changed_params(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(key, value in a, value in b)`` for each dotted key whose value differs (``None`` where one run lacks it,
    :data:`NOT_CHOSEN` where it is not the run's choice: the recipe of a model not trained here is no change)."""
    flat_a, flat_b = dict(flat_items(a)), dict(flat_items(b))
    for flat in (flat_a, flat_b):
        flat.update(dict.fromkeys(not_chosen(flat), NOT_CHOSEN))
    keys = list(dict.fromkeys([*flat_a, *flat_b]))
    missing = object()
    return [
        (key, flat_a.get(key), flat_b.get(key))
        for key in keys
        if flat_a.get(key, missing) != flat_b.get(key, missing)
        and (flat_a.get(key), flat_b.get(key)) not in ((NOT_CHOSEN, None), (None, NOT_CHOSEN))  # model.path
    ]


def figures_folder(folder: Path) -> str:
    """A stage's figures folder (``paths.*_dir(Path())``) as the comparison names its figures: under
    ``outputs/figures``, ``/``-separated, with a trailing ``/``."""
    return f"{folder.relative_to(paths.figures_dir(Path())).as_posix()}/"


# The figures a reader looks at first, in order (a folder under outputs/figures, how the name ends): the film's GIFs
# (they play only full size), the chapter's own figures (filter grids, weight histograms, feature maps), the film's
# stills (its strips, the learning curves); every other figure (dataset, evaluate, analyses) after them.
FIGURE_IMPORTANCE = (
    (figures_folder(paths.film_dir(Path())), ".gif"),
    (figures_folder(paths.weight_figures_dir(Path())), "_filters.png"),
    (figures_folder(paths.weight_figures_dir(Path())), ".png"),
    (figures_folder(paths.map_figures_dir(Path())), ".png"),
    (figures_folder(paths.film_dir(Path())), ".png"),
)


def natural_key(text: str) -> tuple[str | int, ...]:
    """``text``'s sort key with its runs of digits as numbers: ``sample_2`` before ``sample_10``."""
    return tuple(int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", text)))


def figure_order(path: str) -> tuple[int, tuple[str | int, ...]]:
    """A figure's place on the comparison page: by :data:`FIGURE_IMPORTANCE`, then by its path (natural order)."""
    rank = next(
        (i for i, (folder, end) in enumerate(FIGURE_IMPORTANCE) if path.startswith(folder) and path.endswith(end)),
        len(FIGURE_IMPORTANCE),
    )
    return rank, natural_key(path)


def differing_figures(a: Mapping[str, bytes], b: Mapping[str, bytes]) -> tuple[list[str], list[str], int]:
    """Figures by relative path in two runs: (paths whose bytes differ, most important first: :func:`figure_order`;
    paths in one run only, in natural order; how many are equal)."""
    both = set(a) & set(b)
    differ = sorted((path for path in both if a[path] != b[path]), key=figure_order)
    only = sorted(set(a) ^ set(b), key=natural_key)
    return differ, only, len(both) - len(differ)


ONE_SIDED_NAMES = 6  # a folder's figures of one run only named in the note; the rest counted
ONE_SIDED_THUMBNAILS = 12  # figures of one run only shown as thumbnails, per run, most important first


def by_folder(figures: Iterable[str]) -> dict[str, list[str]]:
    """Figures' names by their folder (``.`` for none), folders and names in natural order."""
    groups: dict[str, list[str]] = {}
    for path in sorted(figures, key=natural_key):
        folder, _, name = path.rpartition("/")
        groups.setdefault(folder or ".", []).append(name)
    return groups


def folder_list(t: Strings, groups: Mapping[str, list[str]]) -> str:
    """Each folder with its number of figures and the first :data:`ONE_SIDED_NAMES` names (the rest counted)."""
    parts = []
    for folder, names in groups.items():
        shown = ", ".join(names[:ONE_SIDED_NAMES])
        if len(names) > ONE_SIDED_NAMES:
            shown += t("compare_figures_only_more", count=len(names) - ONE_SIDED_NAMES)
        parts.append(t("compare_figures_only_folder", folder=folder, count=len(names), names=shown))
    return "; ".join(parts)


def where(rows: pd.DataFrame) -> str:
    """Each model/layer of ``rows`` with its number of statistics, in order (``–`` for none)."""
    counts = rows.groupby(["model", "layer"], sort=False).size()
    return ", ".join(f"{model}/{layer} ({n})" for (model, layer), n in counts.items()) or "–"


def compare_page(
    labels: tuple[str, str],
    params: tuple[Mapping[str, Any], Mapping[str, Any]],
    table: pd.DataFrame,
    changed_table: pd.DataFrame,
    chart: bytes,
    figures: tuple[Mapping[str, bytes] | str, Mapping[str, bytes] | str],
    language: str = "en",
    assets: Assets | None = None,
) -> str:
    """The page. ``figures``: each run's PNGs by relative path, or why they could not be read. Its images go to
    ``assets`` (by default inline)."""
    t = Strings(language)
    assets = Assets(folder=False) if assets is None else assets
    a, b = labels
    sections = []

    section = Section("params", t("compare_params_title"))
    rows = [[key, param_text(va), param_text(vb)] for key, va, vb in changed_params(*params)]
    section.blocks.append(
        Table(t.columns("compare_params_columns", a=a, b=b), rows) if rows else Note(t("compare_params_none"))
    )
    sections.append(section)

    section = Section("statistics", t("compare_stats_title"))
    caption = t("compare_stats_caption", changed=len(changed_table), total=len(shared(table)))
    section.blocks.append(Figure([assets.image(chart, "chart.png", f"{a} → {b}")], caption))
    rows = [
        [r.model, r.layer, r.statistic, number(r.a), number(r.b), number(r.change), number(r.relative_change)]
        for r in changed_table.itertuples()
    ]
    if rows:
        section.blocks.append(Table(t.columns("compare_stats_columns", a=a, b=b), rows))
    only = one_sided(table)
    if len(only):  # a layer or an analysis one run lacks: not a change, and named by where it is
        in_a = only[only["b"].isna()]
        in_b = only[only["a"].isna()]
        section.blocks.append(
            Note(t("compare_stats_only", count=len(only), a=a, b=b, in_a=where(in_a), in_b=where(in_b)))
        )
    sections.append(section)

    section = Section("figures", t("compare_figures_title"))
    unreadable = [(label, why) for label, why in zip(labels, figures, strict=True) if isinstance(why, str)]
    if unreadable:
        section.blocks.extend(Note(t("compare_figures_unavailable", rev=label, why=why)) for label, why in unreadable)
    else:
        fig_a, fig_b = figures
        differ, only, same = differing_figures(fig_a, fig_b)
        for path in differ[:FULL_FIGURES]:
            images = [assets.image(fig_a[path], f"a/{path}", f"{a}: {path}")]
            images.append(assets.image(fig_b[path], f"b/{path}", f"{b}: {path}"))
            section.blocks.append(Figure(images, t("compare_figures_caption", path=path, a=a, b=b)))
        later = differ[FULL_FIGURES:]
        if later:
            thumbnails = [
                assets.image(figs[path], f"{side}/{path}", f"{label}: {path}", small=True)
                for path in later
                for side, label, figs in (("a", a, fig_a), ("b", b, fig_b))
            ]
            section.blocks.append(Gallery(thumbnails, t("compare_figures_more", count=len(later), a=a, b=b)))
        if not differ:
            section.blocks.append(Note(t("compare_figures_none", same=same)))
        for side, label, figs in (("a", a, fig_a), ("b", b, fig_b)):  # e.g. Grad-CAM where one run ran analyses=full
            own = [path for path in only if path in figs]
            if own:
                groups = folder_list(t, by_folder(own))
                section.blocks.append(Note(t("compare_figures_only", rev=label, count=len(own), groups=groups)))
                first = sorted(own, key=figure_order)[:ONE_SIDED_THUMBNAILS]
                thumbnails = [
                    assets.image(figs[path], f"{side}/{path}", f"{label}: {path}", small=True) for path in first
                ]
                section.blocks.append(Gallery(thumbnails, t("compare_figures_only_shown", count=len(first), rev=label)))
    sections.append(section)
    title = t("compare_title", a=a, b=b)
    return render("compare.html.j2", t, title, t("report_subtitle"), sections)


def write_page(path: Path, html: str, assets: Assets) -> None:
    """Write a page at ``path`` and its files beside it in the folder ``assets.prefix`` (``<stem>_files/``): the
    folder first, staged and renamed into place whole, then the page, so the page never refers to a missing file."""
    if assets.folder:
        folder = assets.prefix.strip("/")
        if not folder or "/" in folder:
            raise ValueError(f"a page's files need a folder of their own beside it, not {assets.prefix!r}")
        with staged_dir(path.parent / folder) as out:
            assets.write(out, strip=assets.prefix)
    with atomic_path(path) as tmp:
        tmp.write_text(html, encoding="utf-8")
