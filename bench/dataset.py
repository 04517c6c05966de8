"""The dataset statistics' peak RSS by N (row 10 of ``python -m bench``, issue 5's row 7), and, by hand, issue 5's
rows 6 and 8: the statistics against a bare batched forward pass, and what the dataset examples (each channel's top k
images) add to them.

``python -m bench.dataset ROOT N`` is row 10's worker: the trained model's statistics over the
first N images (the test split up to 10,000, the train split beyond), in a fresh process.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import yaml

from convlens.analysis.dataset import MAP_KINDS, stream_pass
from convlens.model.archive import open_model
from convlens.model.batching import batches
from convlens.model.forward import Activations, open_network
from convlens.model.inputs import model_inputs
from convlens.pipeline import paths
from convlens.pipeline.artifacts import load_classes

from .measure import run_measured


@dataclass(frozen=True)
class Inputs:
    """What ``dataset_stats`` streams: images (memory-mapped), labels, layers and its params."""

    images: np.ndarray
    labels: np.ndarray
    names: list[str]
    classes: int
    scale: float
    batch_size: int
    examples: tuple[int, str]  # dataset.examples (k, by)


def split_for(n: int) -> str:
    """The test split holds 10,000 images; more come from the train split (60,000)."""
    return "test" if n <= 10_000 else "train"


def load_inputs(root: Path, n: int | None = None) -> Inputs:
    """The first ``n`` images (all of the test split by default) and the params of a reproduced clone."""
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    split = split_for(n or 0)
    images = np.load(root / "outputs" / "data" / f"{split}_images.npy", mmap_mode="r")
    labels = np.load(root / "outputs" / "data" / f"{split}_labels.npy", mmap_mode="r")
    if n is not None:
        if n > len(images):
            raise ValueError(f"{n} images asked for, the {split} split has {len(images)}")
        images, labels = images[:n], labels[:n]
    infos = open_model(root, "trained").layers
    return Inputs(
        images=images,
        labels=np.asarray(labels, np.int64),
        names=[i.name for i in infos if i.kind in MAP_KINDS],
        classes=len(load_classes(root)),  # outputs/data/classes.json: data.classes may be null
        scale=float(params["input"]["scale"]),
        batch_size=int(params["dataset"]["batch_size"]),
        examples=(int(params["dataset"]["examples"]["k"]), str(params["dataset"]["examples"]["by"])),
    )


def network_for(root: Path, role: str, inp: Inputs) -> Activations:
    """What computes the layers asked for, as dataset_stats opens it: the numpy network up to the deepest one, or
    Keras for a model the numpy forward pass does not compute (a branch: ``forward.open_network``)."""
    return open_network(open_model(root, role), inp.names, lambda note: None)


def bare_pass(network: Activations, inp: Inputs) -> None:
    """The yardstick: the same multi-output forward pass over the same batches, nothing accumulated."""
    for part in batches(len(inp.images), inp.batch_size):
        network.activations(model_inputs(inp.images[part], inp.scale), inp.names)


def stats_pass(network: Activations, inp: Inputs) -> None:
    """The project's dataset statistics (what ``dataset@<model>`` runs, without the predictions)."""
    stream_pass(network, inp.images, inp.labels, inp.names, inp.classes, inp.scale, inp.batch_size, "bench")


def examples_pass(network: Activations, inp: Inputs) -> dict[str, dict[str, np.ndarray]]:
    """The statistics with the dataset examples, as ``dataset@<model>`` runs them, by layer."""
    return stream_pass(
        network, inp.images, inp.labels, inp.names, inp.classes, inp.scale, inp.batch_size, "bench", inp.examples
    )[0]


def _timed(fn: Callable[[Activations, Inputs], object], network: Activations, inp: Inputs) -> float:
    start = time.perf_counter()
    fn(network, inp)
    return time.perf_counter() - start


Pairs = dict[str, tuple[list[float], list[float]]]


def bench_dataset(root: Path, runs: int, limit: int | None, say: Callable[[str], None]) -> tuple[Pairs, Inputs]:
    """Per model, ``runs`` timings of statistics and bare pass, alternating which goes first, in this process."""
    inp = load_inputs(root, limit)
    warm = replace(inp, images=inp.images[: inp.batch_size], labels=inp.labels[: inp.batch_size])
    results: Pairs = {}
    for role in paths.ROLES:
        network = network_for(root, role, inp)
        stats_pass(network, warm)
        bare_pass(network, warm)
        ours: list[float] = []
        theirs: list[float] = []
        for i in range(runs):
            pair = [(stats_pass, ours), (bare_pass, theirs)]
            for fn, into in pair if i % 2 == 0 else pair[::-1]:
                into.append(_timed(fn, network, inp))
            say(f"row 6 {role} run {i + 1}/{runs}: statistics {ours[-1]:.2f} s, bare forward {theirs[-1]:.2f} s")
        results[role] = (ours, theirs)
    return results, inp


def bench_examples(root: Path, runs: int, limit: int | None, say: Callable[[str], None]) -> Pairs:
    """Per model, ``runs`` timings of the statistics with and without the dataset examples, alternating which goes
    first, in this process (row 8: what the top k per channel adds)."""
    inp = load_inputs(root, limit)
    warm = replace(inp, images=inp.images[: inp.batch_size], labels=inp.labels[: inp.batch_size])
    results: Pairs = {}
    for role in paths.ROLES:
        network = network_for(root, role, inp)
        examples_pass(network, warm)
        with_: list[float] = []
        without: list[float] = []
        for i in range(runs):
            pair = [(examples_pass, with_), (stats_pass, without)]
            for fn, into in pair if i % 2 == 0 else pair[::-1]:
                into.append(_timed(fn, network, inp))
            say(f"row 8 {role} run {i + 1}/{runs}: with examples {with_[-1]:.2f} s, without {without[-1]:.2f} s")
        results[role] = (with_, without)
    return results


def bench_rss(root: Path, sizes: list[int], runs: int, say: Callable[[str], None]) -> dict[int, list[float]]:
    """Peak RSS (MB) of the trained model's statistics over N images, a fresh process per run."""
    peaks: dict[int, list[float]] = {}
    for i in range(runs):
        for n in sizes:
            run = run_measured((sys.executable, "-m", "bench.dataset", str(root), str(n)), Path.cwd(), _env())
            peaks.setdefault(n, []).append(run.maxrss_mb)
            say(f"row 10 run {i + 1}/{runs}: N={n}: peak RSS {run.maxrss_mb:.0f} MB ({run.wall_s:.1f} s)")
    return peaks


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def worker(root: Path, n: int) -> None:
    """Row 10's measured process: load, stream, exit (the parent reads the peak RSS)."""
    inp = load_inputs(root, n)
    stats_pass(network_for(root, "trained", inp), inp)


def examples_main(root: Path, runs: int) -> None:
    """``python -m bench.dataset --examples ROOT [RUNS]``: row 8 alone, on a project reproduced on the book's data."""
    from .measure import stats

    for role, (with_, without) in bench_examples(root, runs, None, print).items():
        a, b = stats(with_), stats(without)
        print(
            f"row 8 {role}: with examples {a.min:.2f} / {a.median:.2f} / {a.max:.2f} s, without {b.min:.2f} / "
            f"{b.median:.2f} / {b.max:.2f} s (min / median / max): overhead {100 * (a.median / b.median - 1):+.1f} % "
            f"of medians, {100 * (a.min / b.min - 1):+.1f} % of minima"
        )


if __name__ == "__main__":
    if sys.argv[1] == "--examples":
        examples_main(Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 5)
    else:
        worker(Path(sys.argv[1]), int(sys.argv[2]))
