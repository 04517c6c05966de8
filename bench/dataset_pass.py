"""Row 8: the pipeline's dataset pass over the 10,000 test images, both models, against Keras ``predict`` on the
same images; whole processes on both sides, imports included.

Ours: the commands, as the reproduced clone's ``dvc.lock`` records them, of the stages that read the whole split
for both models (``DATASET_STAGES``: every ``dataset@<model>`` instance where ``dvc.yaml`` has a ``dataset`` stage,
else ``dataset_stats`` and ``evaluate``), one after the other.

The yardstick, ``python -m bench.dataset_pass ROOT``: a script that imports Keras, loads both models of the clone
(``outputs/models/{trained,untrained}.keras``) and predicts the split's images (``outputs/data/test_images.npy``
scaled by ``input.scale``) with ``batch_size`` = ``dataset.batch_size``; it imports nothing of convlens.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

from .expected import read_lock
from .measure import PROJECT, Run, run_measured
from .pipeline import as_under_dvc, stage_commands

DATASET_STAGES = re.compile(r"dataset(@.+)?")  # after the restructure: one `dataset` stage per model
BEFORE_RESTRUCTURE = ("dataset_stats", "evaluate")  # before it: the statistics, then the predictions


def dataset_commands(root: Path) -> list[tuple[str, list[str]]]:
    """The dataset pass's stage commands in the reproduced clone ``root`` (the module's rule)."""
    commands = stage_commands(root)
    found = [(s, cmd) for s, cmd in commands if DATASET_STAGES.fullmatch(s)]
    if not found:
        found = [(s, cmd) for s, cmd in commands if s in BEFORE_RESTRUCTURE]
    if not found:
        raise RuntimeError(f"no dataset stage in {root}/dvc.lock: {', '.join(read_lock(root))}")
    return found


def keras_cmd(root: Path) -> tuple[str, ...]:
    return (sys.executable, "-m", "bench.dataset_pass", str(root))


def bench_dataset_pass(
    root: Path, env: dict[str, str], runs: int, say: Callable[[str], None]
) -> tuple[list[Run], list[Run], list[str]]:
    """``runs`` times each, alternating which goes first: the dataset stages' commands (one run: their walls summed,
    the largest peak RSS) and the Keras script. Returns ours, the yardstick's, and the stages timed."""
    commands = dataset_commands(root)
    keras_env = {**env, "PYTHONPATH": str(PROJECT)}
    ours: list[Run] = []
    theirs: list[Run] = []

    def pipeline() -> None:
        done = [run_measured(cmd, root, as_under_dvc(env, stage)) for stage, cmd in commands]
        ours.append(Run(sum(r.wall_s for r in done), max(r.maxrss_mb for r in done), ""))

    def keras() -> None:
        theirs.append(run_measured(keras_cmd(root), PROJECT, keras_env))

    for i in range(runs):
        for fn in (pipeline, keras) if i % 2 == 0 else (keras, pipeline):
            fn()
        say(f"row 8 run {i + 1}/{runs}: {' + '.join(s for s, _ in commands)} {ours[-1].wall_s:.2f} s, "
            f"Keras predict {theirs[-1].wall_s:.2f} s")  # fmt: skip
    return ours, theirs, [s for s, _ in commands]


def worker(root: Path) -> None:
    """The yardstick: import Keras, load both models, predict every image of the test split."""
    import numpy as np
    import yaml

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    images = np.load(root / "outputs" / "data" / "test_images.npy")
    for role in ("trained", "untrained"):
        model = keras.models.load_model(root / "outputs" / "models" / f"{role}.keras")
        x = images.reshape((len(images), *model.input_shape[1:])).astype("float32") / float(params["input"]["scale"])
        predicted = model.predict(x, batch_size=int(params["dataset"]["batch_size"]), verbose=0)
        print(role, predicted.shape, int(predicted.argmax(axis=1)[0]))


if __name__ == "__main__":
    worker(Path(sys.argv[1]))
