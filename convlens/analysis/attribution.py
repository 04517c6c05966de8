"""Gradient-based views of a model, the numpy half (no TensorFlow): Grad-CAM from a layer's feature maps and
their gradients, Spearman's rank correlation (the model-parameter randomization test of Adebayo et al. 2018),
and how activation maximization compares with the dataset's best image. ``gradients`` computes the inputs.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from convlens.analysis.stats import as_number
from convlens.errors import ConvlensError
from convlens.model.layers import CONV_KINDS, LayerInfo
from convlens.render.language import words

RANDOM = "random"  # the deletion curve's yardstick in the sanity checks: pixels removed in a random order

TARGETS = ("predicted", "true")  # the classes Grad-CAM explains: the trained model's prediction, the label


def upsample(grid: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A 2-D map resized to ``size`` (H, W) by bilinear interpolation with half-pixel centres (what
    ``tf.image.resize`` does): a coarse Grad-CAM map laid over the input image."""
    grid = np.asarray(grid, dtype=np.float64)

    def coords(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        low = np.floor(pos).astype(np.int64)
        high = np.minimum(low + 1, n_in - 1)
        return low, high, pos - low

    (r0, r1, fr), (c0, c1, fc) = coords(grid.shape[0], size[0]), coords(grid.shape[1], size[1])
    rows = grid[r0] * (1 - fr)[:, None] + grid[r1] * fr[:, None]
    return rows[:, c0] * (1 - fc) + rows[:, c1] * fc


def gradcam(conv_output: np.ndarray, grads: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017) of one image: ``conv_output`` (h, w, k) the layer's feature maps,
    ``grads`` (h, w, k) the class score's gradient with respect to them. Each map is weighted by the spatial
    mean of its gradient; the map is the ReLU of the weighted sum, upsampled to ``size`` (the input's H, W)."""
    conv_output, grads = np.asarray(conv_output, np.float64), np.asarray(grads, np.float64)
    weights = grads.mean(axis=(0, 1))
    cam = np.maximum(np.tensordot(conv_output, weights, axes=([2], [0])), 0.0)
    return cam if size is None or tuple(size) == cam.shape else upsample(cam, size)


def ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of the flattened ``values``; tied values share the mean of their ranks."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(flat, kind="stable")
    ordered = flat[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(flat)]
    out = np.empty(len(flat))
    out[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return out


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps (flattened, same size): the Pearson correlation of their ranks.
    NaN when either map is constant (an all-zero Grad-CAM map ranks nothing)."""
    ra, rb = ranks(a), ranks(b)
    if ra.shape != rb.shape:
        raise ValueError(f"maps of {np.size(a)} and {np.size(b)} values cannot be correlated")
    da, db = ra - ra.mean(), rb - rb.mean()
    denominator = math.sqrt(float((da * da).sum() * (db * db).sum()))
    return float((da * db).sum() / denominator) if denominator > 0 else math.nan


def median_or_none(values) -> float | None:
    """The median of the finite values, as a JSON number; ``None`` (JSON null) when there are none."""
    finite = np.asarray(list(values), dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return as_number(np.median(finite)) if finite.size else None


def number_or_none(value: float) -> float | None:
    return as_number(value) if np.isfinite(value) else None


def gradcam_targets(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Per target (``TARGETS``) the class each sample's Grad-CAM map explains: the trained model's prediction
    (the most probable class of ``probabilities``, samples × classes) and the label."""
    return {"predicted": probabilities.argmax(axis=1), "true": labels}


def randomization_test(trained: np.ndarray, untrained: np.ndarray, samples: Sequence[int]) -> dict[str, dict]:
    """The model-parameter randomization test of the Grad-CAM maps (samples × targets × H × W, each model's) as
    metrics (:func:`randomization_summary`): per sample and target, the Spearman correlation of the two maps."""
    correlations = {
        str(s): {t: spearman(trained[i, k], untrained[i, k]) for k, t in enumerate(TARGETS)}
        for i, s in enumerate(samples)
    }
    return randomization_summary(correlations)


def randomization_line(samples: int, layer: str, metrics: Mapping[str, Mapping[str, Mapping]]) -> str:
    """The log line of the randomization test (:func:`sample_correlations`' ``metrics``) of ``samples`` samples'
    maps at ``layer``: each target's median correlation over every pixel and over the pixels not zero in both, as
    :func:`sanity_line` writes one (a dash: undefined; ``k of n``: the samples that have one), and its verdict."""

    def medians(statistic: Mapping[str, Mapping]) -> str:
        counts = statistic.get("defined", {})
        return ", ".join(
            f"{t} {shown(statistic['median'][t])}"
            + (f" ({counts[t]} of {samples})" if counts.get(t, samples) != samples else "")
            for t in TARGETS
        )

    passes = metrics.get("passes", {})
    said = ", ".join(f"{t} {verdict_word(passes.get(t), 'samples')}" for t in TARGETS)
    lit = f"; where not both zero {medians(metrics[SANITY_STATISTIC])}" if SANITY_STATISTIC in metrics else ""
    return (
        f"{samples} {plural(samples, 'sample')} at {layer}: Spearman trained vs untrained, median "
        f"{medians(metrics['spearman'])}{lit}: {said}"
    )


def plural(count: int, noun: str) -> str:
    """``noun`` for one, ``noun + "s"`` otherwise (the log's ``1 sample``, ``2 samples``)."""
    return noun if count == 1 else f"{noun}s"


def gradcam_record(
    layer: str,
    index: Mapping[str, object],
    targets: Mapping[str, np.ndarray],
    probs: Mapping[str, np.ndarray],
) -> dict[str, object]:
    """What the Grad-CAM maps explain (``index.json``): the ``layer``, the samples (``index``: split, ids, labels),
    the class of each target, and per model (``probs``: samples × classes) the predicted class and its probability."""
    return {
        "layer": layer, "split": index["split"], "samples": index["samples"],
        "labels": np.asarray(index["labels"], np.int64).tolist(),
        "targets": {t: targets[t].tolist() for t in TARGETS},
        "predicted": {role: p.argmax(axis=1).tolist() for role, p in probs.items()},
        "probability": {role: p.max(axis=1).round(6).tolist() for role, p in probs.items()},
    }  # fmt: skip


def randomization_summary(correlations: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, dict]]:
    """The model-parameter randomization test as metrics, ``{"spearman": {"median": {target: …}, "sample_<i>":
    {target: …}}}``: per sample the Spearman correlation of the trained and untrained Grad-CAM maps for each
    target (``predicted``, ``true``), each target's median over the samples (undefined ones, JSON null, left
    out) and ``defined``: how many samples that median is over. Low |ρ| (either sign: ρ = −0.6 is a map that
    follows the weights inverted, no pass): the maps depend on what the model learned, so the method passes."""
    targets = list(dict.fromkeys(t for by_target in correlations.values() for t in by_target))
    medians = {t: median_or_none(c[t] for c in correlations.values()) for t in targets}
    defined = {t: sum(number_or_none(c[t]) is not None for c in correlations.values()) for t in targets}
    per_sample = {f"sample_{s}": {t: number_or_none(c[t]) for t in targets} for s, c in correlations.items()}
    return {"spearman": {"median": medians, "defined": defined, **per_sample}}


def gaussian_kernel(sigma: float) -> np.ndarray:
    """A normalized 2-D Gaussian kernel (2⌈2σ⌉+1 square), the blur that keeps an optimized input smooth."""
    radius = max(1, math.ceil(2 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    line = np.exp(-(x**2) / (2 * sigma**2))
    kernel = np.outer(line, line)
    return kernel / kernel.sum()


FLATTENING_KINDS = ("Flatten", "Reshape", "Dense", "GlobalAveragePooling2D", "GlobalMaxPooling2D")


def feature_map_models(layers: Sequence[LayerInfo]) -> list[str]:
    """The model's own nested models (a layer of the model itself with layers ``outer/…`` inside) whose output is a
    feature map: a conv layer inside, and no layer after its last one that flattens or pools the maps away
    (:data:`FLATTENING_KINDS`). Grad-CAM can look at those (a transfer-learning base), not at a layer inside them."""
    found = []
    for outer in (layer.name for layer in layers if layer.index is not None and "/" not in layer.name):
        inside = [layer.kind for layer in layers if layer.name.startswith(f"{outer}/")]
        convs = [i for i, kind in enumerate(inside) if kind in CONV_KINDS]
        if convs and not any(kind in FLATTENING_KINDS for kind in inside[convs[-1] :]):
            found.append(outer)
    return found


def _nested_hint(layers: Sequence[LayerInfo]) -> str:
    """How to name a nested model whose output is a feature map: `` (…); name it with gradcam.layer=NAME``, or ''."""
    nested = feature_map_models(layers)
    if not nested:
        return ""
    said = " or ".join(f"gradcam.layer={name}" for name in nested)
    return f"; its conv layers are inside the nested model {nested[-1]!r}, whose output is a feature map: {said}"


def flat_layers(layers: Sequence[LayerInfo]) -> list[str]:
    """The model's own layers whose output is no longer H×W×C feature maps: a flattening kind
    (:data:`FLATTENING_KINDS`) and every layer after it, in Keras's order, up to a conv layer (after a Reshape back)."""
    flat, found = False, []
    for layer in sorted((la for la in layers if la.index is not None), key=lambda la: la.index):
        flat = layer.kind in FLATTENING_KINDS or (flat and layer.kind not in CONV_KINDS)
        if flat:
            found.append(layer.name)
    return found


def gradcam_layer(layers: Sequence[LayerInfo], resolved: str | None) -> str:
    """The layer Grad-CAM looks at: ``resolved`` (``gradcam.layer``, resolved against the model), or by default
    the model's last top-level conv layer. A layer inside a nested model is refused (its output is not one of
    the model's own tensors), naming the nested model itself where its output is a feature map
    (:func:`feature_map_models`), as is a model with no conv layer of its own. fetch_model applies it too, so a
    model that does not fit is refused there, before the other stages run."""
    if resolved is None:
        convs = [layer.name for layer in layers if layer.kind in CONV_KINDS and layer.index is not None]
        if not convs:
            hint = _nested_hint(layers)
            if hint:
                raise ConvlensError(f"the model has no conv layer of its own for Grad-CAM{hint}")
            raise ConvlensError("the model has no conv layer of its own for Grad-CAM; name one with gradcam.layer=NAME")
        return convs[-1]
    if "/" in resolved:
        outer = resolved.split("/")[0]
        fix = (
            f"name the nested model itself, gradcam.layer={outer} (its output is a feature map), or a layer of "
            "the model itself"
            if outer in feature_map_models(layers)
            else "name a layer of the model itself"
        )
        raise ConvlensError(f"gradcam.layer {resolved!r} is inside the nested model {outer!r}; {fix}")
    refuse_flat_layers(layers, [resolved], "gradcam.layer", "the last conv layer")
    return resolved


MAP_LAYERS_NAMED = 8  # the most layers a refusal of a flat layer lists (the nearest first), then "and N more"


def refuse_flat_layers(layers: Sequence[LayerInfo], names: Sequence[str], key: str, default: str) -> None:
    """Refuse any of ``names`` (``key``'s layers, resolved) whose output is no longer H×W×C feature maps
    (:func:`flat_layers`: a Flatten, Dense, global pooling and what follows), in one line naming the kind and the
    layers that do output feature maps, the nearest first (``default``: what ``key``'s null chooses). Grad-CAM and
    activation maximization both look at feature maps."""
    flat = flat_layers(layers)
    for name in (n for n in names if n in flat):
        kind = next(layer.kind for layer in layers if layer.name == name)
        maps = [la.name for la in layers if la.index is not None and la.name not in flat and la.kind != "InputLayer"]
        nearest = maps[::-1]
        more = len(nearest) - MAP_LAYERS_NAMED
        here = ", ".join(nearest[:MAP_LAYERS_NAMED]) + (f" and {more} more" if more > 0 else "")
        raise ConvlensError(
            f"{key} {name!r} ({kind}) does not output H×W×C feature maps (the model has flattened or globally "
            f"pooled them by then); choose a layer before that{f': here {here}' if maps else ''} (null: {default})"
        )


BASELINES = ("black", "mean")  # what a removed pixel becomes (integrated gradients, occlusion, deletion)
SCALES = ("shared", "each")  # a figure row's maps on one colour scale with a colourbar, or each on its own


def baseline_input(kind: str, batches: Iterable[np.ndarray]) -> np.ndarray:
    """The input a removed pixel takes its value from: ``black`` all zeros, ``mean`` the mean input per position
    over ``batches`` (each images × input; streamed), one input's shape."""
    if kind not in BASELINES:
        raise ConvlensError(f"attribution.baseline must be one of {', '.join(BASELINES)}, got {kind!r}")
    total, count = None, 0
    for batch in batches:
        batch = np.asarray(batch, np.float64)
        total = batch.sum(axis=0) + (0 if total is None else total)
        count += len(batch)
        if kind == "black":
            return np.zeros(batch.shape[1:])
    if total is None or count == 0:
        raise ConvlensError("attribution.baseline: no image to take the mean of")
    return total / count


def occlusion_windows(size: tuple[int, int], window: int, stride: int) -> np.ndarray:
    """The occlusion patches of an image of ``size`` (H, W): a ``window`` × ``window`` square every ``stride`` pixels,
    plus one flush with the right and bottom edges when the stride skips them (patches × H × W, True inside)."""
    if not 1 <= window <= min(size):
        raise ConvlensError(f"attribution.occlusion_window must be in 1..{min(size)} for {size[0]}×{size[1]} images")

    def starts(n: int) -> list[int]:
        return sorted({*range(0, n - window + 1, stride), n - window})

    masks = []
    for r in starts(size[0]):
        for c in starts(size[1]):
            mask = np.zeros(size, bool)
            mask[r : r + window, c : c + window] = True
            masks.append(mask)
    return np.stack(masks)


def heat(attribution: np.ndarray) -> np.ndarray:
    """Maps (images × H × W) of an attribution: its magnitude, summed over the colours of an input (images × H × W ×
    C), as Adebayo et al. compare them (a sign is a method's convention, not where it looks)."""
    magnitude = np.abs(np.asarray(attribution, np.float64))
    return magnitude.sum(axis=-1) if magnitude.ndim == 4 else magnitude


def tied_share(values: np.ndarray) -> float:
    """The share of a map's values that some other value of it equals (its ties: 0 for distinct values; an
    all-zero map of n values has n ties)."""
    flat = np.asarray(values).ravel()
    _, counts = np.unique(flat, return_counts=True)
    return float(counts[counts > 1].sum() / flat.size) if flat.size else math.nan


def similarity(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """How alike two maps are, ties reported: Spearman over every pixel (tied values share their mean rank),
    Spearman over the pixels that are not zero in both maps (NaN under 3), and the mean share of tied values of
    the two maps (:func:`tied_share`)."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    both = (a != 0) & (b != 0)
    return {
        "spearman": spearman(a, b),
        "spearman_nonzero": spearman(a[both], b[both]) if both.sum() >= 3 else math.nan,
        "tied": (tied_share(a) + tied_share(b)) / 2,
    }


def image_streams(seed: int, method: str, images: Sequence[int]) -> list[np.random.Generator]:
    """One random stream per image (its index among all the images looked at) for ``method``:
    ``default_rng([seed, crc32(method), image])``. What one method draws for one image therefore depends neither on
    which other methods run before it nor on how the images are batched (``attribution.batch_size``)."""
    key = zlib.crc32(method.encode("utf-8"))
    return [np.random.default_rng([seed, key, image]) for image in images]


def removal_order(maps: np.ndarray, streams: Sequence[np.random.Generator]) -> np.ndarray:
    """Per map (images × H × W) its pixels' flat indices, most attributed first; equal values (a map's zeros) in
    a random order, each map's drawn from its own stream (``streams``, one per map: :func:`image_streams`), not in
    reading order."""
    flat = np.asarray(maps, np.float64).reshape(len(maps), -1)
    ties = np.stack([rng.random(flat.shape[1]) for rng in streams]) if len(flat) else np.zeros(flat.shape)
    return np.lexsort(np.stack([ties, -flat]), axis=-1)  # lexsort: the last key first


def delete_pixels(x: np.ndarray, order: np.ndarray, count: int, baseline: np.ndarray) -> np.ndarray:
    """The images ``x`` (images × H × W[ × C]) with each one's first ``count`` pixels of ``order`` (flat indices of
    H × W, per image) set to ``baseline``'s values (one input, every colour of a pixel)."""
    n, h, w = x.shape[:3]
    removed = np.zeros((n, h * w), bool)
    np.put_along_axis(removed, order[:, :count], True, axis=1)
    removed = removed.reshape(n, h, w, *[1] * (x.ndim - 3))
    return np.where(removed, baseline[None], x)


def deletion_fractions(steps: int) -> np.ndarray:
    """The shares of pixels the deletion curve removes: 0, 1/steps, …, 1."""
    return np.linspace(0.0, 1.0, steps + 1)


def curve_area(fractions: np.ndarray, values: np.ndarray) -> float:
    """The area under a curve of ``values`` over ``fractions`` (trapezoids): for the deletion curve, low when
    removing the most-attributed pixels first breaks the model fast (a faithful map)."""
    f, v = np.asarray(fractions, np.float64), np.asarray(values, np.float64)
    return float(((v[1:] + v[:-1]) / 2 * np.diff(f)).sum())


def defined_count(values: Iterable[float]) -> int:
    """How many of ``values`` are defined (finite): the images a median of correlations rests on."""
    return int(np.isfinite(np.asarray(list(values), dtype=np.float64)).sum())


def cascade_rows(steps: Sequence[Sequence[Mapping[str, float]]], layers: Sequence[str]) -> list[dict[str, object]]:
    """The cascading randomization curve of one method as CSV rows: per step (``layers``: the layer it randomized,
    ``none`` for the trained model) the images' median Spearman to the trained map over every pixel and over
    the pixels not zero in both, each with ``…_images``, how many images it is the median of (a constant map, or
    fewer than 3 pixels lit in both, has no ρ), and their mean share of tied values."""

    def middle(values: Sequence[Mapping[str, float]], key: str) -> dict[str, float | int | None]:
        found = [v[key] for v in values]
        return {key: median_or_none(found), f"{key}_images": defined_count(found)}

    return [
        {
            "randomized": k, "layer": layer, **middle(values, "spearman"), **middle(values, "spearman_nonzero"),
            "tied": as_number(np.mean([v["tied"] for v in values])) if values else None,
        }
        for k, (layer, values) in enumerate(zip(layers, steps, strict=True))
    ]  # fmt: skip


SANITY_STATISTIC = "spearman_nonzero"  # what the randomization check's verdict reads: ρ where not both maps are zero
MIN_VERDICT_IMAGES = 10  # fewer images (or samples) with a ρ: too few to decide


def verdict(rho: float | None, images: int, max_rho: float) -> int | None:
    """The randomization check of one method (Adebayo et al. 2018): ``1`` passes where the median ``rho`` of the
    trained and untrained maps is at most ``max_rho`` in size (``attribution.sanity_max_rho``: the maps depend on
    what the model learned), ``0`` fails; ``None``: too few to decide (fewer than :data:`MIN_VERDICT_IMAGES`
    ``images`` with a ρ, or none)."""
    if rho is None or not math.isfinite(rho) or images < MIN_VERDICT_IMAGES:
        return None
    return int(abs(rho) <= max_rho)


def verdict_word(passes: int | None, unit: str = "images") -> str:
    """The log's word for a :func:`verdict`: ``passes``, ``fails`` or ``too few <unit> to decide``."""
    return f"too few {unit} to decide" if passes is None else "passes" if passes else "fails"


def deletion_rows(fractions: np.ndarray, correct: np.ndarray, images: int) -> list[dict[str, float]]:
    """The deletion curve of one method as CSV rows: per share of pixels removed, the accuracy left."""
    return [
        {"removed": round(float(f), 6), "accuracy": as_number(c / images)}
        for f, c in zip(fractions, correct, strict=True)
    ]


def sanity_summary(
    curves: Mapping[str, Sequence[Mapping[str, object]]],
    deletion: Mapping[str, Sequence[Mapping[str, float]]],
    max_rho: float,
) -> dict[str, dict[str, float | None]]:
    """Each method's sanity numbers (metrics): at the last cascade step (every layer randomized: the untrained
    model) the median Spearman to the trained map, over every pixel and over the pixels not zero in both, each
    with the number of images it rests on, and the share of ties; ``passes``, the randomization check's
    :func:`verdict` on the median over the pixels not zero in both (``max_rho``); and the area under its deletion
    curve (``deletion``, the random order's too)."""
    summary: dict[str, dict[str, float | None]] = {}
    for name, rows in deletion.items():
        fractions = np.array([r["removed"] for r in rows])
        summary[name] = {"deletion_auc": as_number(curve_area(fractions, np.array([r["accuracy"] for r in rows])))}
    for name, rows in curves.items():
        last = rows[-1]
        keys = ("spearman", "spearman_images", "spearman_nonzero", "spearman_nonzero_images", "tied")
        summary.setdefault(name, {}).update({k: last[k] for k in keys})
        rho, images = last[SANITY_STATISTIC], last[f"{SANITY_STATISTIC}_images"]
        summary[name]["passes"] = verdict(rho, images, max_rho)  # type: ignore[arg-type]
    return summary


def sample_correlations(
    trained: np.ndarray, untrained: np.ndarray, samples: Sequence[int], max_rho: float
) -> dict[str, dict]:
    """:func:`randomization_test` of one method's sample maps, with each sample's Spearman over the pixels not
    zero in both maps beside it (``spearman_nonzero``) and, per target, the :func:`verdict` on its median
    (``passes``: 1, 0, or null for fewer than :data:`MIN_VERDICT_IMAGES` samples with a ρ)."""
    metrics = randomization_test(trained, untrained, samples)
    both = {
        str(s): {t: similarity(trained[i, k], untrained[i, k])["spearman_nonzero"] for k, t in enumerate(TARGETS)}
        for i, s in enumerate(samples)
    }
    lit = randomization_summary(both)["spearman"]
    passes = {t: verdict(lit["median"][t], lit["defined"][t], max_rho) for t in TARGETS}
    return metrics | {SANITY_STATISTIC: lit, "passes": passes}


def figure_rows(
    maps: Mapping[str, Mapping[str, np.ndarray]],
    probs: Mapping[str, np.ndarray],
    i: int,
    targets: Mapping[str, np.ndarray],
    classes: Sequence[str],
    rho: Mapping[str, Mapping[str, float | None]],
) -> list[tuple[str, list[tuple[np.ndarray, str]]]]:
    """Sample ``i``'s attribution figure: per method (``maps[method][model]``: samples × targets × H × W) and
    target a row, labelled with the method, the class it explains and the Spearman correlation of the trained
    and untrained maps (``rho[method][target]``), of each model's map titled with its prediction. The true
    class's row only when the trained model predicts another class (else it would repeat the first)."""
    rows, t = [], words()
    for method, by_role in maps.items():
        for k, target in enumerate(TARGETS):
            c = int(targets[target][i])
            if k and c == int(targets[TARGETS[0]][i]):
                continue
            r = rho[method][target]
            name = t.term("method", method)  # the methods' names: method_* in render/strings.yaml
            rho_text = t("none") if r is None else f"{r:.2f}"
            label = t("attribution_row", method=name, target=t.term("target", target), name=classes[c], rho=rho_text)
            panels = [
                (by_role[role][i, k], t("attribution_panel", model=t.term("model", role),
                 name=classes[int(np.argmax(p[i]))], p=f"{p[i].max():.2f}", target=classes[c], pt=f"{p[i, c]:.2f}"))
                for role, p in probs.items()
            ]  # fmt: skip
            rows.append((label, panels))
    return rows


def shown(value: float | None, spec: str = ".2f") -> str:
    """A number of a log line: ``spec`` (a correlation: 2 decimals), or a dash where it is undefined (``None``)."""
    return "–" if value is None else format(value, spec)


def sanity_line(images: int, summary: Mapping[str, Mapping[str, float | None]]) -> str:
    """The log line of the sanity checks over ``images`` images (:func:`sanity_summary`): per method the median
    Spearman of the trained and untrained maps (where both are not zero), each with the images it rests on where
    fewer, the ties, the randomization check's verdict and the deletion curve's area."""

    def over(s: Mapping[str, float | None], key: str) -> str:
        n = s.get(f"{key}_images", images)
        return f" over {n} of {images}" if n != images else ""

    parts = [
        f"{name} ρ {shown(s.get('spearman'))}{over(s, 'spearman')} ({shown(s.get(SANITY_STATISTIC))} nonzero"
        f"{over(s, SANITY_STATISTIC)}, ties {shown(s.get('tied'), '.0%')}) "
        f"{verdict_word(s.get('passes'))}, deletion AUC {shown(s['deletion_auc'], '.3f')}"  # type: ignore[arg-type]
        if "spearman" in s else f"{name} deletion AUC {shown(s['deletion_auc'], '.3f')}"
        for name, s in summary.items()
    ]  # fmt: skip
    return f"sanity checks over {images} {plural(images, 'image')}: " + "; ".join(parts)


def sanity_warning(summary: Mapping[str, Mapping[str, float | None]], max_rho: float) -> str | None:
    """The warning when a method fails the randomization check (:func:`sanity_summary`'s ``passes`` 0): its maps
    stay alike when the model's weights are randomized, so they do not show what the model learned. ``None`` when
    none fails."""
    failed = [name for name, s in summary.items() if s.get("passes") == 0]
    if not failed:
        return None
    return (
        f"warning: {', '.join(failed)} {'fails' if len(failed) == 1 else 'fail'} the randomization check: median "
        f"|ρ| of the trained and untrained maps (where not both zero) above attribution.sanity_max_rho={max_rho:g}; "
        f"{'its' if len(failed) == 1 else 'their'} maps barely depend on what the model learned"
    )
