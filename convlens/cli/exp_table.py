"""A readable experiment table from ``dvc exp show --json``: one row per run, the params that differ, a few metrics.

Pure functions: records (the parsed JSON) → a pandas DataFrame of flat ``a.b.c`` columns → fixed-width text whose
header splits each dotted name over lines, so ``trained.conv2d.map_mean`` takes the width of ``map_mean``.
"""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import PurePosixPath

import pandas as pd

from convlens.errors import ConvlensError
from convlens.schema import TRAINED_HERE, not_chosen

PARAMS_FILE = "params.yaml"
# The book's comparison (trained vs untrained kernels) and how active the first layer's maps are: these statistics
# of each run's first layer with kernel statistics (the book's: conv2d, so trained.conv2d.std, untrained.conv2d.std,
# trained.conv2d.map_mean, untrained.conv2d.map_mean).
DEFAULT_STATISTICS = ("std", "map_mean")
MODELS = ("trained", "untrained")
# Pinned by the choice of `model` or `data` (their config groups: `model.path` and `data.name` say which), or
# derived while conf/ is composed (`model.source`, `data.source`, `feature_maps.each`), or set by the model preset
# (`model.train_runs`, `model.film`: `model.name` says whether it was trained here; the `analyses` preset's lists and
# the deps they set: `analyses.name` says which): they only widen the table.
# A name hides the keys under it too (`data.files` hides `data.files.archive.sha256`).
DEFAULT_HIDDEN = (
    "model.file",
    "model.url",
    "model.sha256",
    "model.source",
    "model.conv_layers",
    "model.train_runs",
    "model.film",
    "data.format",
    "data.subdir",
    "data.urls",
    "data.files",
    "data.source",
    "data.classes",
    "feature_maps.each",
    "analyses.activation_max",
    "analyses.attribution",
    "analyses.activation_max_outputs",
    "analyses.activation_max_figures",
    "analyses.attribution_metrics",
    "analyses.attribution_figures",
)
# The params that say which model and which data a run looked at: the last to be left out of a table too wide.
IMPORTANT = ("model.name", "data.name")
# Derived, not a param: the first digits of the hash DVC recorded for the model file (a dependency in dvc exp show),
# shown where two runs read the same model.source with different contents (the file replaced in place).
MODEL_HASH = "model.md5"
MODEL_FILE = ("model.source", "model.path")
WIDTH = 120
MIN_CELL = 12  # a param column is cut (…) down to this before any is left out
GAP = "  "


def flatten(tree: Mapping, prefix: str = "") -> dict[str, object]:
    """Nested dicts as ``{"a.b.c": leaf}``; lists stay leaves."""
    flat: dict[str, object] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _run(rev: Mapping, *names: str | None) -> dict:
    """One finished run: named by the first of ``names`` DVC gave, else by its short commit."""
    name = next((n for n in names if n), rev["rev"][:7])
    data = rev["data"]
    params = ((data.get("params") or {}).get(PARAMS_FILE) or {}).get("data") or {}
    metrics = {path: entry.get("data") or {} for path, entry in (data.get("metrics") or {}).items()}
    return {"name": name, "params": params, "metrics": metrics, "deps": data.get("deps") or {}}


def runs(records: Sequence[Mapping]) -> list[dict]:
    """The baseline commits and their experiments, in ``dvc exp show`` order, skipping the workspace and
    experiments that are queued, running or failed (no data yet): ``{"name", "params", "metrics"}``."""
    found = []
    for entry in records:
        if entry.get("rev") == "workspace" or not entry.get("data"):
            continue
        found.append(_run(entry, entry.get("name")))
        for exp in entry.get("experiments") or []:
            for rev in exp.get("revs") or []:
                if rev.get("data") and not rev.get("error"):
                    found.append(_run(rev, rev.get("name"), exp.get("name")))
    return found


def _bare(path: str) -> tuple[str, ...]:
    """A path's names without the root, ``.`` and leading ``..``: ``/srv/m.keras`` as a param, ``../../srv/m.keras``
    as dvc exp show names it (relative to the repository) read alike."""
    parts = [part for part in PurePosixPath(path).parts if part not in ("/", ".")]
    while parts and parts[0] == "..":
        parts.pop(0)
    return tuple(parts)


def dep_hash(deps: Mapping[str, Mapping], path: str) -> str | None:
    """The hash DVC recorded for the dependency ``path`` in a run's ``deps`` (dvc exp show's), else None."""
    for key, dep in deps.items():
        if _bare(key) == _bare(path) and isinstance(dep, Mapping) and dep.get("hash"):
            return str(dep["hash"])
    return None


