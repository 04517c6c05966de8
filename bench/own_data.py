"""Issue 22 §6's benchmark rows: the user's own data at scale, in fresh processes, peak RSS by N.

1. The dataset pass (dataset statistics with the top-k examples, then the predictions: what ``dataset_stats`` and
   ``evaluate`` run per model) over seeded synthetic 32×32×3 uint8 images, memory-mapped from ``.npy`` as
   ``fetch_data`` stores them, through a small ResNet-style Keras model built here (a branch and ``Add``: the numpy
   forward pass hands it to Keras, as the pipeline does).
2. ``fetch_data``'s read of an image folder (``sources.write_dataset``: scan, headers, decode into the splits'
   uint8 ``.npy`` memmaps) of seeded synthetic 224×224 JPEGs, 10 classes.

``python -m bench.own_data [--quick] [--out PATH]`` writes the section (default ``bench/own_data.md``; ``--quick``:
small N, a temp file). The measured processes are this module's workers (``--worker pass ROOT N``: row 1 over the
first N images of a project-like ROOT, through ``bench.dataset``'s inputs and passes; ``--worker folder DIR OUT``:
row 2); each prints one ``RESULT {json}`` line, and ``measure.run_measured`` reads its wall time and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from .measure import PROJECT, run_measured

PASS_SIZES = (5_000, 50_000)
FOLDER_SIZES = (1_000, 5_000)
QUICK_PASS_SIZES = (500, 2_000)
QUICK_FOLDER_SIZES = (100, 400)
CLASSES = 10
TEST_SPLIT = 10_000  # bench.dataset.split_for: up to this many images come from the test split, more from train
SEED = 0
FLAT = 1.25  # peak RSS at the largest N ÷ at the smallest: at most this is "flat"


# ---------------------------------------------------------------- inputs: the model, the images, the folder


def build_model(path: Path) -> None:
    """A small ResNet-style classifier: Conv2D stem, a residual block, max pooling, a second residual block,
    global average pooling, Dense(10, softmax); random (seeded) weights, saved as ``.keras``."""
    from convlens.model.keras_models import keras  # TensorFlow, quietly

    keras.utils.set_random_seed(SEED)
    layers = keras.layers
    inputs = keras.Input((32, 32, 3), name="input")
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="stem")(inputs)
    for block in (1, 2):
        if block == 2:
            x = layers.MaxPooling2D(name="pool")(x)
        y = layers.Conv2D(16, 3, padding="same", activation="relu", name=f"block{block}_conv1")(x)
        y = layers.Conv2D(16, 3, padding="same", name=f"block{block}_conv2")(y)
        x = layers.Activation("relu", name=f"block{block}_out")(layers.Add(name=f"block{block}_add")([x, y]))
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(CLASSES, activation="softmax", name="dense")(x)
    keras.Model(inputs, outputs, name="small_resnet").save(path)


def synthetic_images(rng: np.random.Generator, labels: np.ndarray, size: int, noise: float) -> np.ndarray:
    """uint8 RGB images (len(labels), size, size, 3): a colour gradient whose colours and direction follow the
    label, a bright rectangle at a random place, and Gaussian noise of ``noise`` grey levels."""
    n = len(labels)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
    angle = (labels * (np.pi / CLASSES)).astype(np.float32)[:, None, None]
    t = np.cos(angle) * ramp[None, None, :] + np.sin(angle) * ramp[None, :, None]  # (n, size, size)
    colour = np.stack([(labels * k % CLASSES) / CLASSES for k in (1, 3, 7)], axis=1).astype(np.float32)
    img = 255 * (0.2 + 0.6 * t[..., None] * colour[:, None, None, :])
    corners = rng.integers(0, size // 2, (n, 2))
    for i, (r, c) in enumerate(corners):
        img[i, r : r + size // 4, c : c + size // 3] += 60
    img += rng.normal(0.0, noise, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_split(data: Path, split: str, n: int, rng: np.random.Generator, chunk: int = 5_000) -> None:
    """``n`` images and labels of ``split`` as ``fetch_data`` writes them (``.npy``), chunk by chunk."""
    labels = rng.integers(0, CLASSES, n).astype(np.uint8)
    images = np.lib.format.open_memmap(data / f"{split}_images.npy", mode="w+", dtype=np.uint8, shape=(n, 32, 32, 3))
    for start in range(0, n, chunk):
        part = slice(start, min(start + chunk, n))
        images[part] = synthetic_images(rng, labels[part], 32, 24.0)
    images.flush()
    del images
    np.save(data / f"{split}_labels.npy", labels)


def pass_root(root: Path, largest: int) -> Path:
    """A project-like folder that ``bench.dataset.load_inputs`` reads: ``params.yaml`` (this project's ``input``,
    ``dataset`` settings), ``outputs/models/trained.keras`` (:func:`build_model`),
    ``outputs/data/`` (the test split, and the train split when ``largest`` needs it; ``classes.json``)."""
    params = yaml.safe_load((PROJECT / "params.yaml").read_text(encoding="utf-8"))
    (root / "outputs" / "models").mkdir(parents=True)
    data = root / "outputs" / "data"
    data.mkdir(parents=True)
    kept = {key: params[key] for key in ("input", "dataset")}
    (root / "params.yaml").write_text(yaml.safe_dump(kept, sort_keys=False), encoding="utf-8")
    build_model(root / "outputs" / "models" / "trained.keras")
    rng = np.random.default_rng(SEED)
    write_split(data, "test", min(largest, TEST_SPLIT), rng)
    if largest > TEST_SPLIT:
        write_split(data, "train", largest, rng)
    (data / "classes.json").write_text(json.dumps([f"class{k}" for k in range(CLASSES)]), encoding="utf-8")
    return root


def image_folder(top: Path, n: int, size: int = 224) -> Path:
    """``n`` seeded synthetic ``size``×``size`` JPEGs (quality 90) in ``top/class<k>/``, in Keras's layout."""
    from PIL import Image

    rng = np.random.default_rng(SEED + n)
    labels = np.arange(n) % CLASSES
    for k in range(CLASSES):
        (top / f"class{k}").mkdir(parents=True)
    for start in range(0, n, 100):
        part = labels[start : start + 100]
        for i, pixels in enumerate(synthetic_images(rng, part, size, 8.0)):
            Image.fromarray(pixels).save(top / f"class{part[i]}" / f"img{start + i:06d}.jpg", quality=90)
    return top


