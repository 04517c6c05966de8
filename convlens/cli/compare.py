"""Compare two runs' per-layer statistics: ``python -m convlens compare A [B]``.

A and B are git revisions, experiment names (``dvc exp show``) or ``workspace`` (B's default).
Writes ``outputs/compare/<A>_vs_<B>.csv`` (every statistic of every model and layer: both values, change, relative
change), ``.png`` (the statistics that changed, by how much) and ``.html`` (the changed params, that table and
chart, and the figures that differ side by side, the film's GIFs animated; its images are files in
``<A>_vs_<B>_files/`` beside it: share the page with that folder). A name a file name cannot hold is made one, with
a digest where that changed it (:func:`output_stem`).
Not a DVC stage: it reads the metrics, params and figures DVC recorded for each run.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import re
import sys
from pathlib import Path

from convlens.analysis.compare import changed, compare_statistics, one_sided, shared, statistic_rows
from convlens.errors import ConvlensError
from convlens.pipeline import paths
from convlens.pipeline.config import PARAMS_FILE, project_root, read_yaml
from convlens.pipeline.files import atomic_path
from convlens.schema import LANGUAGES

log = logging.getLogger("compare")
FIGURE_SUFFIXES = (".png", ".gif")  # the figures' stills and the film's animations (render_film: outputs/figures/film)


def run_metrics(root: Path, rev: str) -> dict:
    """The metrics files of one run, as DVC recorded them (``workspace``: the files on disk)."""
    from dvc.repo import Repo
    from dvc.scm import RevError

    try:
        shown = Repo(str(root)).metrics.show(revs=[rev])
    except RevError as e:
        raise ConvlensError(f"{e}; name a git revision, an experiment (dvc exp show) or workspace") from e
    files = shown.get(rev, {}).get("data", {})
    broken = [path for path, entry in files.items() if "error" in entry]
    if broken or not files:
        raise ConvlensError(f"{rev} has no readable metrics ({', '.join(broken) or 'none'}); run dvc repro first")
    return {path: entry["data"] for path, entry in files.items()}


def run_params(root: Path, rev: str) -> dict:
    """The params of one run, as DVC recorded them (``{}`` when it has none)."""
    from dvc.repo import Repo

    shown = Repo(str(root)).params.show(revs=[rev])
    return shown.get(rev, {}).get("data", {}).get(PARAMS_FILE, {}).get("data", {})


def run_figures(root: Path, rev: str) -> dict[str, bytes] | str:
    """Every figure (:data:`FIGURE_SUFFIXES`: PNG, the film's GIFs) under ``outputs/figures`` of one run by its path
    there, or why they cannot be read (a run whose DVC cache is elsewhere: ``dvc pull`` first)."""
    folder = paths.figures_dir(root)
    if rev == "workspace":
        found = sorted(p for p in folder.rglob("*") if p.suffix in FIGURE_SUFFIXES and p.is_file())
        return {p.relative_to(folder).as_posix(): p.read_bytes() for p in found}
    from dvc.exceptions import DvcException
    from dvc.fs import DVCFileSystem
    from dvc.repo import Repo
    from dvc.scm import resolve_rev

    try:
        fs = DVCFileSystem(repo=str(root), rev=resolve_rev(Repo(str(root)).scm, rev))
        figures = paths.relative(root, folder)  # as the DVC file system names it
        found = [p for p in fs.find(figures) if p.endswith(FIGURE_SUFFIXES)]
        return {p.removeprefix(f"{figures}/"): fs.read_bytes(p) for p in found}
    except (OSError, DvcException) as e:
        return f"{type(e).__name__}: {e}"


def refuse_unreproduced(root: Path) -> None:
    """The workspace as a run only where its results are its ``params.yaml``'s: none where ``dvc status`` finds a
    stage changed (params not reproduced yet, outputs an interrupted run deleted), which would compare old results
    under new params."""
    from convlens.pipeline.upstream import stage_list, unreproduced

    if stale := unreproduced(root):
        raise ConvlensError(
            f"the workspace is not reproduced: dvc status finds {stage_list(stale)} changed (params.yaml or their "
            "inputs are not what made their outputs, or outputs are missing), so its results are not its params'; "
            "run dvc repro first, or compare two runs (dvc exp show names them)"
        )


def output_stem(a: str, b: str) -> str:
    """The files' name of the comparison of ``a`` and ``b``: ``<a>_vs_<b>``, each run of characters a file name should
    not hold made ``_``; where that changed the name (``r#1`` and ``r_1`` both give ``r_1``), or a run's own name holds
    ``_vs_`` (``x_vs_y`` vs ``z`` and ``x`` vs ``y_vs_z``), followed by ``-`` and 8 hex digits of the two names, so
    two comparisons never share files."""
    raw = f"{a}_vs_{b}"
    stem = re.sub(r"[^\w.-]+", "_", raw)
    if stem == raw and "_vs_" not in a and "_vs_" not in b:
        return stem
    digest = hashlib.sha256("\0".join((a, b)).encode()).hexdigest()[:8]
    return f"{stem}-{digest}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m convlens compare", description=__doc__.splitlines()[0])
    parser.add_argument("a", help="the first run: git revision, experiment name or workspace")
    parser.add_argument("b", nargs="?", default="workspace", help="the second run (default: workspace)")
    parser.add_argument("--out", type=Path, help="folder for the CSV, PNG and HTML")
    parser.add_argument(
        "--language", choices=LANGUAGES, help="of the HTML page's words (default: report.language of params.yaml)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="compare: %(message)s", stream=sys.stdout, force=True)
    try:
        root = project_root()
        table = compare_statistics(statistic_rows(run_metrics(root, args.a)), statistic_rows(run_metrics(root, args.b)))
        if "workspace" in (args.a, args.b):  # after a run it cannot find or read, which that names
            refuse_unreproduced(root)
        from convlens.render.figures import comparison_figure
        from convlens.render.language import figure_language
        from convlens.report.assets import Assets
        from convlens.report.compare_page import compare_page, write_page

        stem = output_stem(args.a, args.b)
        out = paths.compare_dir(root) if args.out is None else root / args.out  # an absolute --out stays as it is
        with atomic_path(out / f"{stem}.csv") as tmp:
            table.to_csv(tmp, index=False)
        diff, both, only = changed(table), len(shared(table)), len(one_sided(table))
        title = f"{args.a} → {args.b}: {len(diff)} of {both} statistics in both runs changed"
        title += f"; {only} in one run only (in the CSV, not changes)" if only else ""
        language = args.language or (read_yaml(root / PARAMS_FILE) or {}).get("report", {}).get("language", "en")
        with figure_language(language) as t:  # the figure in the page's language; the log line in English
            drawn = t("compare_title", a=args.a, b=args.b, changed=len(diff), total=both)
            drawn += t("compare_title_only", count=only) if only else ""
            comparison_figure(diff if len(diff) else table.head(0), out / f"{stem}.png", (args.a, args.b), drawn)
        page = compare_page(
            (args.a, args.b),
            (run_params(root, args.a), run_params(root, args.b)),
            table,
            diff,
            (out / f"{stem}.png").read_bytes(),
            (run_figures(root, args.a), run_figures(root, args.b)),
            language,
            assets := Assets(prefix=f"{stem}_files/"),
        )
        write_page(out / f"{stem}.html", page, assets)  # the figures as files in <stem>_files/: the page stays light
        log.info("%s; wrote %s.csv, .png, .html and %s_files/ in %s", title, stem, stem, out)
    except ConvlensError as e:
        print(f"compare: error: {e}", file=sys.stderr)
        sys.exit(1)
