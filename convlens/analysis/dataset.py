"""Feature statistics over a whole split, accumulated batch by batch (no activation is kept).

For one layer: per channel, the mean activation, the fraction of activations above zero, the
maximum, the highest mean activation of one image (the top dataset example's, by mean; activation
maximization compares with it), and the mean activation per class (a channels × classes table: which filters fire for
which kind of clothing).
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from convlens.analysis.evaluate import predicted_classes
from convlens.analysis.examples import RunningTopK, check_examples, peak_positions_at
from convlens.analysis.stats import ChannelAccumulator, as_number, reduce_positions
from convlens.model.batching import batches_with_progress, blas_threads, cpu_count, release_pages
from convlens.model.forward import Activations, Network
from convlens.model.inputs import model_inputs
from convlens.model.layers import CONV_KINDS

MAP_KINDS = (*CONV_KINDS, "MaxPooling2D", "AveragePooling2D")  # the layers dataset statistics default to

PASS_WORKERS = 2  # stream_pass's threads for the numpy network: one batch in flight each (memory: a batch each)


def selectivity(class_means: np.ndarray) -> np.ndarray:
    """Per channel, how much one class dominates: (top class mean − mean over classes) / top, 0 for silent channels,
    NaN (not defined) for a channel with a negative class mean: a layer without ReLU, whose ratio would leave
    0 … 1 − 1/classes (a top of 0.008 over a mean of −0.044 gives 6.5)."""
    top = np.nanmax(class_means, axis=0)
    spread = top - np.nanmean(class_means, axis=0)
    ratio = np.divide(spread, top, out=np.zeros_like(top), where=top > 0)
    return np.where(np.nanmin(class_means, axis=0) < 0, np.nan, ratio)


def mean_selectivity(class_means: np.ndarray) -> float | None:
    """A layer's selectivity: the mean over its channels where it is defined, ``None`` where it is nowhere."""
    chosen = selectivity(class_means)
    defined = chosen[~np.isnan(chosen)]
    return as_number(defined.mean()) if defined.size else None


def dataset_summary(table: dict[str, np.ndarray]) -> dict[str, float | int | None]:
    """One layer's dataset-wide summary (``data_*`` keys, apart from the one-sample ``map_*`` ones of
    :func:`~convlens.analysis.stats.layer_summary`, which computes the shared ones)."""
    from convlens.analysis.stats import layer_summary  # stats imports this module

    shared = layer_summary(table)
    return {
        "data_mean": shared["map_mean"],
        "data_fraction_active": shared["map_fraction_active"],
        "data_dead_channels": shared["dead_channels"],
        "data_selectivity": mean_selectivity(table["class_means"]),
    }


def channel_rows(table: dict[str, np.ndarray], classes: list[str]) -> list[dict[str, object]]:
    """One layer's CSV table: one row per channel, its statistics and its mean activation for each class."""
    rows = []
    for c in range(len(table["mean"])):
        row: dict[str, object] = {"channel": c}
        row.update({k: as_number(table[k][c]) for k in ("mean", "fraction_active", "max", "top_image_mean")})
        row["selectivity"] = as_number(selectivity(table["class_means"][:, c : c + 1])[0])
        row.update({name: as_number(table["class_means"][k, c]) for k, name in enumerate(classes)})
        rows.append(row)
    return rows


def dataset_metrics(tables: dict[str, dict[str, dict[str, np.ndarray]]]) -> dict[str, dict[str, dict]]:
    """Per model and layer (``tables[model][layer]``), :func:`dataset_summary`: the stage's metrics file."""
    return {role: {name: dataset_summary(t) for name, t in by_layer.items()} for role, by_layer in tables.items()}