# ---------------------------------------------------------------- the workers (the measured processes)


@contextmanager
def rss_sampler(every_s: float = 0.02) -> Iterator[dict[str, int]]:
    """The peak, in kB, of ``/proc/self/status``'s ``VmHWM`` (this process's peak RSS, kept by the kernel), and
    of ``RssAnon`` (the heap: what must stay flat) and ``RssFile`` + ``RssShmem`` (file-backed pages: the shared
    libraries and the memory-mapped ``.npy`` files, which the kernel may drop), sampled every ``every_s`` seconds
    while the block runs."""
    peaks = {"VmHWM": 0, "RssAnon": 0, "RssMapped": 0}
    stop = threading.Event()

    def sample() -> None:
        with open("/proc/self/status", encoding="ascii") as f:
            fields = {k: int(v.split()[0]) for k, _, v in (line.partition(":") for line in f) if v.endswith("kB\n")}
        now = {**fields, "RssMapped": fields.get("RssFile", 0) + fields.get("RssShmem", 0)}
        for key in peaks:
            peaks[key] = max(peaks[key], now.get(key, 0))

    def loop() -> None:
        while not stop.wait(every_s):
            sample()

    thread = threading.Thread(target=loop, daemon=True)
    sample()
    thread.start()
    try:
        yield peaks
    finally:
        stop.set()
        thread.join()
        sample()


def pass_worker(root: Path, n: int) -> dict[str, object]:
    """Row 1's measured process: ``dataset@trained``'s one pass over the first ``n`` images: the statistics with the
    dataset examples and the predictions, the network opened as the stage opens it."""
    from dataclasses import replace

    from convlens.analysis.dataset import stream_pass
    from convlens.analysis.examples import example_rows
    from convlens.model.archive import open_model
    from convlens.model.layers import output_layer

    from .dataset import load_inputs, network_for

    with rss_sampler() as peaks:
        start = time.perf_counter()
        inp = load_inputs(root, n)
        last = output_layer(open_model(root, "trained").layers)
        stats_network = network_for(root, "trained", replace(inp, names=[*inp.names, last]))
        opened = time.perf_counter()
        tables, _ = stream_pass(
            stats_network, inp.images, inp.labels, inp.names, inp.classes, inp.scale, inp.batch_size, "bench",
            inp.examples, last,
        )  # fmt: skip
        for name, table in tables.items():
            example_rows(name, table["example_scores"], table["example_images"], inp.labels)
        done = time.perf_counter()
    return {
        "n": n,
        "open_s": opened - start,
        "pass_s": done - opened,
        "layers": inp.names,
        "computed_by": type(stats_network).__name__,
        **{k: v / 1024 for k, v in peaks.items()},
    }