def model_hashes(found: Sequence[Mapping], flat: Sequence[Mapping[str, object]], digits: int = 8) -> list | None:
    """Each run's model file hash (its first ``digits``) where two runs read the same model file
    (:data:`MODEL_FILE`) with different contents, else None: nothing else tells those runs apart. A model trained
    in the run is its own output, which its recipe tells apart: not counted."""
    files = [None if f.get(TRAINED_HERE) else next((str(f[k]) for k in MODEL_FILE if f.get(k)), None) for f in flat]
    digests = [dep_hash(run["deps"], file) if file else None for run, file in zip(found, files, strict=True)]
    hashes = [digest[:digits] if digest else None for digest in digests]
    seen: dict[str, set[str]] = {}
    for file, digest in zip(files, hashes, strict=True):
        if file and digest:
            seen.setdefault(file, set()).add(digest)
    return hashes if any(len(digests) > 1 for digests in seen.values()) else None


def table_cell(value: object) -> object:
    """A param value as the table shows it: lists compact (``[conv2d,conv2d_1]``), scalars as they are."""
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":")).replace('"', "")
    return "null" if value is None else value


def metric_value(metrics: Mapping[str, Mapping], key: str) -> float | None:
    """``key`` (``trained.conv2d.map_mean``, or ``path:key`` for one metrics file) in a run's metrics files."""
    path, _, name = key.rpartition(":")
    files = {path: metrics.get(path) or {}} if path else metrics
    hits = [flat[name] for flat in (flatten(data) for data in files.values()) if name in flat]
    if len(hits) > 1:
        raise ConvlensError(f"metric {name} is in several metrics files; name one as <file>:{name}")
    return hits[0] if hits else None


def known_metrics(found: Iterable[dict]) -> list[str]:
    names: dict[str, None] = {}
    for run in found:
        for data in run["metrics"].values():
            names.update(dict.fromkeys(flatten(data)))
    return list(names)


def first_layer(run: Mapping) -> str | None:
    """The first layer (model order) with kernel statistics (``trained.<layer>.std``) in a run's metrics."""
    for data in run["metrics"].values():
        for layer, stats in ((data.get(MODELS[0]) or {}) if isinstance(data, Mapping) else {}).items():
            if isinstance(stats, Mapping) and DEFAULT_STATISTICS[0] in stats:
                return str(layer)
    return None


def default_metrics(found: Sequence[Mapping]) -> list[str]:
    """:data:`DEFAULT_STATISTICS` of each run's :func:`first_layer` (each layer once, in run order), trained then
    untrained, those that some run has: the book's four columns for the book's runs, a model's own first layer for
    a model of other layer names."""
    layers = dict.fromkeys(layer for run in found if (layer := first_layer(run)))
    wanted = [f"{m}.{layer}.{s}" for layer in layers for s in DEFAULT_STATISTICS for m in MODELS]
    return [m for m in wanted if any(metric_value(r["metrics"], m) is not None for r in found)]


def param_keys(found: Iterable[Mapping]) -> list[str]:
    """Every param key of the runs, flat (``data.files.archive.sha256``), in the order first seen."""
    return list(dict.fromkeys(k for run in found for k in flatten(run["params"])))


def hidden_params(found: Sequence[Mapping], hide: Sequence[str] = (), show: Sequence[str] = ()) -> list[str]:
    """:data:`DEFAULT_HIDDEN` plus ``hide``, minus ``show``; a name in ``hide`` or ``show`` that is no run's param
    (nor a name above one: ``data.files``) is an error that lists the params."""
    keys = param_keys(found)
    for option, asked in (("--hide", hide), ("--show", show)):
        unknown = [h for h in asked if not any(k == h or k.startswith(f"{h}.") for k in keys)]
        if unknown:
            raise ConvlensError(
                f"{option}: no run has the param {', '.join(unknown)}; the params are: {', '.join(keys)}"
            )
    return [h for h in (*DEFAULT_HIDDEN, *hide) if h not in show]


def finished_runs(records: Sequence[Mapping]) -> list[dict]:
    """:func:`runs`, at least one (else the error that says to run an experiment first)."""
    found = runs(records)
    if not found:
        raise ConvlensError("no experiments with results yet: run dvc exp run (or dvc repro and commit) first")
    return found


