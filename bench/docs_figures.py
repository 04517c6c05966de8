"""``python -m bench.docs_figures RUN`` (``make docs-figures RUN=…``): copy one run's figures from ``outputs/`` into
``docs/`` under the names the docs use. Each docs image comes from one of three runs; the workspace must hold that run
(its ``params.yaml`` says so) and every one of its outputs, or nothing is copied."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from .measure import PROJECT


@dataclass(frozen=True)
class Run:
    """A run that makes docs images: the command, and the params it leaves in ``params.yaml``."""

    command: str
    params: dict[str, object]


RUNS = {
    "default": Run("dvc exp run", {"model.name": "book", "samples.split": "train", "samples.indices": [0]}),
    # docs/analyses.md's Grad-CAM figures: test images 0 and 12 of the six samples its correlations are over
    "full": Run(
        "dvc exp run -S analyses=full -S samples.split=test -S 'samples.indices=[0,1,2,3,6,12]'",
        {
            "model.name": "book",
            "analyses.name": "full",
            "samples.split": "test",
            "samples.indices": [0, 1, 2, 3, 6, 12],
        },
    ),
    "film": Run("dvc exp run -S model=train", {"model.name": "train"}),
}

FIGURES_DIR = "outputs/figures"
FIGURES = (  # (run, output path under FIGURES_DIR, docs name)
    ("default", "weights/trained_conv2d_filters.png", "trained_conv2d_filters.png"),
    ("default", "feature_maps/conv2d/trained_sample_0.png", "trained_conv2d_feature_maps.png"),
    ("default", "dataset/trained/conv2d_classes.png", "trained_conv2d_classes.png"),
    ("default", "dataset/untrained/conv2d_classes.png", "untrained_conv2d_classes.png"),
    ("default", "dataset/trained/conv2d_1_classes.png", "trained_conv2d_1_classes.png"),
    ("default", "dataset/untrained/conv2d_1_classes.png", "untrained_conv2d_1_classes.png"),
    ("default", "dataset/trained/examples/trained_conv2d.png", "trained_conv2d_examples.png"),
    ("default", "dataset/trained/examples/trained_conv2d_1.png", "trained_conv2d_1_examples.png"),
    ("default", "evaluate/trained/trained_confusion.png", "trained_confusion.png"),
    ("full", "activation_max/trained/trained_conv2d.png", "trained_conv2d_activation_max.png"),
    ("full", "activation_max/trained/trained_conv2d_1.png", "trained_conv2d_1_activation_max.png"),
    ("full", "activation_max/untrained/untrained_conv2d.png", "untrained_conv2d_activation_max.png"),
    (
        "full",
        "activation_max/untrained/untrained_conv2d_1.png",
        "untrained_conv2d_1_activation_max.png",
    ),
    ("full", "gradcam/sample_0.png", "gradcam_test_0.png"),
    ("full", "gradcam/sample_12.png", "gradcam_test_12.png"),
    ("film", "film/conv2d_filters_strip.png", "film_conv2d_filters_strip.png"),
    ("film", "film/conv2d_filters.gif", "film_conv2d_filters.gif"),
)


def param(params: dict, key: str) -> object:
    """A dotted key's value in a composed ``params.yaml`` (None where absent)."""
    value: object = params
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def refusal(root: Path, run: str) -> str | None:
    """Why ``root``'s workspace cannot give ``run``'s figures, as one line naming the command that makes them; None
    where it can."""
    if run not in RUNS:
        return f"docs-figures: no run {run!r}; RUN is one of {', '.join(RUNS)}"
    command = RUNS[run].command
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8")) or {}
    for key, wanted in RUNS[run].params.items():
        if param(params, key) != wanted:
            return f"docs-figures: params.yaml has {key}={param(params, key)}, not {run}'s {wanted}: run {command}"
    missing = [f"{FIGURES_DIR}/{out}" for r, out, _ in FIGURES if r == run and not (root / FIGURES_DIR / out).is_file()]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        return f"docs-figures: {missing[0]}{more} missing: run {command}"
    return None


def copy(root: Path, run: str) -> list[str]:
    """Copy ``run``'s figures into ``root/docs`` (each to a temporary name first, then all renamed); the docs names."""
    pairs = [(root / FIGURES_DIR / out, root / "docs" / name) for r, out, name in FIGURES if r == run]
    for source, target in pairs:
        shutil.copyfile(source, target.with_name(target.name + ".tmp"))
    for _, target in pairs:
        target.with_name(target.name + ".tmp").replace(target)
    return [target.name for _, target in pairs]


def main(argv: list[str]) -> int:
    run = argv[0] if argv else ""
    why = refusal(PROJECT, run)
    if why:
        print(why, file=sys.stderr)
        return 1
    names = copy(PROJECT, run)
    print(f"docs-figures: {len(names)} {run} figures copied into docs/: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
