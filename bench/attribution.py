"""Issue 27's benchmark rows: each attribution method's time for 1,000 images of the book's model, and the sanity
checks' (cascading randomization over the model's 4 weighted layers, deletion curve) per method and image.

``python -m bench.attribution [--images N] [--sanity N] [--out PATH]`` reads the book's model and Fashion-MNIST's
test split from the mirror (``$CONVLENS_MIRROR``, else ``../shared/mirror``), times the methods in this process
(TensorFlow's start and the models' loading not counted; the median of ``--repeats`` runs after one warm-up
batch) with the pipeline's defaults (``conf/config.yaml``'s ``attribution``), and writes a Markdown table
(default ``bench/attribution.md``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import yaml

from .measure import PROJECT

WHAT = {
    "gradcam": "Grad-CAM at conv2d_1 (1 gradient, upsampled per image)",
    "saliency": "absolute gradient ∂score/∂x (1 gradient)",
    "smoothgrad": "SmoothGrad ({smoothgrad_samples} noisy copies, noise {smoothgrad_noise})",
    "integrated_gradients": "integrated gradients ({ig_steps} steps, {baseline} baseline)",
    "occlusion": "occlusion ({occlusion_window}×{occlusion_window} window, stride {occlusion_stride}: forward passes)",
}


def mirror() -> Path:
    """Where the book's model and data are: ``$CONVLENS_MIRROR`` or ``../shared/mirror``."""
    return Path(os.environ.get("CONVLENS_MIRROR") or PROJECT.parent / "shared" / "mirror")


def test_split(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` test images (as the book's model's inputs, / 255) and labels."""
    import gzip

    from convlens.data.idx import read_idx_stream

    with gzip.open(mirror() / "fashion-mnist" / "t10k-images-idx3-ubyte.gz", "rb") as f:
        images = read_idx_stream(f)[:n]
    with gzip.open(mirror() / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz", "rb") as f:
        labels = read_idx_stream(f)[:n].astype(np.int64)
    return (images[..., None] / 255.0).astype(np.float32), labels


def timed(work, repeats: int) -> float:
    """The median wall time of ``repeats`` calls of ``work`` (after one call to warm TensorFlow's graphs)."""
    work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="images per method timing (default 1000)")
    parser.add_argument("--sanity", type=int, default=200, help="images of the sanity timing (default 200)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=PROJECT / "bench" / "attribution.md")
    args = parser.parse_args()

    from convlens.analysis.attribution import baseline_input, deletion_fractions
    from convlens.analysis.gradients import class_scores
    from convlens.analysis.saliency import METHODS, Settings, method_maps, scores
    from convlens.analysis.sanity import cascade, sanity_pass
    from convlens.model.keras_models import load_model

    a = yaml.safe_load((PROJECT / "conf" / "config.yaml").read_text(encoding="utf-8"))["attribution"]
    settings = Settings(
        a["smoothgrad_noise"], a["smoothgrad_samples"], a["ig_steps"], a["occlusion_window"], a["occlusion_stride"], 0
    )
    x, labels = test_split(max(args.images, args.sanity))
    baseline = baseline_input(a["baseline"], [x])
    model_file = mirror() / "best-cnn-model.keras"
    scorer, _ = class_scores(load_model(model_file), "conv2d_1")
    classes = scores(scorer, x).argmax(axis=1)
    batch = a["batch_size"]

    def maps(method: str, n: int):
        return lambda: [
            method_maps(method, scorer, x[i : i + batch], classes[i : i + batch], baseline, settings)
            for i in range(0, n, batch)
        ]

    rows = []
    untrained = Path(os.environ.get("CONVLENS_UNTRAINED", PROJECT / "outputs" / "models" / "untrained.keras"))
    layers, scorers = cascade(model_file, untrained, "conv2d_1") if untrained.is_file() else (None, None)
    for method in METHODS:
        seconds = timed(maps(method, args.images), args.repeats) * 1000 / args.images
        sanity = None
        if scorers:
            fractions = deletion_fractions(a["deletion_steps"])
            n = args.sanity

            def run(method=method, n=n, fractions=fractions):
                pairs = ((x[i : i + batch], labels[i : i + batch]) for i in range(0, n, batch))
                sanity_pass(scorers, pairs, [method], baseline, settings, fractions)

            sanity = timed(run, 1) * 1000 / n
        rows.append((method, WHAT[method].format(**a), seconds, sanity))
    write(args.out, rows, args, layers)


def write(out: Path, rows, args, layers) -> None:
    """The Markdown table of ``rows`` (method, what it computes, s per 1,000 images, sanity s per 1,000)."""
    lines = [
        "# Attribution methods: time per 1,000 images (`python -m bench.attribution`)",
        "",
        f"The book's model on the first {args.images} Fashion-MNIST test images, in batches of the pipeline's "
        f"`attribution.batch_size`, on {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
        f"TensorFlow on CPU; median of {args.repeats} after a warm-up. *Sanity* is the gradcam stage's sanity pass "
        f"for that method alone over {args.sanity} images (maps at each of the "
        f"{'?' if layers is None else len(layers)} cascade steps {layers or ''} plus the deletion curve's "
        "forward passes), scaled to 1,000 images.",
        "",
        "| method | what | s per 1,000 images | sanity s per 1,000 images |",
        "|---|---|---:|---:|",
    ]
    for method, what, seconds, sanity in rows:
        lines.append(f"| `{method}` | {what} | {seconds:.2f} | {'–' if sanity is None else f'{sanity:.1f}'} |")
    lines += ["", f"1-minute load average at the end: {os.getloadavg()[0]:.1f} (over the CPU count: other jobs ran)."]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(out.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