def table(
    records: Sequence[Mapping],
    metrics: Sequence[str] | None = None,
    hidden: Sequence[str] = DEFAULT_HIDDEN,
    defaults: Mapping[str, object] = {},
) -> pd.DataFrame:
    """One row per run (index: its name): every param whose value differs between the runs it applies to, or in a
    run from ``defaults`` (flat: ``train.epochs``, the training recipe's, so a lone run of 1 epoch says so), minus
    ``hidden`` and the keys under them (blank where :func:`not_chosen`); :data:`MODEL_HASH` where
    :func:`model_hashes` tells runs apart; then ``metrics`` in the order given (``None``: :func:`default_metrics`).
    A metric no run has is an error that lists a few that exist."""
    found = finished_runs(records)
    metrics = default_metrics(found) if metrics is None else metrics
    missing = [m for m in metrics if all(metric_value(r["metrics"], m) is None for r in found)]
    if missing:
        some = ", ".join(known_metrics(found)[:6])
        raise ConvlensError(f"no run has the metric {', '.join(missing)} (some that exist: {some}, …)")
    flat = [flatten(r["params"]) for r in found]
    params = pd.DataFrame([{k: table_cell(v) for k, v in f.items()} for f in flat])
    blank = pd.DataFrame([[k in keys for k in params.columns] for keys in map(not_chosen, flat)], columns=list(params))
    shown = [c for c in params.columns if not any(c == h or c.startswith(f"{h}.") for h in hidden)]
    # a key a run lacks differs; a key not a run's choice is left out of the comparison, and blank
    chosen = {c: params.loc[~blank[c], c].astype(str) for c in shown}
    default = {c: str(table_cell(defaults[c])) for c in shown if c in defaults}
    differ = [c for c in shown if chosen[c].nunique(dropna=False) > 1 or (chosen[c] != default.get(c, chosen[c])).any()]
    frame = params[differ].astype(object).mask(blank[differ])  # object: an int stays an int
    if (hashes := model_hashes(found, flat)) is not None:
        frame[MODEL_HASH] = hashes
    for m in metrics:
        frame[m] = [metric_value(r["metrics"], m) for r in found]
    frame.index = pd.Index([r["name"] for r in found], name="experiment")
    return frame


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _fit(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def cut_cells(texts: Sequence[str], size: int) -> list[str]:
    """A column's cells cut (``…``) to ``size``: on the right, or, where that makes different values read alike
    (``models/chai…`` for ``models/chain.keras`` and ``models/chain2.keras``), on the left (``…chain2.keras``) or in
    the middle, whichever keeps the most values apart (the right cut among equals)."""
    if all(len(text) <= size for text in texts):
        return list(texts)
    head, tail = (size - 1) // 2, size - 1 - (size - 1) // 2

    def left(text: str) -> str:
        return text if len(text) <= size else "…" + text[len(text) - size + 1 :]

    def middle(text: str) -> str:
        return text if len(text) <= size else text[:head] + "…" + text[len(text) - tail :]

    ways = [[_fit(t, size) for t in texts], [left(t) for t in texts], [middle(t) for t in texts]]
    return max(ways, key=lambda cells: len(set(cells)))  # max keeps the first of equals: the right cut


def _header(name: str) -> list[str]:
    """A dotted name split over lines: ``trained.conv2d.map_mean`` → ``["trained", "conv2d", "map_mean"]``."""
    return name.split(".")


def merged_pairs(columns: Sequence[Sequence[str]], rows: int) -> int:
    """How many pairs of the ``rows`` rows no column of ``columns`` (each its cells, row by row) tells apart."""
    groups = Counter(tuple(cells[row] for cells in columns) for row in range(rows))
    return sum(k * (k - 1) // 2 for k in groups.values())


def column_to_leave_out(columns: Sequence[Sequence[str]], rows: int, kept: Collection[int] = ()) -> int:
    """The index in ``columns`` (the param columns shown, their cells as cut) whose loss leaves the fewest pairs of
    rows that the rest cannot tell apart, the last of equals: a param that only one run changes (``untrained.seed``
    of a seed run beside runs of other models) keeps its column, so that run's row does not read as its
    baseline's. The indices in ``kept`` (:data:`IMPORTANT`: which model, which data) go only when nothing else is
    left."""
    merged = [merged_pairs([c for j, c in enumerate(columns) if j != i], rows) for i in range(len(columns))]
    free = [i for i in reversed(range(len(columns))) if i not in kept] or list(reversed(range(len(columns))))
    return min(free, key=merged.__getitem__)


def unshown_changes(
    names: Sequence[str], shown: Sequence[Sequence[str]], left_out: Mapping[str, Sequence[str]]
) -> list[str]:
    """``killed2: untrained.seed=3`` for each row that the ``shown`` param columns (their cells as cut) cannot tell
    from another row: its values of the ``left_out`` params (name → cells) that differ between those rows."""
    keys = [tuple(cells[row] for cells in shown) for row in range(len(names))]
    changes = []
    for row, name in enumerate(names):
        alike = [other for other, key in enumerate(keys) if key == keys[row]]
        own = [f"{key}={cells[row]}" for key, cells in left_out.items() if len({cells[r] for r in alike}) > 1]
        if own:
            changes.append(f"{name}: {', '.join(own)}")
    return changes


def _as_cut(columns: Sequence[Sequence], sizes: Sequence[int], indices: Sequence[int]) -> list[list[str]]:
    """The cells of ``columns[indices]`` cut on the right to their sizes: what :func:`column_to_leave_out` weighs
    (the cells shown, :func:`cut_cells`, keep at least as many values apart)."""
    return [[_fit(text, sizes[i]) for text in columns[i][1]] for i in indices]


def render(frame: pd.DataFrame, width: int = WIDTH, keep: Sequence[str] = ()) -> str:
    """``frame`` as fixed-width text no wider than ``width``: the index first, dotted column names over several
    header lines, numbers to 4 significant digits. Too wide, the widest param column is cut (``…``) down to
    ``MIN_CELL``, then param columns are left out one by one (:func:`column_to_leave_out`: the one that tells the
    fewest rows apart, the last of equals, :data:`IMPORTANT` last), and a final line names them, then each row that
    the columns shown cannot tell from another with its values of them (:func:`unshown_changes`); the columns in
    ``keep`` (the metrics asked for) always show in full."""
    columns = [[frame.index.name or "", [_text(v) for v in frame.index], False]]
    columns += [[str(c), [_text(v) for v in frame[c]], pd.api.types.is_numeric_dtype(frame[c])] for c in frame]
    sizes = [max(len(line) for line in [*_header(name), *cells]) for name, cells, _ in columns]
    left_out = []
    while (excess := sum(sizes) + len(GAP) * (len(sizes) - 1) - width) > 0:
        params = [i for i in range(1, len(columns)) if columns[i][0] not in keep]
        if not params:
            break
        widest = max(params, key=lambda i: sizes[i])
        if sizes[widest] > MIN_CELL:
            sizes[widest] = max(MIN_CELL, sizes[widest] - excess)
        else:
            kept = [k for k, i in enumerate(params) if columns[i][0] in IMPORTANT]
            out = params[column_to_leave_out(_as_cut(columns, sizes, params), len(frame), kept)]
            left_out.append(columns.pop(out))
            sizes.pop(out)
    left_out.sort(key=lambda column: list(map(str, frame.columns)).index(column[0]))
    depth = max(len(_header(name)) for name, _, _ in columns)
    lines = []
    for level in range(depth):
        cells = []
        for (name, _, numeric), size in zip(columns, sizes, strict=True):
            parts = _header(name)
            part = _fit(parts[level - depth + len(parts)], size) if level >= depth - len(parts) else ""
            cells.append(part.rjust(size) if numeric else part.ljust(size))
        lines.append(GAP.join(cells).rstrip())
    shown_cells = [cut_cells(texts, size) for (_, texts, _), size in zip(columns, sizes, strict=True)]
    for row in range(len(frame)):
        cells = [
            cells[row].rjust(size) if numeric else cells[row].ljust(size)
            for (_, _, numeric), size, cells in zip(columns, sizes, shown_cells, strict=True)
        ]
        lines.append(GAP.join(cells).rstrip())
    if left_out:
        note = f"(too wide to show: {', '.join(c[0] for c in left_out)}; choose with --hide, or see dvc exp show --csv)"
        lines += textwrap.wrap(note, width, break_long_words=False)  # a column's name stays whole
    params = [i for i in range(1, len(columns)) if columns[i][0] not in keep]
    unseen = {name: texts for name, texts, _ in left_out}  # left out, or cut where the cut hides a difference
    unseen |= {columns[i][0]: columns[i][1] for i in params if shown_cells[i] != columns[i][1]}
    changes = unshown_changes(columns[0][1], [shown_cells[i] for i in params], unseen)
    if changes:
        lines += textwrap.wrap(
            f"(not shown: {'; '.join(changes)})", width, break_long_words=False, break_on_hyphens=False
        )  # a value (a path) stays whole
    return "\n".join(lines)


def exp_table_text(
    records: Sequence[Mapping],
    metrics: Sequence[str] | None = None,
    hidden: Sequence[str] = DEFAULT_HIDDEN,
    width: int = WIDTH,
    defaults: Mapping[str, object] = {},
) -> str:
    """``dvc exp show --json`` records as the text table ``python -m convlens experiments`` prints."""
    metrics = default_metrics(finished_runs(records)) if metrics is None else metrics
    return render(table(records, metrics, hidden, defaults), width, keep=metrics)


def experiments_text(
    records: Sequence[Mapping],
    metrics: Sequence[str] | None = None,
    hide: Sequence[str] = (),
    show: Sequence[str] = (),
    width: int = WIDTH,
    defaults: Mapping[str, object] = {},
) -> str:
    """The command's table: :data:`DEFAULT_HIDDEN` plus ``hide`` minus ``show`` left out (:func:`hidden_params`)."""
    return exp_table_text(records, metrics, hidden_params(finished_runs(records), hide, show), width, defaults)