def folder_worker(top: Path, out: Path) -> dict[str, object]:
    """Row 2's measured process: ``fetch_data``'s one call on the image folder ``top``, written into ``out``."""
    from convlens.data.sources import write_dataset

    data = {"path": str(top), "format": "folder", "classes": None, "resize": None, "color": "keep"}
    data |= {"test_fraction": 0.2, "seed": 0}
    with rss_sampler() as peaks:
        start = time.perf_counter()
        summaries = write_dataset(data, Path("/"), out)
        done = time.perf_counter()
    files = [p for p in top.rglob("*") if p.is_file()]
    return {
        "n": sum(s.count for s in summaries),
        "pass_s": done - start,
        "file_kb": sum(p.stat().st_size for p in files) / len(files) / 1024,
        "splits": {s.split: s.count for s in summaries},
        "shape": list(summaries[0].shape),
        **{k: v / 1024 for k, v in peaks.items()},
    }


# ---------------------------------------------------------------- measuring, and the section


@dataclass(frozen=True)
class Measured:
    """One worker run: its wall time (``measure.run_measured``) and what it reported, its own peak RSS among it."""

    what: str
    n: int
    wall_s: float
    report: dict

    @property
    def peak_mb(self) -> float:
        """The worker's ``VmHWM``. Not ``run_measured``'s ``ru_maxrss``: a child's starts at the RSS of the process
        that forked it (exec keeps the high-water mark of the memory it replaces), here this one, Keras loaded."""
        return float(self.report["VmHWM"])

    @property
    def per_1000_s(self) -> float:
        return 1000 * float(self.report["pass_s"]) / self.n


