"""Sanity checks of the attribution methods over many images (Adebayo et al. 2018), the TensorFlow half: the
cascading model-parameter randomization (the trained model's weighted layers replaced by the untrained twin's,
from the top layer down; the last step is the untrained model, the randomization test) and the deletion curve
(the trained model's accuracy as each method's most-attributed pixels are removed). Streamed batch by batch:
memory stays flat in the number of images. The arithmetic is in ``attribution``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from convlens.analysis.attribution import RANDOM, delete_pixels, heat, image_streams, removal_order, similarity
from convlens.analysis.gradients import class_scores
from convlens.analysis.saliency import Settings, method_maps, scores
from convlens.model.keras_models import keras, load_model


def cascade(trained: Path, untrained: Path, address: str) -> tuple[list[str], list[keras.Model]]:
    """The cascading randomization's models: step 0 the trained model, step k the trained model with its top k
    layers that have weights holding the untrained model's (the last step: the untrained model), each as
    ``class_scores`` at ``address``; and the layer each step randomized (``"none"`` for step 0)."""
    twin = load_model(untrained)
    weighted = [i for i, layer in enumerate(twin.layers) if layer.weights][::-1]
    names, scorers = ["none"], []
    for k in range(len(weighted) + 1):
        model = load_model(trained)
        for i in weighted[:k]:
            model.layers[i].set_weights(twin.layers[i].get_weights())
        scorers.append(class_scores(model, address)[0])
        names += [model.layers[weighted[k - 1]].name] if k else []
    return names, scorers


@dataclass
class Tally:
    """What the sanity pass keeps: per method and cascade step each image's :func:`attribution.similarity` to
    the step-0 map, and per method (and ``RANDOM``) the count of images still classified right at each
    deletion fraction."""

    fractions: np.ndarray
    similar: dict[str, list[list[dict[str, float]]]] = field(default_factory=dict)
    correct: dict[str, np.ndarray] = field(default_factory=dict)
    images: int = 0


def sanity_pass(
    scorers: Sequence[keras.Model],
    batches: Iterable[tuple[np.ndarray, np.ndarray]],
    methods: Sequence[str],
    baseline: np.ndarray,
    settings: Settings,
    fractions: np.ndarray,
) -> Tally:
    """The sanity checks over ``batches`` (model inputs, labels): each image's map of the class the trained model
    (``scorers[0]``) predicts, by every method at every cascade step (``scorers``), and the deletion curves. Each
    method's random draws for an image (SmoothGrad's noise, the order of its tied pixels) come from that image's
    own stream (``attribution.image_streams``): a method's numbers do not depend on the others or on the batches."""
    tally = Tally(np.asarray(fractions))
    for x, labels in batches:
        classes, images = scores(scorers[0], x).argmax(axis=1), range(tally.images, tally.images + len(x))
        reference = {}
        for method in methods:
            maps = [heat(method_maps(method, s, x, classes, baseline, settings, images)) for s in scorers]
            steps = tally.similar.setdefault(method, [[] for _ in scorers])
            for k, step_maps in enumerate(maps):
                steps[k] += [similarity(a, b) for a, b in zip(maps[0], step_maps, strict=True)]
            reference[method] = maps[0]
        reference[RANDOM] = np.zeros(x.shape[:3])  # all ties: a random order
        for name, maps in reference.items():
            order = removal_order(maps, image_streams(settings.seed, name, images))
            counts = deletion_counts(scorers[0], x, labels, order, baseline, tally.fractions)
            tally.correct[name] = tally.correct.get(name, 0) + counts
        tally.images += len(x)
    return tally


def deletion_counts(
    scorer: keras.Model, x: np.ndarray, labels: np.ndarray, order: np.ndarray, baseline: np.ndarray, fractions
) -> np.ndarray:
    """How many images of ``x`` the model still classifies as ``labels`` with each fraction of their pixels
    removed (set to ``baseline``) in ``order``."""
    pixels = x.shape[1] * x.shape[2]
    batch = np.concatenate([delete_pixels(x, order, round(f * pixels), baseline) for f in fractions])
    right = scores(scorer, batch).argmax(axis=1) == np.tile(labels, len(fractions))
    return right.reshape(len(fractions), len(x)).sum(axis=1)


def sample_maps(
    scorers: Mapping[str, keras.Model],
    x: np.ndarray,
    targets: Sequence[np.ndarray],
    methods: Sequence[str],
    baseline: np.ndarray,
    settings: Settings,
) -> dict[str, dict[str, np.ndarray]]:
    """Per method and model (``scorers``: role → model) the samples' maps (samples × targets × H × W, float32):
    for each target, each sample's map of its class in that target."""
    return {
        method: {
            role: np.stack(
                [heat(method_maps(method, scorer, x, np.asarray(c), baseline, settings)) for c in targets], axis=1
            ).astype(np.float32)
            for role, scorer in scorers.items()
        }
        for method in methods
    }