def stream_pass(
    network: Activations,
    images: np.ndarray,
    labels: np.ndarray,
    names: list[str],
    classes: int,
    scale: float,
    batch_size: int,
    label: str,
    examples: tuple[int, str] | None = None,
    head: str | None = None,
) -> tuple[dict[str, dict[str, np.ndarray]], np.ndarray | None]:
    """Run every image through ``network`` in batches, once, and accumulate each named layer's channel statistics
    and, with ``head`` (the output layer, one score per class), each image's predicted class (uint16, N).

    ``examples`` (k, by): also each channel's k top images (``examples.RunningTopK``, scored by ``by``), as
    ``example_scores``, ``example_images`` and ``example_tied`` (k × channels; ``RunningTopK.tied``) in the layer's
    table, and where each of those images' map peaks (whichever ``by``): ``example_peak_rows``,
    ``example_peak_columns`` (``examples.peak_positions_at``) and ``example_peaks``, the map's maximum there.

    With the numpy network, :data:`PASS_WORKERS` threads each run one batch through it and reduce its maps over
    positions (``stats.reduce_positions``; NumPy releases the GIL in both), BLAS held to one thread in each
    (``batching.blas_threads``): the CPUs share the whole work, not only the products. This thread adds each
    batch's results to the running statistics in batch order, so every number is the one a single thread gives,
    bit for bit. Memory holds ``PASS_WORKERS`` batches, whatever the number of images. A Keras network runs one
    batch at a time in one thread while this one reduces the batch before.
    """
    predictions = None if head is None else np.empty(len(images), np.uint16)
    wanted = [*names, head] if head is not None else names
    accumulators: dict[str, ChannelAccumulator] = {}
    tops: dict[str, RunningTopK] = {}
    if examples is not None:
        check_examples(*examples)

    def accumulate(maps: list[np.ndarray], reduced: list[tuple[np.ndarray, ...] | None], labels: np.ndarray) -> None:
        for name, m, r in zip(names, maps, reduced, strict=True):
            means, peaks = accumulators.setdefault(name, ChannelAccumulator(m.shape[-1], classes)).update(m, labels, r)
            if examples is not None:  # each image's max or mean per channel, as image_scores gives them
                tops.setdefault(name, RunningTopK(examples[0], m.shape[-1])).update(
                    peaks if examples[1] == "max" else means,
                    lambda rows, channels, m=m, peaks=peaks: (
                        *peak_positions_at(m, rows, channels),
                        peaks[rows, channels],
                    ),
                )

    parallel = isinstance(network, Network)  # Keras runs its own threads: one batch at a time, reduced here

    def compute(part: slice) -> tuple[list[np.ndarray], list[tuple[np.ndarray, ...] | None], np.ndarray | None]:
        """One batch through the network and, in parallel, each layer's maps reduced over positions (a worker's)."""
        maps = network.activations(model_inputs(images[part], scale), wanted)
        release_pages(images)  # memory stays flat in the number of images (issue 25)
        scores = maps.pop() if head is not None else None
        return maps, [reduce_positions(m.reshape(len(m), -1, m.shape[-1])) if parallel else None for m in maps], scores

    def merge(part: slice, done: Future) -> None:
        """One batch's results added to the running statistics, batch after batch in order (this thread)."""
        maps, reduced, scores = done.result()
        if predictions is not None:
            predictions[part] = predicted_classes(scores, classes, head)
        accumulate(maps, reduced, np.asarray(labels[part]))

    workers = min(PASS_WORKERS, cpu_count()) if parallel else 1
    in_flight = workers if parallel else 2  # Keras: the next batch runs while this thread reduces one
    pending: deque[tuple[slice, Future]] = deque()
    with blas_threads(1 if workers > 1 else None), ThreadPoolExecutor(max_workers=workers) as pool:
        for part in batches_with_progress(len(images), batch_size, label):
            if len(pending) == in_flight:
                merge(*pending.popleft())
            pending.append((part, pool.submit(compute, part)))
        while pending:
            merge(*pending.popleft())
    tables = {name: acc.table() for name, acc in accumulators.items()}
    for name, top in tops.items():
        tables[name]["example_scores"], tables[name]["example_images"] = top.result()
        tables[name]["example_tied"] = top.tied()
        tables[name]["example_peak_rows"], tables[name]["example_peak_columns"], tables[name]["example_peaks"] = (
            top.kept()
        )
    return tables, predictions