def measure(what: str, n: int, args: list[str]) -> Measured:
    """Run ``python -m bench.own_data --worker ARGS`` in a fresh process and read its ``RESULT`` line."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = run_measured((sys.executable, "-m", "bench.own_data", "--worker", *args), PROJECT, env)
    line = next(line for line in reversed(run.output.splitlines()) if line.startswith("RESULT "))
    return Measured(what, n, run.wall_s, json.loads(line.removeprefix("RESULT ")))


def reading(rows: list[Measured]) -> str:
    """One line: is peak RSS flat in N (largest ÷ smallest ≤ ``FLAT``), and is the heap?"""
    small, large = rows[0], rows[-1]
    ratio = large.peak_mb / small.peak_mb
    anon = float(large.report["RssAnon"]) / float(small.report["RssAnon"])
    grown = large.peak_mb - small.peak_mb
    mapped = float(large.report["RssMapped"]) - float(small.report["RssMapped"])
    verdict = "**flat**" if ratio <= FLAT else "**not flat**"
    heap = "flat" if anon <= FLAT else "grows"
    return (
        f"{verdict}: peak RSS ×{ratio:.2f} for ×{large.n / small.n:.0f} images (+{grown:.0f} MB, of which "
        f"+{mapped:.0f} MB file-backed pages); heap {heap} (RssAnon ×{anon:.2f})"
    )


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return platform.processor() or "unknown"
    return next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "?")


def section(rows: dict[str, list[Measured]], command: str, elapsed_s: float, quick: bool) -> str:
    """The Markdown section: the machine, the table, how it was measured."""
    from .report import load_average

    lines = [
        "## Own data at scale (issue 22 §6)" + (" — QUICK RUN, not for reporting" if quick else ""),
        "",
        f"`{command}`, {time.strftime('%Y-%m-%d %H:%M %Z')}, {elapsed_s / 60:.1f} min in all. Machine: "
        f"{os.cpu_count()} CPUs ({cpu_model()}), {memory_gb():.0f} GB RAM, Python {platform.python_version()}, "
        f"load average at the end {load_average()} (a shared machine: other work may have run alongside).",
        "",
        "| row | what | N | time / 1,000 images | worker wall (start-up included) | peak RSS | peak file-backed "
        "(libraries, memmaps) | peak heap (RssAnon) | reading |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for key, measured in rows.items():
        line = reading(measured)
        for m in measured:
            lines.append(
                f"| {key} | {m.what} | {m.n:,} | {m.per_1000_s:.2f} s | {m.wall_s:.1f} s | {m.peak_mb:.0f} MB | "
                f"{float(m.report['RssMapped']):.0f} MB | {float(m.report['RssAnon']):.0f} MB | {line} |"
            )
    first, folder = rows["1"][0].report, rows["2"][-1].report
    lines += [
        "",
        "How: each row is one fresh process per N (`python -m bench.own_data --worker …`, its wall time by "
        "`bench.measure.run_measured`). Peak RSS is the worker's own `VmHWM` (`/proc/self/status`), not "
        "`run_measured`'s `ru_maxrss`: a child's `ru_maxrss` starts at the RSS of the process that forked it (exec "
        "keeps the high-water mark of the memory it replaces), here the benchmark's own, Keras loaded. The two "
        "columns after it are peaks sampled every 20 ms: `RssFile`+`RssShmem` (file-backed pages: the shared "
        "libraries, TensorFlow's among them, and the memory-mapped `.npy` files, counted in RSS while mapped but "
        "page cache the kernel may drop) and `RssAnon` (the heap: what must not grow with N). The time per 1,000 "
        "images counts the pass only; the worker wall adds Python's and TensorFlow's start-up and the model's load. "
        f"Reading: *flat* when peak RSS at the largest N is at most {FLAT}× that at the smallest.",
        "",
        f"Row 1: synthetic 32×32×3 uint8 images (seeded colour gradients by class, a rectangle, noise), memory-mapped "
        f"from `.npy` (N ≤ {TEST_SPLIT:,}: the test split, more: the train split, as `bench.dataset.split_for`); a "
        f"small ResNet-style model (Conv2D stem, two residual blocks with `Add`, max pooling between them, global "
        f"average pooling, Dense(10, softmax); random weights), computed by `{first['computed_by']}` (the numpy "
        "forward pass does not compute a branch). The pass is what `dataset@<model>` runs for one model: "
        f"`stream_pass` with the top-k examples over {', '.join(first['layers'])} and the output layer's predictions "
        "(`bench.dataset.load_inputs` / `network_for`, this project's `dataset` settings), then `example_rows`.",
        "",
        f"Row 2: synthetic 224×224 RGB JPEGs (quality 90, {float(folder['file_kb']):.0f} kB each on average, "
        "seeded), 10 class folders, read by `fetch_data`'s call (`convlens.data.sources.write_dataset`: scan, every "
        "header, then each image decoded and appended to the train/test splits' uint8 `.npy` files, 0.2 test: "
        f"{', '.join(f'{k} {v:,}' for k, v in folder['splits'].items())} at N={rows['2'][-1].n:,}); the files were "
        "just written, so they are read from the page cache. `writer.write_images` writes each image with a plain "
        "file write after the `.npy` header (an earlier version wrote through `open_memmap`, which kept every page "
        "written in the process's RSS until the split was done: 166 → 628 MB from 1,000 to 5,000 images).",
        "",
    ]
    return "\n".join(lines)


def memory_gb() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def run_all(quick: bool, scratch: Path) -> dict[str, list[Measured]]:
    pass_sizes = QUICK_PASS_SIZES if quick else PASS_SIZES
    folder_sizes = QUICK_FOLDER_SIZES if quick else FOLDER_SIZES
    say(f"row 1: building the model and {max(pass_sizes):,} images")
    root = pass_root(scratch / "project", max(pass_sizes))
    rows: dict[str, list[Measured]] = {"1": [], "2": []}
    for n in pass_sizes:
        m = measure("dataset pass: statistics + top-k examples + predictions, small ResNet (Keras), 32×32×3", n,
                    ["pass", str(root), str(n)])  # fmt: skip
        rows["1"].append(m)
        say(f"row 1 N={n:,}: {m.per_1000_s:.2f} s / 1,000 images, peak RSS {m.peak_mb:.0f} MB ({m.wall_s:.1f} s)")
    for n in folder_sizes:
        top, out = scratch / f"folder{n}", scratch / f"out{n}"
        say(f"row 2: writing {n:,} JPEGs")
        image_folder(top, n)
        out.mkdir()
        m = measure("image folder read (fetch_data): 224×224 JPEGs → uint8 .npy", n,
                    ["folder", str(top), str(out)])  # fmt: skip
        rows["2"].append(m)
        say(f"row 2 N={n:,}: {m.per_1000_s:.2f} s / 1,000 images, peak RSS {m.peak_mb:.0f} MB ({m.wall_s:.1f} s)")
        shutil.rmtree(top)
        shutil.rmtree(out)
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.own_data", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small N (under a minute), not for reporting")
    parser.add_argument("--out", type=Path, help="the section (default bench/own_data.md; --quick: a temp file)")
    parser.add_argument(
        "--worker", nargs=3, metavar=("KIND", "A", "B"), help="a measured process: `pass ROOT N` or `folder DIR OUT`"
    )
    args = parser.parse_args(argv)
    if args.worker and args.worker[0] not in ("pass", "folder"):
        parser.error("--worker KIND is pass or folder")
    if args.out is None:
        quick = Path(tempfile.gettempdir()) / "convlens-own-data-quick.md"
        args.out = quick if args.quick else PROJECT / "bench" / "own_data.md"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        kind, a, b = args.worker
        result = pass_worker(Path(a), int(b)) if kind == "pass" else folder_worker(Path(a), Path(b))
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    command = "python -m bench.own_data" + "".join(f" {a}" for a in (sys.argv[1:] if argv is None else argv))
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="convlens-own-data-") as tmp:
        rows = run_all(args.quick, Path(tmp))
    text = section(rows, command, time.time() - started, args.quick)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    say(f"wrote {args.out}")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
