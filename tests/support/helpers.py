"""Tiny data and models for tests: IDX files, small CNNs, a project copy; the stages in pipeline order."""

from __future__ import annotations

import ast
import fcntl
import gzip
import importlib
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from convlens.__main__ import COMMANDS
from convlens.data.fetch import sha256sum
from convlens.data.idx import IDX_DTYPES
from convlens.pipeline.config import compose, write_params
from convlens.pipeline.files import SCRATCH

PROJECT = Path(__file__).resolve().parents[2]
_DVC_STAGES = yaml.safe_load((PROJECT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
# The stage modules in dvc.yaml's order (one valid order of its graph; check_config, which only checks
# params.yaml, left out): what `dvc repro` runs, in process. FOREACH: the `foreach` stages' lists, a literal one (the
# models) or None for the layers of `feature_maps.each`.
# TRAINING: the stages that exist only with -S model=train (`foreach: ${model.train_runs}`, empty otherwise), left out
# of PIPELINE (tests/stages/test_train.py runs them).
TRAIN_RUNS = "${model.train_runs}"
TRAINING = [importlib.import_module(f"stages.{n}") for n, s in _DVC_STAGES.items() if s.get("foreach") == TRAIN_RUNS]
PIPELINE = [
    importlib.import_module(f"stages.{name}")
    for name, stage in _DVC_STAGES.items()
    if name != "check_config" and stage.get("foreach") != TRAIN_RUNS
]
# FOREACH: each `foreach` stage's list, literal, or the key of the config it reads (`feature_maps.each`,
# `analyses.activation_max`, …): `foreach_items` gives a composed config's items.
FOREACH = {
    importlib.import_module(f"stages.{name}"): stage["foreach"]
    if isinstance(stage["foreach"], list)
    else stage["foreach"].removeprefix("${").removesuffix("}")
    for name, stage in _DVC_STAGES.items()
    if "foreach" in stage and stage["foreach"] != TRAIN_RUNS
}


def foreach_items(module, cfg) -> list[str | None]:
    """The items DVC makes ``module``'s stage instances of for the composed ``cfg`` (``[None]``: not a foreach)."""
    spec = FOREACH.get(module, [None])
    return spec if isinstance(spec, list) else [str(item) for item in OmegaConf.select(cfg, spec)]


class Terminal(io.StringIO):
    """A stderr that says it is a terminal: progress bars (tqdm, ``disable=None``) draw on it."""

    def isatty(self) -> bool:
        return True


def stage_name(module) -> str:
    return module.__name__.rsplit(".", 1)[1]


def run_stage(module, stage_config, composed, root, *overrides):
    """Run a stage as `dvc repro` would: a per-model stage once for each model, a per-layer stage once for each entry
    of `feature_maps.each`."""
    cfg = stage_config(stage_name(module), *overrides)
    for item in foreach_items(module, composed(*overrides)):
        module.run(cfg, root, *([item] if item else []))


def run_dataset_pass(stage_config, composed, root, *overrides):
    """``dataset@trained`` and ``dataset@untrained``, then their metric files as the ``metrics`` stage merges them
    (all but activation maximization's)."""
    from convlens.pipeline import paths
    from convlens.pipeline.artifacts import merged_metrics, write_merged
    from convlens.pipeline.files import read_json
    from stages import dataset

    run_stage(dataset, stage_config, composed, root, *overrides)
    write_merged(root, merged_metrics({role: read_json(paths.dataset_summary(root, role)) for role in paths.ROLES}))


def full_analyses() -> dict:
    """``analyses`` as ``-S analyses=full`` composes it: its lists and the deps they set (``conf/config.yaml``)."""
    from omegaconf import OmegaConf

    from convlens.pipeline.config import compose

    return OmegaConf.to_container(compose(PROJECT, ["analyses=full"])["analyses"])


MIRROR = PROJECT.parent / "shared" / "mirror"
PROJECT_FILES = ("conf", "convlens", "stages", "hydra_plugins", "dvc.yaml", "params.yaml", "pyproject.toml")
DATA_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


def idx_bytes(array: np.ndarray) -> bytes:
    """An array as IDX bytes (big-endian header and payload)."""
    code = next(
        c for c, dt in IDX_DTYPES.items() if dt.kind == array.dtype.kind and dt.itemsize == array.dtype.itemsize
    )
    header = bytes([0, 0, code, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(IDX_DTYPES[code]).tobytes()


TINY_EXAMPLES = 3  # dataset.examples.k on tiny data: 9 is more than its 6 test images; a folder of its 18 holds out 3


def write_tiny_data(mirror: Path, n_train: int = 12, n_test: int = 6, seed: int = 0) -> dict[str, str]:
    """Fashion-MNIST-shaped IDX .gz files in ``mirror/fashion-mnist``; returns their sha256 by key."""
    rng = np.random.default_rng(seed)
    folder = mirror / "fashion-mnist"
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": (np.arange(n_test)[::-1] % 10).astype(np.uint8),
    }
    sums = {}
    for key, array in arrays.items():
        path = folder / DATA_FILES[key]
        path.write_bytes(gzip.compress(idx_bytes(array)))
        sums[key] = sha256sum(path)
    return sums


def tiny_model(filters: tuple[int, int] = (4, 8), seed: int = 1, conv: tuple[str, str] = ("conv2d", "conv2d_1")):
    """The book's architecture, scaled down: Conv2D → MaxPool → Conv2D → MaxPool → Flatten → Dense; ``conv``: the
    conv layers' names."""
    from convlens.model.keras_models import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(filters[0], 3, activation="relu", padding="same", name=conv[0]),
            keras.layers.MaxPooling2D(2, name="max_pooling2d"),
            keras.layers.Conv2D(filters[1], 3, activation="relu", padding="same", name=conv[1]),
            keras.layers.MaxPooling2D(2, name="max_pooling2d_1"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(10, activation="softmax", name="dense"),
        ]
    )


def tiny_overrides(model_path: Path, sums: dict[str, str]) -> list[str]:
    """Hydra overrides that point the pipeline at the tiny model and data, with no download URLs."""
    return [
        "model=local",
        f"model.path={model_path}",
        "data.urls=[]",
        *(f"data.files.{key}.sha256={value}" for key, value in sums.items()),
    ]


TINY_ASCENT_STEPS = 4


def configure(
    root: Path, model_path: str, sums: dict[str, str], extra: dict | None = None, analyses: str = "full"
) -> None:
    """Point ``conf/`` at the tiny model and data (no download URLs) and recompose ``params.yaml``, as a user
    who edits ``conf/`` and runs ``make params`` would; stages then run without arguments. ``analyses``: the preset
    (``full``: every stage, what the in-process tests run; ``light``: the project's default, the DVC repositories')."""
    config = root / "conf" / "config.yaml"
    text = config.read_text(encoding="utf-8").replace("- model: book", "- model: local")
    text = text.replace("- analyses: light", f"- analyses: {analyses}")
    text = text.replace("    k: 9 ", f"    k: {TINY_EXAMPLES} ")  # the tiny test split holds fewer than 9 images
    local = root / "conf" / "model" / "local.yaml"
    local.write_text(local.read_text(encoding="utf-8").replace("path: ???", f"path: {model_path}"), encoding="utf-8")
    preset = root / "conf" / "data" / "fashion_mnist.yaml"  # the tiny data's sums in its preset: other presets
    data = yaml.safe_load(preset.read_text(encoding="utf-8"))  # (-S data=cifar10, …) stay as they are
    data["urls"] = []
    for key, value in sums.items():
        data["files"][key]["sha256"] = value
    preset.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    tiny = {
        "activation_max": {"steps": TINY_ASCENT_STEPS},  # a few gradient-ascent steps: every dvc repro runs them
        **(extra or {}),
    }
    config.write_text(text + "\n" + yaml.safe_dump(tiny), encoding="utf-8")
    write_params(root, compose(root))


def copy_project(dest: Path) -> Path:
    """The project's pipeline files (no outputs, no venv) copied into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        src = PROJECT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def _is_def(node: ast.AST) -> bool:
    return isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)


def _type_checking(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:``: imports for annotations only, never run."""
    return isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")


def imported_files(path: Path, lazy: bool = True) -> set[str]:
    """Project files a stage script imports, transitively: ``convlens`` modules and the package inits
    (``lazy=False``: only imports at module level, not those inside functions or under ``if TYPE_CHECKING:``)."""
    found: set[str] = set()
    todo = [path]
    while todo:
        tree = ast.parse(todo.pop().read_text(encoding="utf-8"))
        runs = [top for top in tree.body if not (_is_def(top) or _type_checking(top))]
        nodes = ast.walk(tree) if lazy else (n for top in runs for n in ast.walk(top))
        for node in nodes:
            names = []
            if isinstance(node, ast.ImportFrom):
                if node.level == 1:  # from .x import y (inside convlens)
                    names = [f"convlens.{node.module}"] if node.module else [f"convlens.{a.name}" for a in node.names]
                elif node.module == "convlens":
                    names = ["convlens", *(f"convlens.{a.name}" for a in node.names)]
                elif node.module:
                    names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                parts = name.split(".")
                for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__.py and a/b/__init__.py
                    stem = PROJECT.joinpath(*parts[:i])
                    for file in (stem / "__init__.py", stem.with_suffix(".py")):
                        rel = str(file.relative_to(PROJECT))
                        if parts[0] in ("stages", "convlens") and file.is_file() and rel not in found:
                            found.add(rel)
                            todo.append(file)
    return found


def made_once(tmp_path_factory, name: str, make: Callable[[Path], dict]) -> dict:
    """``make(folder)``'s result (JSON), made once per test run, for session fixtures.

    Under pytest-xdist every worker has its own session: the first worker that asks makes it in a folder of its own
    temp dir while the others wait on a file lock in the run's base temp dir (``pytest-N/``, above each worker's
    ``pytest-N/popen-gwX/``), then read its result from there. If ``make`` fails, nothing is recorded and the next
    worker tries again in a fresh folder. Without xdist, a session fixture already runs once.
    """
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return make(tmp_path_factory.mktemp(name))
    shared = tmp_path_factory.getbasetemp().parent
    done = shared / f"{name}.json"
    with (shared / f"{name}.lock").open("a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.is_file():
            done.write_text(json.dumps(make(tmp_path_factory.mktemp(name))), encoding="utf-8")
    return json.loads(done.read_text(encoding="utf-8"))


# --- one error line, from a stage run in process or as a user runs it -----------------------------------------


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message and message
    return message


def cli(project: Path, stage: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m stages.<stage> args`` (``python -m convlens <command>`` for a command that is not a stage) from
    the project root, as a user runs it: never a traceback."""
    module = ["convlens", stage] if stage in COMMANDS else [f"stages.{stage}"]
    done = subprocess.run(
        [sys.executable, "-m", *module, *args],
        cwd=project,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env={**os.environ, **(env or {})},
    )
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    return done


def error_line(done: subprocess.CompletedProcess, stage: str) -> str:
    """The stage's one error line: exit 1, no traceback, the line starts with ``<stage>: error:``."""
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(lines) == 1 and lines[0].startswith(f"{stage}: error: "), done.stderr
    return lines[0]


# --- outputs and interrupted writes (test_files.py, test_robustness_dvc.py) ---------------------------------

KILL_SHIM = Path(__file__).parent / "kill_shim"  # a sitecustomize.py that SIGKILLs a stage mid-write


def kill_shim_env(at: str | None = None, stage: str | None = None) -> dict[str, str]:
    """Environment that makes a Python process (of DVC stage ``stage``, or any) SIGKILL itself at ``at``:
    ``save:N`` (the N-th ``numpy.save``) or ``replace:N`` (before the N-th rename of an output)."""
    env = {"PYTHONPATH": str(KILL_SHIM)}
    if at:
        env["CONVLENS_KILL_AT"] = at
    if stage:
        env["CONVLENS_KILL_STAGE"] = stage
    return env


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def hidden(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if p.name != ".gitignore"] if folder.exists() else []


def staging_areas(root: Path) -> list[Path]:
    """The staging areas in ``root``'s DVC scratch dir and, outside a DVC repo, beside outputs."""
    return [*(root / SCRATCH).glob(".convlens-tmp.*"), *(root / "outputs").rglob(".convlens-tmp.*")]


WEIGHT_OUTPUTS = (
    "weights/trained",
    "metrics/filters/trained",
    "metrics/weights_trained.csv",
    "metrics/weights_trained.json",
)


def weight_outputs(root: Path) -> dict[str, dict[str, bytes] | None]:
    """Each declared output of extract_weights: its files, or None when absent."""
    out = {}
    for name in WEIGHT_OUTPUTS:
        path = root / "outputs" / name
        out[name] = (snapshot(path) if path.is_dir() else {"": path.read_bytes()}) if path.exists() else None
    return out


# --- colour (RGB) inputs: issue 22 §4 ----------------------------------------------------------------------------


def tiny_rgb_model(size: int = 12, filters: int = 4, seed: int = 1, red_only: bool = False):
    """A small colour CNN: (size, size, 3) → Conv2D ``conv2d`` (3×3, same, linear) → MaxPool → Flatten → Dense(10,
    softmax). ``red_only``: the first kernel reads the red channel only (positive weights there, zeros on green and
    blue), so nothing downstream depends on green or blue and every filter rises with red."""
    from convlens.model.keras_models import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Conv2D(filters, 3, padding="same", name="conv2d"),
            keras.layers.MaxPooling2D(2, name="max_pooling2d"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(10, activation="softmax", name="dense"),
        ]
    )
    if red_only:
        conv = model.get_layer("conv2d")
        kernel, bias = conv.get_weights()
        kernel = np.abs(kernel)
        kernel[:, :, 1:, :] = 0.0
        conv.set_weights([kernel, bias])
    return model
