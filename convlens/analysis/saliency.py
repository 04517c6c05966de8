"""Pixel-level attribution, the TensorFlow half: saliency, SmoothGrad, integrated gradients and occlusion of a
class score with respect to the input, beside Grad-CAM (``gradients``). Each takes the model of
``gradients.class_scores`` (input → [feature maps, class scores]) and returns an attribution per input value;
``attribution.heat`` makes it one map per image.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from convlens.analysis.attribution import gradcam, image_streams, occlusion_windows
from convlens.analysis.gradients import feature_map_gradients
from convlens.model.keras_models import keras, tf
from convlens.schema import ATTRIBUTION_METHODS

METHODS = ("gradcam", *ATTRIBUTION_METHODS)  # Grad-CAM always; the pixel methods as ``attribution.methods`` chooses
CHUNK = 2048  # images per forward or gradient call (integration steps, noisy copies, occluded copies)


@dataclass(frozen=True)
class Settings:
    """How the pixel methods run (``attribution.*``; see conf/config.yaml)."""

    noise: float  # SmoothGrad: the noise's std, as a fraction of each image's value range
    samples: int  # SmoothGrad: noisy copies per image
    steps: int  # integrated gradients: Riemann steps (midpoints) from the baseline to the image
    window: int  # occlusion: the square patch's side, in pixels
    stride: int  # occlusion: the patch's step, in pixels
    seed: int


def scores(scorer: keras.Model, x: np.ndarray) -> np.ndarray:
    """The class scores (images × classes, float64) of the batch ``x``, in chunks of ``CHUNK`` images."""
    parts = [scorer(tf.constant(x[i : i + CHUNK], tf.float32), training=False)[1] for i in range(0, len(x), CHUNK)]
    return np.concatenate([np.asarray(p, np.float64) for p in parts]) if parts else np.zeros((0, 0))


_GRADIENTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # per scorer, its traced gradient function


def gradient_function(scorer: keras.Model):
    """``scorer``'s gradient of each image's chosen class score with respect to the image, as one traced
    ``tf.function`` (kept per scorer: about twice as fast as eager on CPU)."""
    if scorer not in _GRADIENTS:
        signature = [tf.TensorSpec((None, *scorer.inputs[0].shape[1:]), tf.float32), tf.TensorSpec((None,), tf.int32)]

        @tf.function(input_signature=signature)  # traced once: any batch size
        def gradients(batch: tf.Tensor, classes: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                tape.watch(batch)
                chosen = tf.gather(scorer(batch, training=False)[1], classes, axis=1, batch_dims=1)
            return tape.gradient(chosen, batch)  # image i's score depends only on image i

        _GRADIENTS[scorer] = gradients
    return _GRADIENTS[scorer]


def input_gradients(scorer: keras.Model, x: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The gradient of each image's score for its class in ``classes`` with respect to the image (``x``'s shape)."""
    gradients = gradient_function(scorer)
    parts = [
        gradients(tf.constant(x[i : i + CHUNK], tf.float32), tf.constant(classes[i : i + CHUNK], tf.int32)).numpy()
        for i in range(0, len(x), CHUNK)
    ]
    return np.concatenate(parts).astype(np.float64) if parts else np.zeros(x.shape)


