"""The comparison page of two runs (``python -m convlens compare A B``): changed params, changed statistics (the
table and chart of ``compare``), and the figures that differ, side by side; one self-contained HTML file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from convlens.report.pages import (
    Figure,
    Image,
    Note,
    Section,
    Strings,
    Table,
    data_uri,
    flat_items,
    number,
    param_text,
    render,
)


def changed_params(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(key, value in a, value in b)`` for each dotted key whose value differs (``None`` where one run lacks it)."""
    flat_a, flat_b = dict(flat_items(a)), dict(flat_items(b))
    keys = list(dict.fromkeys([*flat_a, *flat_b]))
    missing = object()
    return [
        (key, flat_a.get(key), flat_b.get(key)) for key in keys if flat_a.get(key, missing) != flat_b.get(key, missing)
    ]


def differing_figures(a: Mapping[str, bytes], b: Mapping[str, bytes]) -> tuple[list[str], list[str], int]:
    """Figures by relative path in two runs: (paths whose bytes differ, paths in one run only, how many are equal)."""
    both = sorted(set(a) & set(b))
    differ = [path for path in both if a[path] != b[path]]
    only = sorted(set(a) ^ set(b))
    return differ, only, len(both) - len(differ)


def compare_page(
    labels: tuple[str, str],
    params: tuple[Mapping[str, Any], Mapping[str, Any]],
    table: pd.DataFrame,
    changed_table: pd.DataFrame,
    chart: bytes,
    figures: tuple[Mapping[str, bytes] | str, Mapping[str, bytes] | str],
    language: str = "en",
) -> str:
    """The page. ``figures``: each run's PNGs by relative path, or why they could not be read."""
    t = Strings(language)
    a, b = labels
    sections = []

    section = Section("params", t("compare_params_title"))
    rows = [[key, param_text(va), param_text(vb)] for key, va, vb in changed_params(*params)]
    section.blocks.append(
        Table(t.columns("compare_params_columns", a=a, b=b), rows) if rows else Note(t("compare_params_none"))
    )
    sections.append(section)

    section = Section("statistics", t("compare_stats_title"))
    caption = t("compare_stats_caption", changed=len(changed_table), total=len(table))
    section.blocks.append(Figure([Image(data_uri(chart), f"{a} → {b}")], caption))
    rows = [
        [r.model, r.layer, r.statistic, number(r.a), number(r.b), number(r.change), number(r.relative_change)]
        for r in changed_table.itertuples()
    ]
    if rows:
        section.blocks.append(Table(t.columns("compare_stats_columns", a=a, b=b), rows))
    sections.append(section)

    section = Section("figures", t("compare_figures_title"))
    unreadable = [(label, why) for label, why in zip(labels, figures, strict=True) if isinstance(why, str)]
    if unreadable:
        section.blocks.extend(Note(t("compare_figures_unavailable", rev=label, why=why)) for label, why in unreadable)
    else:
        fig_a, fig_b = figures
        differ, only, same = differing_figures(fig_a, fig_b)
        for path in differ:
            images = [Image(data_uri(fig_a[path]), f"{a}: {path}"), Image(data_uri(fig_b[path]), f"{b}: {path}")]
            section.blocks.append(Figure(images, t("compare_figures_caption", path=path, a=a, b=b)))
        if not differ:
            section.blocks.append(Note(t("compare_figures_none", same=same)))
        if only:
            section.blocks.append(Note(t("compare_figures_only", paths=", ".join(only))))
    sections.append(section)
    title = t("compare_title", a=a, b=b)
    return render("compare.html.j2", t, title, t("report_subtitle"), sections)
