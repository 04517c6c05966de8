"""``python -m bench.engine [--runs N] [--out PATH]``: issue 25 §3, the numpy forward pass against the Keras engine
(``compute.engine``), whole processes (imports, model loads, reading the test split included), on the book's model
and Fashion-MNIST's test images from ``../shared/mirror``; and how far the two engines' numbers are apart.

Each measured process is ``python -m bench.engine worker …``: it streams N test images through the model (once for
"one model", twice, each load separate as ``network.Models.network`` does per role, for "both") in batches of 500,
asking for the last layer (``last``: the predictions, as evaluate does) or for every conv and pooling layer and the
last (``stats``: as the dataset stage does), each batch's outputs reduced to a per-channel maximum.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from .measure import PROJECT, run_measured, stats

MIRROR = PROJECT.parent / "shared" / "mirror"
MODEL = MIRROR / "best-cnn-model.keras"
IMAGES = MIRROR / "fashion-mnist" / "t10k-images-idx3-ubyte.gz"
SIZES = (1_000, 10_000)
BATCH = 500


def names_for(archive, layers: str) -> list[str]:
    last = archive.layers[-1].name
    if layers == "last":
        return [last]
    return [layer.name for layer in archive.layers if "conv" in layer.name or "pooling" in layer.name] + [last]


def worker(engine: str, images: int, models: int, layers: str) -> None:
    """One measured process: what a stage streaming ``images`` test images through ``models`` models does."""
    from convlens.data.idx import read_idx
    from convlens.model.archive import Archive
    from convlens.model.forward import open_network

    x = read_idx(IMAGES)[:images]
    for _ in range(models):
        archive = Archive.read(MODEL)
        names = names_for(archive, layers)
        network = open_network(archive, names, logging.getLogger("bench").info, engine)
        peaks = None
        for start in range(0, len(x), BATCH):
            batch = (x[start : start + BATCH, ..., np.newaxis] / np.float32(255)).astype(np.float32)
            outs = network.activations(batch, names)
            maxima = [o.reshape(-1, o.shape[-1]).max(axis=0) for o in outs]
            peaks = maxima if peaks is None else [np.maximum(p, m) for p, m in zip(peaks, maxima, strict=True)]


def agreement() -> list[tuple[str, float, float]]:
    """Per layer of the book's model: the largest absolute difference between the engines over the 10,000 test
    images, and the largest activation (for scale)."""
    from convlens.data.idx import read_idx
    from convlens.model.archive import Archive
    from convlens.model.forward import open_network

    x = read_idx(IMAGES)
    archive = Archive.read(MODEL)
    names = [layer.name for layer in archive.layers]
    numpy_net = open_network(archive, names, print, "numpy")
    keras_net = open_network(archive, names, print, "keras")
    diff, peak = dict.fromkeys(names, 0.0), dict.fromkeys(names, 0.0)
    for start in range(0, len(x), BATCH):
        batch = (x[start : start + BATCH, ..., np.newaxis] / np.float32(255)).astype(np.float32)
        for name, a, b in zip(
            names, numpy_net.activations(batch, names), keras_net.activations(batch, names), strict=True
        ):
            diff[name] = max(diff[name], float(np.abs(a - b).max()))
            peak[name] = max(peak[name], float(np.abs(b).max()))
    return [(name, diff[name], peak[name]) for name in names]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.engine", description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=PROJECT / "bench" / "engine.md")
    sub = parser.add_subparsers(dest="command")
    w = sub.add_parser("worker")
    w.add_argument("--engine", choices=("numpy", "keras"), required=True)
    w.add_argument("--images", type=int, required=True)
    w.add_argument("--models", type=int, choices=(1, 2), required=True)
    w.add_argument("--layers", choices=("last", "stats"), required=True)
    args = parser.parse_args(argv)
    if args.command == "worker":
        return worker(args.engine, args.images, args.models, args.layers)

    from convlens.model.archive import Archive
    from convlens.model.engine import KERAS_PAYS_OFF, choose_engine, multiply_adds

    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1"}
    started, load_before = time.time(), os.getloadavg()
    noop = [run_measured([sys.executable, "-c", "pass"], PROJECT, env).wall_s for _ in range(args.runs)]
    rows = []
    for layers, images, models in itertools.product(("last", "stats"), SIZES, (1, 2)):
        walls: dict[str, list[float]] = {"numpy": [], "keras": []}
        for _, engine in itertools.product(range(args.runs), ("numpy", "keras")):  # interleaved
            cmd = [sys.executable, "-m", "bench.engine", "worker", "--engine", engine]
            cmd += ["--images", str(images), "--models", str(models), "--layers", layers]
            walls[engine].append(run_measured(cmd, PROJECT, env).wall_s)
        rows.append((layers, images, models, stats(walls["numpy"]), stats(walls["keras"])))
        print(rows[-1][:3], stats(walls["numpy"]).median, stats(walls["keras"]).median, flush=True)

    archive = Archive.read(MODEL)
    sample = np.zeros((1, 28, 28, 1), np.float32)
    work = multiply_adds(archive, sample)
    lines = [
        "# The numpy forward pass against the Keras engine (issue 25 §3)",
        "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `python -m bench.engine --runs "
        f"{args.runs}` in {(time.time() - started) / 60:.1f} min; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, no GPU (`CUDA_VISIBLE_DEVICES=-1`), a shared machine (other engineers' tests ran; "
        f"load average {' '.join(f'{v:.1f}' for v in load_before)} at the start, "
        f"{' '.join(f'{v:.1f}' for v in os.getloadavg())} at the end): read the ratios more than the seconds.",
        "",
        "Whole processes (`python -m bench.engine worker`): Python start, imports (TensorFlow for Keras), reading the",
        "test split, loading the model (once per model), batches of 500. `last`: the predictions only; `stats`: every",
        "conv and pooling layer and the last. Wall seconds, min / median / max of "
        f"{args.runs} runs, interleaved. An empty Python process: {stats(noop).median:.2f} s.",
        "",
        f"The book's model: {work:,} multiply-adds per image. `auto` (no GPU) picks Keras from "
        f"{KERAS_PAYS_OFF / 1e9:.0f} G multiply-adds (images × the model's work; one stage process per model, "
        f"`dataset@<model>`): {KERAS_PAYS_OFF / work:,.0f} images of the book's model.",
        "",
        "| layers | images | models | numpy (s) | keras (s) | keras ÷ numpy | auto picks (a process per model) |",
        "|---|---|---|---|---|---|---|",
    ]
    for layers, images, models, n, k in rows:
        choice = choose_engine("auto", images, work, None).engine
        lines.append(
            f"| {layers} | {images:,} | {models} | {n.min:.2f} / {n.median:.2f} / {n.max:.2f} | "
            f"{k.min:.2f} / {k.median:.2f} / {k.max:.2f} | {k.median / n.median:.2f} | {choice} |"
        )
    lines += [
        "",
        "## Agreement on the real model",
        "",
        "Largest absolute difference between the engines over the 10,000 test images, per layer (float32 both):",
        "",
        "| layer | max abs diff | max abs activation |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {d:.2e} | {p:.3g} |" for name, d, p in agreement()]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return None


if __name__ == "__main__":
    main()