def saliency(scorer: keras.Model, x: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Saliency (Simonyan et al. 2014): the score's gradient with respect to each input value."""
    return input_gradients(scorer, x, classes)


def smoothgrad(
    scorer: keras.Model, x: np.ndarray, classes: np.ndarray, settings: Settings, images: Sequence[int] | None = None
) -> np.ndarray:
    """SmoothGrad (Smilkov et al. 2017): the mean absolute gradient over ``settings.samples`` copies of each image
    with Gaussian noise of std ``settings.noise`` × the image's value range, each image's noise from its own
    stream (``images``: their indices, default 0, 1, …; ``attribution.image_streams``), whatever the batch."""
    streams = image_streams(settings.seed, "smoothgrad", range(len(x)) if images is None else images)
    axes = tuple(range(1, x.ndim))
    spread = settings.noise * (x.max(axis=axes, keepdims=True) - x.min(axis=axes, keepdims=True))
    draws = [rng.standard_normal((settings.samples, *x.shape[1:])) for rng in streams]
    noise = np.stack(draws, axis=1) if draws else np.zeros((settings.samples, *x.shape))
    noisy = x[None] + spread[None] * noise
    grads = input_gradients(scorer, noisy.reshape(-1, *x.shape[1:]), np.tile(classes, settings.samples))
    return np.abs(grads).reshape(settings.samples, *x.shape).mean(axis=0)


def integrated_gradients(
    scorer: keras.Model, x: np.ndarray, classes: np.ndarray, baseline: np.ndarray, steps: int
) -> np.ndarray:
    """Integrated gradients (Sundararajan et al. 2017) from ``baseline`` (one input, broadcast) to each image:
    (x − baseline) × the mean gradient at ``steps`` midpoints of the straight path. Their sum approaches
    score(x) − score(baseline) as ``steps`` grows (completeness)."""
    alphas = (np.arange(steps) + 0.5) / steps
    path = baseline[None, None] + alphas.reshape(-1, 1, *[1] * (x.ndim - 1)) * (x - baseline)[None]
    grads = input_gradients(scorer, path.reshape(-1, *x.shape[1:]), np.tile(classes, steps))
    return (x - baseline) * grads.reshape(steps, *x.shape).mean(axis=0)


def occlusion(
    scorer: keras.Model, x: np.ndarray, classes: np.ndarray, baseline: np.ndarray, window: int, stride: int
) -> np.ndarray:
    """Occlusion (Zeiler & Fergus 2014): each pixel's mean drop of the class score over the ``window`` × ``window``
    patches (every ``stride`` pixels) that cover it, a patch set to ``baseline``'s values (images × H × W)."""
    masks = occlusion_windows(x.shape[1:3], window, stride)  # patches × H × W, True inside
    inside = masks[None, :, :, :, None] if x.ndim == 4 else masks[None]
    occluded = np.where(inside, baseline[None, None], x[:, None]).astype(np.float32)  # images × patches × input
    own = np.take_along_axis(scores(scorer, x), classes[:, None], axis=1)
    hidden = scores(scorer, occluded.reshape(-1, *x.shape[1:])).reshape(len(x), len(masks), -1)
    drops = own - np.take_along_axis(hidden, classes[:, None, None], axis=2)[..., 0]  # images × patches
    covered = masks.sum(axis=0)
    return np.tensordot(drops, masks.astype(np.float64), axes=([1], [0])) / np.maximum(covered, 1)


def method_maps(
    method: str,
    scorer: keras.Model,
    x: np.ndarray,
    classes: np.ndarray,
    baseline: np.ndarray,
    settings: Settings,
    images: Sequence[int] | None = None,
) -> np.ndarray:
    """One method's attribution of each image's class in ``classes`` (``x``'s shape; occlusion and Grad-CAM:
    images × H × W). Grad-CAM looks at the feature maps ``scorer`` outputs first. ``images``: the indices of
    ``x``'s images among all those looked at (SmoothGrad draws each one's noise from its own stream)."""
    if method == "gradcam":
        conv, grads, _ = feature_map_gradients(scorer, x, classes)
        return np.stack([gradcam(c, d, x.shape[1:3]) for c, d in zip(conv, grads, strict=True)])
    if method == "saliency":
        return saliency(scorer, x, classes)
    if method == "smoothgrad":
        return smoothgrad(scorer, x, classes, settings, images)
    if method == "integrated_gradients":
        return integrated_gradients(scorer, x, classes, baseline, settings.steps)
    return occlusion(scorer, x, classes, baseline, settings.window, settings.stride)
