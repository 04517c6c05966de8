"""Why a target was missed: one paragraph per row, from this run's own numbers."""

from __future__ import annotations

from collections.abc import Callable

from .measure import stats
from .notes import attribution
from .pipeline import ADDED_LAYER, PipelineResults
from .report import Row, notebook_split


def _probe(pipe: PipelineResults, prefix: str) -> float:
    return next(stats([r.wall_s for r in runs]).median for name, runs in pipe.probes.items() if prefix in name)


def _stage(pipe: PipelineResults, stage: str) -> float:
    return stats([r.wall_s for r in pipe.stages[stage]]).median


def _cheapest(pipe: PipelineResults) -> tuple[str, float]:
    return min(((s, _stage(pipe, s)) for s in pipe.stages), key=lambda item: item[1])


def _dvc_part(pipe: PipelineResults, series: str) -> str:
    wall, work, rest = attribution(pipe)[series]
    ran = pipe.ran[series]
    listed = ", ".join(f"{s} {_stage(pipe, s):.2f} s" for s in ran if s in pipe.stages) or "none"
    return (
        f"median {wall:.2f} s = {len(ran)} stage process(es) ({listed}; {work:.2f} s standalone) "
        f"+ {rest:.2f} s of DVC (importing it alone: {_probe(pipe, 'dvc'):.2f} s)"
    )


def full_run(row: Row, pipe: PipelineResults) -> str:
    wall, work, rest = attribution(pipe)["full"]
    nb = row.theirs.median
    cheap_name, cheap = _cheapest(pipe)
    imports = notebook_split([r.output for r in pipe.notebook])
    nb_imports = f"{imports[0].median:.1f} s of its {nb:.1f} s are imports" if imports else "it imports it too"
    k = len(pipe.ran["full"])
    baseline = _stage(pipe, "build_untrained")
    return (
        f"the notebook takes {nb:.1f} s here; the pipeline {wall:.1f} s: {k} stage processes ({work:.1f} s "
        f"standalone) + {rest:.1f} s of DVC, {rest / k:.2f} s per stage it runs (a profile of DVC outside this "
        "run: mostly ruamel.yaml re-reading dvc.yaml, dvc.lock and params.yaml and rewriting dvc.lock per stage; "
        f"a hardlink cache instead of copies made no difference in a separate trial). The largest stage, "
        f"build_untrained ({baseline:.1f} s), is mostly `import tensorflow` ({_probe(pipe, 'tensorflow'):.1f} s in a "
        f"bare interpreter), the notebook's own main cost ({nb_imports}), so the pipeline pays it as well. Every "
        "other stage is a fresh interpreter that imports numpy (h5py to read weights, matplotlib to draw: "
        f"{_probe(pipe, 'matplotlib'):.2f} s) and reads params.yaml: the cheapest ({cheap_name}) takes "
        f"{cheap:.2f} s, so {k} processes cost about {k * cheap:.1f} s before any work. ≤ 1.5 needs "
        f"{wall - 1.5 * nb:.1f} s less. What it would take: build the untrained twin without TensorFlow (numpy "
        "initialisers that reproduce Keras's seeded glorot_uniform/zeros: the book's untrained numbers must stay, "
        "so this means reimplementing TF's stateless Philox RNG), or keep TensorFlow and cut processes (one render "
        "stage instead of render_figures + one render_maps per layer; fetch_model/fetch_data/samples merged), and "
        "DVC's per-stage bookkeeping with them. Both trade away something the issues ask for (the book's exact "
        "untrained numbers; per-layer stages that make adding a layer cheap, row 4), so this report keeps the miss."
    )


def noop(row: Row, pipe: PipelineResults) -> str:
    return (
        f"nothing ran, so this is DVC alone: {_dvc_part(pipe, 'noop')}; the rest is DVC building its stage index "
        "from dvc.yaml/params.yaml (foreach, interpolation) and checking every dependency and output against its "
        "state database and dvc.lock (a profile outside this run: about half of it is ruamel.yaml parsing "
        "dvc.yaml and dvc.lock twice each and params.yaml once per stage with params). The target allows "
        f"{row.limit * row.theirs.median:.2f} s against this run's notebook. This is DVC's cost, not convlens's "
        "code; fewer stages (and so a shorter dvc.lock) would shrink it somewhat."
    )


def rerun(series: str, expected: str) -> Callable[[Row, PipelineResults], str]:
    def explain(row: Row, pipe: PipelineResults) -> str:
        noop = attribution(pipe)["noop"][0]
        return (
            f"{expected}: {_dvc_part(pipe, series)}. The target allows {row.limit * row.theirs.median:.2f} s "
            f"against this run's notebook. DVC alone needs {noop:.2f} s to find that nothing changed (row 2) and "
            "more when a stage runs (hashing its new outputs, caching them, rewriting dvc.lock); each figure stage "
            f"is a fresh interpreter that imports numpy and matplotlib ({_probe(pipe, 'matplotlib'):.2f} s) before "
            "it draws. So the target is out of reach while every figure stage is its own process behind DVC; "
            "what is left to the figures themselves is a small part of the time."
        )

    return explain


def add_layer(row: Row, pipe: PipelineResults) -> str:
    return (
        f"adding {ADDED_LAYER} reruns three stages: {_dvc_part(pipe, 'add_layer')}, against a full run of "
        f"{row.theirs.median:.1f} s."
    )


def render(row: Row, pipe: PipelineResults) -> str:
    ms, nb = row.ours.median * 1000, row.theirs.median * 1000
    return (
        f"the mosaic takes {ms:.0f} ms against the loop's {nb:.0f} ms ({nb / ms:.1f}× faster, 8× asked: "
        f"≤ {nb / 8:.0f} ms). It is coloured at its own size, scaled up by whole pixels and written by Pillow "
        "(zlib level 1); only its title goes through matplotlib, so what is left is PNG encoding and the title."
    )


def dataset(row: Row, pipe: PipelineResults) -> str:
    return (
        f"statistics {row.ours.median:.1f} s against the bare pass's {row.theirs.median:.1f} s. The accumulator "
        "(convlens/analysis/stats.py `ChannelAccumulator.update`) reduces every activation of 4 layers per batch: "
        "per-image means as one BLAS product, `count_nonzero(maps > 0)` and the channel maxima, in a second thread "
        "while the next batch runs through the network. Single-threaded reductions against a 2-thread BLAS "
        "forward pass: the ratio grows when the machine is quiet and shrinks under load."
    )


def examples(row: Row, pipe: PipelineResults) -> str:
    return (
        f"statistics with examples {row.ours.median:.1f} s against {row.theirs.median:.1f} s without. The examples "
        "(convlens/analysis/examples.py) add one reduction per layer and batch (each image's max or mean per "
        "channel) and a "
        "stable sort of k + batch rows per channel, in the statistics' second thread; under load that thread "
        "no longer hides behind the forward pass."
    )


def memory(row: Row, pipe: PipelineResults) -> str:
    return (
        f"peak RSS grows from {row.theirs.median:.0f} MB to {row.ours.median:.0f} MB; streaming keeps one batch "
        "of activations, so growth means something accumulates per image (memory-mapped input pages are 784 B per "
        "image, 47 MB for 60,000)."
    )


EXPLAIN = {
    "1": full_run,
    "2": noop,
    "3a": rerun("map_cmap", "the two render_maps instances rerun"),
    "3b": rerun("filter_cmap", "render_figures reruns (all weight, sample and class-heatmap figures)"),
    "4": add_layer,
    "5": render,
    "6": dataset,
    "7": memory,
    "8": examples,
}
