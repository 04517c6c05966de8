"""Gradient-based views of a model, the TensorFlow half: activation maximization (gradient ascent on the
input) and the feature maps and gradients Grad-CAM needs. The arithmetic on the results is in ``attribution``
and ``ascent``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from convlens.analysis.attribution import gaussian_kernel, gradcam
from convlens.errors import ConvlensError
from convlens.model.keras_models import keras, layer_output, no_gradient, tf

INPUT_GRADIENT_METHODS = ("saliency", "smoothgrad", "integrated_gradients")  # the pixel methods that differentiate
GRAY = 0.5  # the ascent starts from mid-gray…
NOISE = 0.2  # …plus Gaussian noise of this std, both as fractions of the input range (clipped to it)


@dataclass(frozen=True)
class Ascent:
    """How activation maximization climbs (``activation_max.*``; see conf/activation_max/default.yaml). The fields
    after ``seed`` default to the old fixed-step ascent: every step run, no scale, rotation or penalty."""

    steps: int  # the most steps (all of them when ``tolerance`` is 0)
    learning_rate: float  # each step moves the input by this fraction of its range (rms over its pixels)
    jitter: int  # each step looks at the input shifted by up to this many pixels (robust, less noisy patterns)
    blur_every: int  # a Gaussian blur every this many steps (0: never)
    blur_sigma: float  # the blur's sigma, in pixels
    decay: float  # each step x ← (1 − decay)·x: pixels no channel needs fade to 0 (the background)
    seed: int
    tolerance: float = 0.0  # stop once no channel's best activation rose by this fraction over ``window`` steps
    window: int = 32
    scale: float = 0.0  # each step looks at the input zoomed by a factor in 1 ± scale…
    rotate: float = 0.0  # …and rotated by up to this many degrees (transformation robustness)
    tv: float = 0.0  # weight of the total-variation penalty (input as fractions of its range)
    l2: float = 0.0  # weight of the L2 penalty (the same)


@dataclass(frozen=True)
class Climb:
    """One layer's ascent: the inputs (channels × H × W × C), each channel's mean activation of its own input before
    and after, its objective at every step (steps × channels) and whether the stopping rule ended it."""

    x: np.ndarray
    before: np.ndarray
    after: np.ndarray
    curve: np.ndarray
    converged: bool


def forward_to(model: keras.Model, address: str) -> Callable[[tf.Tensor], tf.Tensor]:
    """The function from the model's input to the output of the layer at ``address`` (inference mode)."""
    parts = layer_output(model, address)

    def forward(x: tf.Tensor) -> tf.Tensor:
        for part in parts:
            x = part(x, training=False)
        return x

    return forward


def channel_means(activations: tf.Tensor) -> tf.Tensor:
    """Each image's spatial mean of each channel (images × channels; a Dense layer's units as they are)."""
    axes = list(range(1, len(activations.shape) - 1))
    return tf.reduce_mean(activations, axis=axes) if axes else activations


def own_channel_means(activations: tf.Tensor) -> tf.Tensor:
    """Image i's mean activation of channel i (a batch of as many images as channels): the spatial mean of
    each channel (the value of a Dense unit), then the diagonal of images × channels."""
    return tf.linalg.diag_part(channel_means(activations))


def layer_channels(model: keras.Model, address: str, input_shape: tuple[int, ...]) -> int:
    """How many channels the layer at ``address`` has."""
    return int(forward_to(model, address)(tf.zeros((1, *input_shape))).shape[-1])


