"""Stage (``-S model=train`` only): the film of the filters, from ``train@trained``'s snapshots (issue 23 §3).

``render_film@trained``, one instance per ``model.train_runs`` entry (none unless the model is trained here). Per conv
layer: its first ``film.filters`` filters at every epoch as one strip (``<layer>_filters_strip.png``) and all its
filters as an animated GIF (``<layer>_filters.gif``); the first conv layer's feature maps of each of the first 4
samples as a GIF (``<layer>_maps_<position>.gif``); the learning curves and the kernel std per epoch against the
book's model. Each frame says its epoch and val accuracy; the colour scale is one for the whole film
(``convlens/render/film.py``). ``film.json`` records what the report shows. No TensorFlow: it reads the arrays
training saved.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from convlens.errors import ConvlensError
from convlens.pipeline import paths
from convlens.pipeline.artifacts import load_classes, load_samples
from convlens.pipeline.config import run_stage
from convlens.pipeline.files import read_json, staged_dir, write_json
from convlens.render import film
from convlens.render.figures import FILTER_TILE_INCHES, MAP_TILE_INCHES, GridKey, sample_title
from convlens.render.grids import FILTER_GUTTER, filter_labels, map_gutter, resolve_input_channels
from convlens.render.language import Strings, figure_language

log = logging.getLogger(__name__)

HISTORY_KEYS = ("epochs_run", "best_epoch", "stopped_early", "reason", "loss", "accuracy", "val_loss", "val_accuracy")


def read_history(root: Path) -> dict:
    """``history.json``, checked for what the film needs: the four curves of ``epochs_run`` epochs each and the
    kernel std of each conv layer at every snapshot."""
    path = paths.train_history(root)
    history = read_json(path)
    missing = [k for k in (*HISTORY_KEYS, "kernel_std") if k not in history]
    epochs = history.get("epochs_run")
    if missing or not isinstance(epochs, int) or epochs < 1:
        raise ConvlensError(
            f"{paths.relative(root, path)} lacks {', '.join(missing) or 'epochs_run ≥ 1'}; train again: "
            "dvc exp run -S model=train"
        )
    short = [k for k in ("loss", "accuracy", "val_loss", "val_accuracy") if len(history[k]) != epochs]
    short += [k for k, v in history["kernel_std"].items() if len(v) != epochs + 1]
    if short:
        raise ConvlensError(
            f"{paths.relative(root, path)}: {short[0]} does not have one value per epoch ({epochs} run); "
            "train again: dvc exp run -S model=train"
        )
    return history


def draw_layer(out: Path, root: Path, layer: str, labels: list[str], cfg: DictConfig, text: dict) -> dict:
    """One conv layer's strip and GIF of its filters; what was drawn, for ``film.json``."""
    r = cfg.render
    snapshots = np.load(paths.train_snapshots_dir(root) / paths.snapshot_kernels_name(layer), mmap_mode="r")
    film.check_snapshots(snapshots, labels, paths.snapshot_kernels_name(layer))
    mode = resolve_input_channels(r.input_channels, snapshots[0])
    vmin, vmax = film.kernel_range(snapshots)
    image, grid = film.strip_image(snapshots, mode, cfg.film.filters, vmin, vmax)
    title = text["filters_title_rgb" if mode == "rgb" else "filters_title"].format(
        layer=layer, first=0, last=grid[1] - 1, vmax=vmax
    )
    strip = paths.film_strip_name(layer)
    film.strip_figure(image, grid, labels, out / strip, r.filter_cmap, title, (vmin, vmax), text, r.dpi)
    mosaics, grid = film.kernel_frames(snapshots, mode, r.filter_columns, vmin, vmax)
    captions = [text["filters_frame"].format(layer=layer, when=label) for label in labels]
    scale, key = (vmin, vmax), GridKey(filter_labels(snapshots.shape[1:], mode)[0], (), FILTER_GUTTER)  # indices
    frames = film.frame_pixels(
        mosaics, captions, r.filter_cmap, r.dpi, FILTER_TILE_INCHES / 2, grid, scale, text["weight"], key
    )
    gif = paths.film_filters_name(layer)
    film.write_gif(frames, out / gif, cfg.film.frame_ms)
    return {"strip": strip, "gif": gif, "shape": list(snapshots.shape[1:]), "scale": vmax, "mode": mode}


