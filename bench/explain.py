"""Why a target was missed: one paragraph per row, from this run's own numbers."""

from __future__ import annotations

from collections.abc import Callable

from .measure import stats
from .notes import attribution, unmeasured_work
from .pipeline import PipelineResults
from .report import Row, notebook_split

ROW_SERIES = {"1": "full", "2": "chapter", "3": "seed", "4": "map_cmap", "5": "filter_cmap", "6": "add_layer",
              "7": "noop"}  # fmt: skip


def _probe(pipe: PipelineResults, prefix: str) -> str:
    found = [stats([r.wall_s for r in runs]).median for name, runs in pipe.probes.items() if prefix in name]
    return f"{found[0]:.2f} s" if found else "not measured"


def _stage(pipe: PipelineResults, stage: str) -> float:
    return stats([r.wall_s for r in pipe.stages[stage]]).median


def floor(allowed: float, work: float, dvc_only: float, estimated: list[str]) -> str:
    """Whether faster stage commands alone could meet the row: DVC's own time against the allowance."""
    guess = f" ({', '.join(estimated)} estimated from the other instances of its group)" if estimated else ""
    if dvc_only >= allowed:
        return (
            f"; DVC's own time alone{guess}, {dvc_only:.2f} s, is more than the {allowed:.2f} s allowed: with these "
            "stages, no faster stage command meets this row, only fewer stages or less DVC time per stage would"
        )
    return (
        f"; DVC's own time{guess} is {dvc_only:.2f} s, so the stage commands would have to take at most "
        f"{allowed - dvc_only:.2f} s together, against {work:.2f} s now"
    )


def pipeline_row(series: str) -> Callable[[Row, PipelineResults], str]:
    def explain(row: Row, pipe: PipelineResults) -> str:
        ran = pipe.ran[series]
        wall = stats([r.wall_s for r in pipe.series[series]]).median
        allowed = row.limit * row.theirs.median if row.limit is not None else float("nan")
        text = f"median {wall:.2f} s against {allowed:.2f} s allowed; {len(ran)} stage process(es) ran"
        if pipe.stages:
            _, work, rest = attribution(pipe)[series]
            listed = ", ".join(f"{s} {_stage(pipe, s):.2f} s" for s in ran if s in pipe.stages) or "none"
            estimate = " with the estimates" if unmeasured_work(pipe, ran)[1] else ""
            text += (
                f" ({listed}; {work:.2f} s standalone{estimate}) + {rest:.2f} s of DVC (importing it alone: "
                f"{_probe(pipe, 'dvc')}; TensorFlow: {_probe(pipe, 'tensorflow')}; matplotlib: "
                f"{_probe(pipe, 'matplotlib')})"
            )
            text += floor(allowed, work, rest, unmeasured_work(pipe, ran)[1])
        else:
            text += f" ({', '.join(ran) or 'none'})"
        imports = notebook_split([r.output for r in pipe.notebook])
        if imports and series != "seed":  # row 3's yardstick is the cold run, the others' the notebook
            text += f"; the notebook spends {imports[0].median:.1f} s of its {row.theirs.median:.1f} s on imports"
        return text + "."

    return explain


def dataset(row: Row, pipe: PipelineResults) -> str:
    return (
        f"the dataset stages take {row.ours.median:.1f} s as processes against {row.theirs.median:.1f} s for Keras "
        f"to import, load both models and predict; {row.ours.median - row.theirs.median:.1f} s more (see 'Where the "
        "time goes' for each stage alone)."
    )


def report_size(row: Row, pipe: PipelineResults) -> str:
    folder = max(pipe.folder_mb.get("samples", [0.0]))
    return (
        f"the page takes {row.ours.max:.1f} MB at that many samples against {row.theirs.median:.1f} MB at the "
        f"default config; the whole outputs/report folder, with the figures the page links and their thumbnails, "
        f"{folder:.1f} MB."
    )


def memory(row: Row, pipe: PipelineResults) -> str:
    return (
        f"peak RSS {row.ours.median:.0f} MB against {row.theirs.median:.0f} MB; streaming keeps one batch of "
        "activations, so growth with N means something accumulates per image (memory-mapped input pages are 784 B "
        "per image, 47 MB for 60,000)."
    )


EXPLAIN = {**{key: pipeline_row(series) for key, series in ROW_SERIES.items()}, "8": dataset, "9": report_size,
           "10": memory}  # fmt: skip