def check_layer_gradient(path: Path | None, model: keras.Model, address: str, input_shape: tuple[int, ...]) -> None:
    """Refuse, before the ascent, a layer whose channels have no gradient with respect to the input (the ascent
    would not move: its normalized step is 0), computed on two gray inputs: a batch of another size than
    :func:`layer_channels`' one, so that a model that computes one batch size only fails here too."""
    x = tf.fill((2, *input_shape), tf.constant(GRAY, tf.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        means = channel_means(forward_to(model, address)(x))
    if not means.dtype.is_floating or tape.gradient(means, x) is None:
        raise no_gradient(
            path,
            model,
            f"of the channels of layer {address!r} with respect to the input",
            "activation maximization climbs that gradient: leave the layer out of activation_max.layers, or make the "
            "layers from the input to it float and differentiable",
        )


def noise_start(channels: int, input_shape: tuple[int, ...], top: float, seed: int) -> np.ndarray:
    """Seeded gray noise, one input per channel, clipped to 0..``top``."""
    rng = np.random.default_rng(seed)
    return top * np.clip(GRAY + NOISE * rng.standard_normal((channels, *input_shape)), 0, 1)


def affine(scale: float, degrees: float, size: tuple[int, int]) -> np.ndarray:
    """The 8 numbers of tf's projective transform that zooms by ``scale`` and rotates by ``degrees`` about the
    centre of an image of ``size`` (H, W) (they map output pixels to input pixels)."""
    angle, (h, w) = np.deg2rad(degrees), size
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    cy, cx = (h - 1) / 2, (w - 1) / 2
    return np.array([cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy, 0, 0], np.float32)


def total_variation(x: tf.Tensor) -> tf.Tensor:
    """Each image's mean absolute difference between neighbouring pixels (images × H × W × C)."""
    dy = tf.reduce_mean(tf.abs(x[:, 1:] - x[:, :-1]), axis=[1, 2, 3])
    dx = tf.reduce_mean(tf.abs(x[:, :, 1:] - x[:, :, :-1]), axis=[1, 2, 3])
    return dy + dx


def maximize_channels(
    model: keras.Model, address: str, input_shape: tuple[int, ...], top: float, ascent: Ascent
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every channel of the layer at ``address``, the input (in the model's input space, each value in
    0..``top``) that maximizes the channel's mean activation: all channels at once, input i for channel i, by
    :func:`climb` from seeded gray noise. ``input_shape`` is the model's (H, W, C).

    Returns the inputs (channels × ``input_shape``) and each channel's mean activation for its input before
    and after the ascent (without jitter).
    """
    start = noise_start(layer_channels(model, address, input_shape), input_shape, top, ascent.seed)
    done = climb(model, address, start, top, ascent)
    return done.x, done.before, done.after


def climb(model: keras.Model, address: str, start: np.ndarray, top: float, ascent: Ascent) -> Climb:
    """Normalized gradient ascent of input i on channel i's mean activation of the layer at ``address``, from
    ``start`` (channels × H × W × C, in 0..``top``), each step through a random shift, zoom and rotation, less the
    TV and L2 penalties, with blur and decay. Every ``window`` steps and at the last, each channel's activation of
    its own input as it is (no shift) is checked and each channel keeps its best input so far, the start included;
    the ascent stops once that best plateaus (:func:`convlens.analysis.ascent.plateaued`), else at
    ``ascent.steps``. Without a ``tolerance`` every step runs and the inputs are those the last step left. A
    colour input climbs on each colour's own gradient. The curve is each step's
    objective (of the shifted input, penalties subtracted)."""
    from convlens.analysis.ascent import plateaued

    forward, rng = forward_to(model, address), np.random.default_rng(ascent.seed)
    x, size = tf.constant(start, tf.float32), tf.constant(start.shape[1:3], tf.int32)
    step_size = tf.constant(ascent.learning_rate * top, tf.float32)
    keep, tv, l2 = (tf.constant(v, tf.float32) for v in (1.0 - ascent.decay, ascent.tv, ascent.l2))
    kernel = gaussian_kernel(ascent.blur_sigma)[:, :, None, None] * np.ones((1, 1, start.shape[-1], 1))
    kernel = tf.constant(kernel, tf.float32)
    warp = bool(ascent.scale or ascent.rotate)

    @tf.function(reduce_retracing=True)
    def step(x: tf.Tensor, shift: tf.Tensor, transform: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(x)
            seen = tf.roll(x, shift, axis=[1, 2])
            if warp:
                seen = tf.raw_ops.ImageProjectiveTransformV3(
                    images=seen,
                    transforms=tf.tile(transform[None], [tf.shape(x)[0], 1]),
                    output_shape=size,
                    fill_value=0.0,
                    interpolation="BILINEAR",
                    fill_mode="REFLECT",
                )
            unit = x / top
            penalty = tv * total_variation(unit) + l2 * tf.reduce_mean(unit * unit, axis=[1, 2, 3])
            objective = own_channel_means(forward(seen)) - penalty
        grads = tape.gradient(objective, x)  # image i moves only its own channel's objective
        grads /= tf.math.reduce_std(grads, axis=[1, 2, 3], keepdims=True) + 1e-8
        return tf.clip_by_value((x + step_size * grads) * keep, 0.0, top), objective

    @tf.function
    def blur(x: tf.Tensor) -> tf.Tensor:
        return tf.nn.depthwise_conv2d(x, kernel, strides=[1, 1, 1, 1], padding="SAME")

    before = own_channel_means(forward(x)).numpy()
    kept, best, curve, converged = x.numpy(), before, [], False
    for i in range(ascent.steps):
        shift, transform = random_shift(rng, ascent.jitter), random_affine(rng, ascent, start.shape[1:3])
        x, objective = step(x, tf.constant(shift, tf.int32), transform)
        curve.append(objective.numpy())
        if ascent.blur_every and (i + 1) % ascent.blur_every == 0:
            x = blur(x)
        if ascent.tolerance and ((i + 1) % ascent.window == 0 or i + 1 == ascent.steps):
            then, (kept, best) = best, keep_best(kept, best, x.numpy(), own_channel_means(forward(x)).numpy())
            if converged := (i + 1) % ascent.window == 0 and plateaued(then, best, ascent.tolerance):
                break
    if not ascent.tolerance:  # the fixed-step ascent: the inputs as the last step left them
        kept, best = x.numpy(), own_channel_means(forward(x)).numpy()
    return Climb(kept, before, best, np.asarray(curve).reshape(len(curve), len(before)), converged)


def keep_best(kept: np.ndarray, best: np.ndarray, x: np.ndarray, now: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per channel the better of the kept input (its activation ``best``) and the input ``x`` (``now``); a tie
    goes to ``x``."""
    better = now >= best
    return np.where(better.reshape(-1, *[1] * (x.ndim - 1)), x, kept), np.where(better, now, best)


@dataclass(frozen=True)
class LayerAscent:
    """A layer's activation maximization from one or more starts: per channel the input of its best start and
    that input's mean activation (``after``), the first start's activation ``before`` climbing, each start's
    activations (starts × channels), the first start's objective curve (steps × channels), the most steps a start
    ran, whether every start stopped on the plateau rule, and the ``matrix`` of every best input's mean activation
    of every channel (inputs × channels)."""

    x: np.ndarray
    before: np.ndarray
    after: np.ndarray
    achieved: np.ndarray
    curve: np.ndarray
    steps: int
    converged: bool
    matrix: np.ndarray


def maximize_layer(
    model: keras.Model, address: str, starts: Sequence[np.ndarray], top: float, ascent: Ascent
) -> LayerAscent:
    """:func:`climb` from each of ``starts`` (start k with seed ``ascent.seed + k``), then per channel the best."""
    from convlens.analysis.ascent import best_of_starts

    climbs = [climb(model, address, s, top, replace(ascent, seed=ascent.seed + k)) for k, s in enumerate(starts)]
    achieved = np.stack([c.after for c in climbs])
    x, after = best_of_starts([c.x for c in climbs], achieved)
    steps, converged = max(len(c.curve) for c in climbs), all(c.converged for c in climbs)
    first = climbs[0]
    return LayerAscent(
        x, first.before, after, achieved, first.curve, steps, converged, activation_matrix(model, address, x)
    )


def random_shift(rng: np.random.Generator, jitter: int) -> np.ndarray:
    """A random (dy, dx) of up to ``jitter`` pixels each (zeros without jitter: the generator is not drawn)."""
    return rng.integers(-jitter, jitter + 1, size=2) if jitter else np.zeros(2, np.int64)


def random_affine(rng: np.random.Generator, ascent: Ascent, size: tuple[int, int]) -> tf.Tensor:
    """One step's random zoom (1 ± ``scale``) and rotation (± ``rotate`` degrees) as tf's 8 transform numbers;
    the identity, without drawing, when both are 0."""
    scale = rng.uniform(1 - ascent.scale, 1 + ascent.scale) if ascent.scale else 1.0
    degrees = rng.uniform(-ascent.rotate, ascent.rotate) if ascent.rotate else 0.0
    return tf.constant(affine(scale, degrees, size), tf.float32)


def activation_matrix(model: keras.Model, address: str, x: np.ndarray) -> np.ndarray:
    """Every optimized input's mean activation of every channel (inputs × channels): the diagonal is each
    channel's own input, the rest what the other channels' inputs do to it."""
    return channel_means(forward_to(model, address)(tf.constant(x, tf.float32))).numpy()


def class_scores(model: keras.Model, address: str) -> tuple[keras.Model, bool]:
    """A model from ``model``'s input to [the output of the top-level layer ``address``, the class scores], and
    whether the scores are logits. Grad-CAM differentiates the score before the softmax (Selvaraju et al.): a
    last layer with a softmax activation is switched to linear (``model`` is changed: load it for this only);
    a last Softmax layer is left out.

    A loaded Sequential's layers hold the output of an earlier call besides the model's own graph, so its layers
    are called again on a new input: the feature maps and the scores then lie on one graph, as gradients need.
    """
    last = model.layers[-1]
    softmax = keras.activations.softmax
    skip_last = isinstance(last, keras.layers.Softmax) or (
        isinstance(last, keras.layers.Activation) and last.activation is softmax
    )
    logits = skip_last
    if not skip_last and getattr(last, "activation", None) is softmax:
        last.activation, logits = keras.activations.linear, True
    if isinstance(model, keras.Sequential):
        inputs = keras.Input(tuple(model.inputs[0].shape[1:]))
        maps, x = None, inputs
        for layer in model.layers[:-1] if skip_last else model.layers:
            x = layer(x)
            maps = x if layer.name == address else maps
        outputs = x
    else:
        inputs, maps = model.inputs[0], model.get_layer(address).output
        outputs = last.input if skip_last else model.outputs[0]
    if maps is None or len(maps.shape) != 4:
        raise ConvlensError(
            f"gradcam.layer {address!r} outputs shape {None if maps is None else tuple(maps.shape[1:])}, not H×W×C "
            "feature maps; choose a Conv2D or pooling layer of the model (null: the last conv layer)"
        )
    return keras.Model(inputs, [maps, outputs]), logits


def probabilities(scores: np.ndarray, logits: bool) -> np.ndarray:
    """Class probabilities from the class scores (softmax of logits)."""
    if not logits:
        return np.asarray(scores, np.float64)
    shifted = np.asarray(scores, np.float64) - np.max(scores, axis=-1, keepdims=True)
    return np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)


def class_probabilities(model: keras.Model, address: str, x: np.ndarray) -> tuple[keras.Model, np.ndarray]:
    """:func:`class_scores`' model for the layer at ``address``, and each image's class probabilities (images ×
    classes) for the batch ``x``."""
    scorer, logits = class_scores(model, address)
    return scorer, probabilities(np.asarray(scorer(x, training=False)[1]), logits)


def check_scorer_gradients(
    path: Path | None, scorer: keras.Model, address: str, x: np.ndarray, methods: Sequence[str]
) -> None:
    """Refuse, before any map, a model whose class score has no gradient with respect to the feature maps of the
    layer at ``address`` (Grad-CAM's), or with respect to the input when ``methods`` differentiate it
    (:data:`INPUT_GRADIENT_METHODS`); ``scorer`` (:func:`class_scores`, the user's layers) computed on ``x`` and one
    image more: a batch of another size than the samples', so that a model that computes one batch size only fails
    here, not halfway through."""
    batch = tf.constant(np.concatenate([x, x[:1]]), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(batch)
        maps, scores = scorer(batch, training=False)
        total = tf.reduce_sum(scores)  # any output's rank; whether a gradient exists depends on the graph only
    if tape.gradient(total, maps) is None:
        raise no_gradient(
            path,
            scorer,
            f"of the class score with respect to the feature maps of gradcam.layer {address!r}",
            "Grad-CAM needs it: choose a gradcam.layer after that layer, or make the layers from it to the scores "
            "float and differentiable",
        )
    pixel = [m for m in methods if m in INPUT_GRADIENT_METHODS]
    if pixel and tape.gradient(total, batch) is None:
        raise no_gradient(
            path,
            scorer,
            "of the class score with respect to the input",
            f"{', '.join(pixel)} need{'s' if len(pixel) == 1 else ''} it: leave {'it' if len(pixel) == 1 else 'them'} "
            "out of attribution.methods (occlusion needs no gradient), or "
            "make the layers from the input to the scores float and differentiable",
        )


def gradcam_maps(
    scores_model: keras.Model, x: np.ndarray, targets: list[np.ndarray], size: tuple[int, int]
) -> np.ndarray:
    """The Grad-CAM maps of the batch ``x`` (float32, images × targets × H × W, ``size`` = (H, W)): for each
    target, each image's map of its class in that target (``targets``: one class per image each)."""
    by_target = []
    for classes in targets:
        conv, grads, _ = feature_map_gradients(scores_model, x, classes)
        by_target.append([gradcam(c, d, size) for c, d in zip(conv, grads, strict=True)])
    return np.stack(by_target, axis=1).astype(np.float32)


def feature_map_gradients(
    scores_model: keras.Model, x: np.ndarray, classes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the batch ``x``: the layer's feature maps, the gradient of each image's score for its class in
    ``classes`` with respect to them, and all class scores."""
    x = tf.constant(x, tf.float32)
    with tf.GradientTape() as tape:
        maps, scores = scores_model(x, training=False)
        chosen = tf.gather(scores, tf.constant(classes, tf.int32), axis=1, batch_dims=1)
    grads = tape.gradient(chosen, maps)  # image i's score depends only on image i's maps
    return maps.numpy(), grads.numpy(), scores.numpy()