def draw_maps(out: Path, root: Path, layer: str, labels: list[str], cfg: DictConfig, text: dict) -> list[dict]:
    """The layer's feature maps of each of the first ``FILM_SAMPLES`` samples at every snapshot, a GIF each; none
    without maps snapshots."""
    path = paths.train_snapshots_dir(root) / paths.snapshot_maps_name(layer)
    if not path.is_file():
        log.info("%s: no feature-map snapshots, no maps film", layer)
        return []
    maps = np.load(path, mmap_mode="r")
    film.check_snapshots(maps, labels, paths.snapshot_maps_name(layer))
    _, index = load_samples(root)
    classes = load_classes(root)
    r = cfg.render
    drawn = []
    for position in range(min(maps.shape[1], paths.FILM_SAMPLES)):
        sample = sample_title(index["split"], index["samples"][position], index["labels"][position], classes)
        mosaics, grid = film.maps_frames(np.asarray(maps[:, position]), r.map_columns)
        captions = [text["maps_frame"].format(layer=layer, sample=sample, when=label) for label in labels]
        key = GridKey([str(c) for c in range(maps.shape[-1])], (), map_gutter(maps.shape[2]))  # channel indices
        frames = film.frame_pixels(
            mosaics, captions, r.map_cmap, r.dpi, MAP_TILE_INCHES / 2, grid, None, text["maps_scale"], key
        )
        gif = paths.film_maps_name(layer, position)
        film.write_gif(frames, out / gif, cfg.film.frame_ms)
        drawn.append({"layer": layer, "gif": gif, "sample": sample})
    return drawn


def run(cfg: DictConfig, root: Path, item: str) -> None:
    if item not in cfg.model.train_runs:
        raise ConvlensError(
            f"no training run {item!r} (model.train_runs: {list(cfg.model.train_runs)}); use -S model=train"
        )
    text = film.film_text(cfg.report.language)
    history = read_history(root)
    labels = film.snapshot_labels(history["val_accuracy"], text)
    layers = list(history["kernel_std"])
    with figure_language(cfg.report.language), staged_dir(paths.film_dir(root)) as out:
        drawn = {layer: draw_layer(out, root, layer, labels, cfg, text) for layer in layers}
        maps = draw_maps(out, root, layers[0], labels, cfg, text) if layers else []
        history = history | {"reason": film.reason_words(history, text)}  # the log's English, in report.language
        film.learning_curves_figure(history, out / paths.LEARNING_CURVES_NAME, text, cfg.render.dpi)
        reference = film.reference_std({layer: d["shape"] for layer, d in drawn.items()})
        film.kernel_std_figure(history["kernel_std"], reference, out / paths.KERNEL_STD_NAME, text, cfg.render.dpi)
        record = {k: history[k] for k in HISTORY_KEYS}
        record |= {
            "kernel_std": history["kernel_std"],
            "seconds_per_epoch": history.get("seconds_per_epoch", []),
            "layers": drawn,
            "maps": maps,
            "reference_std": reference,
            "learning_curves": paths.LEARNING_CURVES_NAME,
            "kernel_std_figure": paths.KERNEL_STD_NAME,
            "frame_ms": cfg.film.frame_ms,
        }
        write_json(out / paths.FILM_NAME, record)
    epochs = Strings("en").count("film_epochs", history["epochs_run"])  # the log's English: 1 epoch, 2 epochs
    log.info("the film of %s (%d snapshots) of %s written", epochs, len(labels), ", ".join(layers))


if __name__ == "__main__":
    run_stage("render_film", run)
