"""Stage: activation maximization, beyond the chapter: for every channel of the ``activation_max.layers``, the
input that maximizes the channel's mean activation, by gradient ascent until it converges, for one model
(``activation_max@trained``, ``activation_max@untrained``: a change to one model reruns only its own ascent).

TensorFlow (gradients). The metrics say where the ascent failed (channels that stayed at 0, channels below the
split's best image for them: ``top_image_mean`` of ``dataset@<model>``'s table), how selective the optimized inputs
are and, with several ``starts``, how far the first start falls short of the best (merged by ``metrics`` into
``activation_max.json``); the objective curves go to ``outputs/metrics/activation_max_curves`` for ``dvc plots``.
It draws nothing: ``render_activation_max@<model>`` draws the inputs from what it writes (each layer's inputs and
channel table, ``index.json``), so a drawing param redraws without climbing again.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from omegaconf import DictConfig

from convlens.analysis.ascent import (
    ascent_line,
    ascent_summary,
    channel_marks,
    curve_rows,
    seen_signed,
    start_inputs,
    top_image_indices,
)
from convlens.analysis.attribution import refuse_flat_layers
from convlens.model.archive import Archive, open_model
from convlens.model.graph import model_graph, signed_layers
from convlens.model.inputs import InputScale, fixed_input_shape, read_input_scale
from convlens.pipeline import paths
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import read_csv_columns, read_json, staged_dir, write_csv, write_json

if TYPE_CHECKING:
    from keras import Model

    from convlens.analysis.gradients import LayerAscent

log = logging.getLogger(__name__)


def dataset_tops(root: Path, role: str, names: list[str]) -> dict[str, np.ndarray]:
    """Per layer each channel's best image's mean activation over the dataset split in the ``role`` model, for the
    layers ``dataset@<model>`` computed; a layer it did not compute is named once in the log."""
    index = read_json(paths.dataset_index(root, role))
    tops = {}
    for name in names:
        if name not in index["layers"]:
            log.info("%s is not among dataset.layers (%s): no ratio to the dataset's best image", name, index["layers"])
            continue
        tops[name] = read_csv_columns(paths.dataset_table(root, role, name), ["top_image_mean"])[:, 0]
    return tops


def best_images(root: Path, role: str, name: str, divisor: float, shape: tuple[int, ...]) -> np.ndarray | None:
    """Each channel's best image of the dataset split (rank 0 of ``dataset@<model>``'s examples table) as the
    model's input (pixels / ``divisor``, ``shape`` = (H, W, C)); ``None``, said in the log, for a layer that
    ``dataset@<model>`` did not compute."""
    table = paths.examples_table(root, role, name)
    if not table.is_file():
        log.info("%s %s: no dataset examples, the ascent starts from gray noise", role, name)
        return None
    index = read_json(paths.dataset_index(root, role))
    chosen = top_image_indices(read_csv_columns(table, ["channel", "rank", "image"]))
    pixels = np.load(paths.images(root, index["split"]), mmap_mode="r")[chosen].astype(np.float64) / divisor
    return pixels.reshape(len(chosen), *shape)


def climb_layer(
    model: Model, root: Path, role: str, name: str, am: DictConfig, scale: InputScale, shape: tuple[int, ...]
) -> LayerAscent:
    """The ``role`` model's :class:`~convlens.analysis.gradients.LayerAscent` of layer ``name``, from
    ``activation_max.starts`` starts: the first ``activation_max.start`` (gray noise or each channel's best
    dataset image), the others gray noise of the next seeds."""
    from convlens.analysis.gradients import Ascent, check_layer_gradient, layer_channels, maximize_layer, noise_start
    from convlens.model.keras_models import computed_by_keras

    path = paths.model_path(root, role)
    with computed_by_keras(path, model):  # Keras's first run of the model: its failure, or no gradient, is one line
        n, top = layer_channels(model, name, shape), scale.top
        check_layer_gradient(path, model, name, shape)
    firsts = best_images(root, role, name, scale.divisor, shape) if am.start == "top_image" else None
    starts = start_inputs(partial(noise_start, n, shape, top), am.seed, am.starts, firsts)
    with computed_by_keras(path, model):  # the ascent's batches (one input per channel), warped, blurred
        return maximize_layer(model, name, starts, top, Ascent(**{k: am[k] for k in Ascent.__dataclass_fields__}))


def channel_rows(got: LayerAscent, top: np.ndarray | None, signed: bool) -> list[dict[str, object]]:
    """Per channel what its tile shows: its own input's mean activation, its best dataset image's (``top``; empty
    when ``dataset@<model>`` has no such layer) and its mark (:func:`~convlens.analysis.ascent.channel_marks`; a
    ``signed`` layer's channels are never dead)."""
    tops = [None] * len(got.after) if top is None else [float(v) for v in top]
    marks = channel_marks(got.after, top, signed)
    return [
        {"channel": c, "activation": float(a), "top_image_mean": t, "mark": m}
        for c, (a, t, m) in enumerate(zip(got.after, tops, marks, strict=True))
    ]


def ascent_shape(root: Path, archive: Archive) -> tuple[int, ...]:
    """The optimized inputs' shape: the model's input; for a model of open input size, the size of the data's
    images (``outputs/data``: every split's of one size), said in one log line. No TensorFlow."""
    if None not in archive.input_shape:
        return fixed_input_shape(archive)
    shape = fixed_input_shape(archive, np.load(paths.images(root, "train"), mmap_mode="r").shape[1:])
    log.info(
        "%s: the model's input size is open %s; climbing inputs of the data's %s images",
        archive.source, archive.input_shape, "×".join(map(str, shape)),
    )  # fmt: skip
    return shape


def run(cfg: DictConfig, root: Path, role: str) -> None:
    am, role = cfg.activation_max, paths.check_role(role)
    archive = open_model(root, role)
    names = archive.resolve(None if am.layers is None else list(am.layers), "activation_max.layers")
    refuse_flat_layers(archive.layers, names, "activation_max.layers", "every conv layer")  # feature maps only
    shape, scale = ascent_shape(root, archive), read_input_scale(archive, cfg.input.scale)  # before TensorFlow
    from convlens.model.forward import refuse_small_images
    from convlens.model.keras_models import load_model

    model = load_model(paths.model_path(root, role))  # then images too small for it, before its first call:
    refuse_small_images(model, archive.source, shape, tuple(d is None for d in archive.input_shape))
    done, metrics, tops = {}, {}, dataset_tops(root, role, names)
    by_config = signed_layers(*model_graph(archive.config))  # a nested model's layer: only as seen_signed sees it
    for name in names:
        clock = time.perf_counter()
        done[name] = got = climb_layer(model, root, role, name, am, scale, shape)
        scale.refuse_non_finite(np.stack([got.before, got.after]), f"the {role} model's {name} activations")
        signed = by_config.get(name, False) or seen_signed(got.before, got.after, tops.get(name))
        metrics[name] = ascent_summary(
            got.after, tops.get(name), got.matrix, got.steps, got.converged, got.achieved, signed
        )
        log.info("%s", ascent_line(role, name, time.perf_counter() - clock, got.before, got.after, metrics[name]))
    with staged_dir(paths.activation_max_curves_dir(root, role)) as out:
        for name, got in done.items():
            write_csv(out / f"{role}_{paths.layer_stem(name)}.csv", curve_rows(got.curve))
    with staged_dir(paths.activation_max_dir(root, role)) as out:  # last: its summary is what ``metrics`` reads
        for name, got in done.items():
            np.save(out / paths.activation_max_name(role, name), got.x)
            rows = channel_rows(got, tops.get(name), bool(metrics[name].get("signed")))
            write_csv(out / paths.activation_max_channels_name(role, name), rows)
        write_json(out / paths.INDEX_NAME, {"layers": names, "top": scale.top})  # what render_activation_max draws
        write_json(out / paths.SUMMARY_NAME, metrics)


if __name__ == "__main__":
    run_stage("activation_max", run, skip_teardown=True)
