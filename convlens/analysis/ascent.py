"""Activation maximization, the arithmetic (no TensorFlow): when an ascent has converged, which channels it failed,
how selective the optimized inputs are, how far one start falls short of the best of several, and the tables.
The climb itself is in ``gradients``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from convlens.analysis.attribution import median_or_none, number_or_none, plural
from convlens.analysis.stats import as_number

# A channel whose ascent stayed at 0 (its input's mean activation ≤ 0); one not dead that ended below its best
# dataset image's mean activation (``top_image_mean``). A dead channel is counted as dead only, never as below.
DEAD, BELOW = "dead", "below"


def plateaued(then: np.ndarray, now: np.ndarray, tolerance: float) -> bool:
    """The stopping rule: each channel's best activation at the last check (``then``) and at this one (``now``,
    ``window`` steps later). True when no channel rose by more than ``tolerance`` times the size of ``then``
    (channels that stayed at 0 included); never when ``tolerance`` is 0."""
    then, now = np.asarray(then, np.float64), np.asarray(now, np.float64)
    return bool(tolerance > 0 and np.all(now - then <= tolerance * np.abs(then)))


def channel_marks(achieved: np.ndarray, top_image: np.ndarray | None = None, signed: bool = False) -> list[str]:
    """Per channel :data:`DEAD` (its own input's mean activation ≤ 0: the ascent never left zero; only where the
    layer's output cannot go below 0, not ``signed`` by its config or by :func:`seen_signed`: a signed layer's
    channel at ≤ 0 is not dead), :data:`BELOW` (less than its best dataset image's, ``top_image``) or ``""``."""
    tops = np.full(len(achieved), -np.inf) if top_image is None else np.asarray(top_image, np.float64)
    return [
        DEAD if a <= 0 and not signed else BELOW if a < t else ""
        for a, t in zip(np.asarray(achieved, np.float64), tops, strict=True)
    ]


def seen_signed(*means: np.ndarray | None) -> bool:
    """Whether a layer showed outputs below 0 (any channel's mean activation, of the ascent's inputs or of the
    dataset's best images, negative): a layer without a ReLU-family activation. A ReLU layer never does, so its
    marks and ratios stay as they were. A signed layer whose means all happen to be ≥ 0 is not seen here: the stage
    reads the model's config first (:func:`~convlens.model.graph.signed_layers`, every top-level layer), so this
    decides only a nested model's layers (``outer/inner``)."""
    return any(m is not None and bool((np.asarray(m, np.float64) < 0).any()) for m in means)


SIGNED_FLOOR = 0.01  # a signed layer's ratio only where its best image's mean is ≥ this share of the largest |mean|


def ratio_defined(top_image: np.ndarray, signed: bool) -> np.ndarray:
    """Where the ratio to the best dataset image means something: its mean clearly positive (> 0 for a layer that
    cannot go below 0; for a ``signed`` one ≥ :data:`SIGNED_FLOOR` of the layer's largest |mean|, not near 0)."""
    if not signed:
        return top_image > 0
    scale = float(np.abs(top_image).max()) if top_image.size else 0.0
    return (top_image > 0) & (top_image >= SIGNED_FLOOR * scale)


def selectivity(matrix: np.ndarray) -> float | None:
    """The fraction of channels whose own optimized input excites them more than any other channel's does
    (``matrix``: inputs × channels of mean activations, input i optimized for channel i); ``None`` for one
    channel."""
    matrix = np.asarray(matrix, np.float64)
    n = len(matrix)
    if n < 2:
        return None
    others = np.where(np.eye(n, dtype=bool), -np.inf, matrix).max(axis=0)
    return as_number(np.mean(np.diag(matrix) > others))


def best_of_starts(inputs: Sequence[np.ndarray], achieved: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per channel the input of the start that excited it most (ties: the earlier start) and that activation
    (``inputs``: per start channels × H × W × C; ``achieved``: per start each channel's activation)."""
    scores = np.stack([np.asarray(a, np.float64) for a in achieved])
    pick = scores.argmax(axis=0)
    channels = np.arange(scores.shape[1])
    return np.stack(inputs)[pick, channels], scores[pick, channels]


def start_ratio(achieved: Sequence[np.ndarray]) -> float | None:
    """The median over channels of the first start's activation over the best start's (≤ 1; 1: one start was
    enough), channels that no start excited left out; ``None`` with one start."""
    scores = np.stack([np.asarray(a, np.float64) for a in achieved])
    if len(scores) < 2:
        return None
    best = scores.max(axis=0)
    return median_or_none(np.divide(scores[0], best, out=np.full(best.shape, np.nan), where=best > 0))


def ascent_summary(
    achieved: np.ndarray,
    top_image: np.ndarray | None,
    matrix: np.ndarray,
    steps: int,
    converged: bool,
    by_start: np.ndarray | None = None,
    signed: bool = False,
) -> dict[str, float | int | bool | None]:
    """One layer's metrics: each channel's activation of its own input (``achieved``, median), the channels that
    stayed dead and those below their best dataset image (``top_image``, when the dataset has the layer), the
    ratio to that image (median, least; a channel silent on the data has none), the :func:`selectivity` of the
    ``matrix``, the steps run and whether the stopping rule ended them, and with several starts (``by_start``:
    starts × channels) the :func:`start_ratio`. A ``signed`` layer (its output can go below 0: no ReLU) has no dead
    or silent count (None) and a ratio only where :func:`ratio_defined`, the rest counted in ``ratio_undefined``."""
    achieved = np.asarray(achieved, np.float64)
    marks = channel_marks(achieved, top_image, signed)
    summary: dict[str, float | int | bool | None] = {
        "channels": int(achieved.size),
        "activation_median": median_or_none(achieved),
        "dead": None if signed else marks.count(DEAD),
        "selectivity": selectivity(matrix),
        "steps": int(steps),
        "converged": bool(converged),
    }
    if signed:
        summary["signed"] = True
    if by_start is not None and len(by_start) > 1:
        summary["start_ratio_median"] = start_ratio(by_start)
    if top_image is None:
        return summary
    top_image = np.asarray(top_image, np.float64)
    fired = ratio_defined(top_image, signed)
    ratio = np.divide(achieved, top_image, out=np.full(achieved.shape, np.nan), where=fired)
    summary.update(
        below_dataset=marks.count(BELOW),
        ratio_median=median_or_none(ratio),
        ratio_min=number_or_none(np.nanmin(ratio)) if fired.any() else None,
        silent_on_data=None if signed else int((~fired).sum()),
    )
    if signed:
        summary["ratio_undefined"] = int((~fired).sum())
    return summary


def curve_rows(curve: np.ndarray) -> list[dict[str, object]]:
    """The objective curve (steps × channels) as CSV rows: step (from 1), the channels' median, least and
    largest, then each channel (``c0``, ``c1``, …)."""
    curve = np.asarray(curve, np.float64)
    return [
        {
            "step": t + 1,
            "median": as_number(np.median(row)),
            "min": as_number(row.min()),
            "max": as_number(row.max()),
            **{f"c{c}": as_number(v) for c, v in enumerate(row)},
        }
        for t, row in enumerate(curve)
    ]


def top_image_indices(rows: np.ndarray) -> np.ndarray:
    """Each channel's best dataset image from an examples table's (channel, rank, image) columns: the image
    of rank 0, in channel order."""
    rows = np.asarray(rows, np.int64)
    first = rows[rows[:, 1] == 0]
    return first[np.argsort(first[:, 0], kind="stable"), 2]


def ascent_line(model: str, layer: str, seconds: float, before: np.ndarray, after: np.ndarray, summary: dict) -> str:
    """The log line of one layer's activation maximization: each channel's activation ``before`` and ``after``
    climbing (``did not improve`` where no channel rose, whatever stopped it), the ratio to the dataset's best
    image, the dead channels and those below their best dataset image (``below_dataset``: not dead, and below
    its mean activation)."""
    ratio = f", {summary['ratio_median']} × the dataset's best image" if "ratio_median" in summary else ""
    improved = bool(np.any(np.asarray(after, np.float64) > np.asarray(before, np.float64)))
    state = "did not improve" if not improved else "converged" if summary["converged"] else "hit the step cap"
    dead = "signed layer (no ReLU), no dead count" if summary.get("signed") else f"{summary['dead']} dead"
    if "ratio_undefined" in summary:
        ratio += f" ({summary['ratio_undefined']} channels' ratio not defined)"
    if "below_dataset" in summary:
        dead += f", {summary['below_dataset']} below their best dataset image"
    channels, steps = summary["channels"], summary["steps"]
    return (
        f"{model} {layer}: {channels} {plural(channels, 'channel')} in {seconds:.1f} s, {steps} "
        f"{plural(steps, 'step')} ({state}), median mean activation {np.median(before):.4g} → "
        f"{summary['activation_median']}{ratio}, {dead}, selectivity {summary['selectivity']}"
    )


def start_inputs(
    noise: Callable[[int], np.ndarray], seed: int, starts: int, top_images: np.ndarray | None
) -> list[np.ndarray]:
    """The ascent's ``starts`` starting inputs: first the channels' best dataset images (``top_images``) or, without
    them, ``noise(seed)``; then ``noise(seed + k)`` for k = 1, 2, … (``noise``: seeded gray noise)."""
    first = noise(seed) if top_images is None else np.asarray(top_images, np.float64)
    return [first, *(noise(seed + k) for k in range(1, starts))]
