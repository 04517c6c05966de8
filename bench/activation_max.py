"""Row 9: activation maximization of every channel of the book's two conv layers (32 + 64), in a fresh process
per run, as the ``activation_max`` stage does it: TensorFlow's import, the model(s) loaded, then the ascent.

``python -m bench.activation_max MODEL ROLES`` is the measured worker (``ROLES``: ``trained`` or ``both``); it
prints the seconds spent in the ascent alone as its last line.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from .measure import PROJECT, run_measured

LAYERS = ("conv2d", "conv2d_1")  # the book's conv layers: 32 + 64 channels


def bench_activation_max(
    mirror: Path, runs: int, say: Callable[[str], None]
) -> dict[str, tuple[list[float], list[float]]]:
    """Per setting (trained model alone, both models): ``runs`` wall times of the worker and of its ascent."""
    found: dict[str, tuple[list[float], list[float]]] = {}
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    for i in range(runs):
        for roles in ("trained", "both"):
            cmd = (sys.executable, "-m", "bench.activation_max", str(mirror / "best-cnn-model.keras"), roles)
            run = run_measured(cmd, PROJECT, env)
            ascent = float(run.output.strip().splitlines()[-1])
            walls, ascents = found.setdefault(roles, ([], []))
            walls.append(run.wall_s)
            ascents.append(ascent)
            say(f"row 9 run {i + 1}/{runs}, {roles}: {run.wall_s:.1f} s in all, {ascent:.1f} s of gradient ascent")
    return found


def worker(model_path: Path, roles: str) -> None:
    """Load the book's model (and its untrained twin, seed 42, as build_untrained does) and maximize every channel
    of both conv layers with the project's default ``activation_max`` params."""
    from convlens.analysis.gradients import Ascent, maximize_channels
    from convlens.model.keras_models import load_with_untrained_model

    params = yaml.safe_load((PROJECT / "params.yaml").read_text(encoding="utf-8"))["activation_max"]
    ascent = Ascent(**{k: params[k] for k in Ascent.__dataclass_fields__})
    trained, untrained = load_with_untrained_model(model_path, 42)
    models = [trained] if roles == "trained" else [trained, untrained]
    start = time.perf_counter()
    for model in models:
        for layer in LAYERS:
            maximize_channels(model, layer, (28, 28, 1), 1.0, ascent)
    print(f"{time.perf_counter() - start:.3f}")


if __name__ == "__main__":
    worker(Path(sys.argv[1]), sys.argv[2])
