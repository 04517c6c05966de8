"""Gradient-based views of a model, the TensorFlow half: activation maximization (gradient ascent on the
input) and the feature maps and gradients Grad-CAM needs. The arithmetic on the results is in ``attribution``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from convlens.analysis.attribution import gaussian_kernel, gradcam
from convlens.errors import ConvlensError
from convlens.model.keras_models import keras, layer_output, tf

GRAY = 0.5  # the ascent starts from mid-gray…
NOISE = 0.2  # …plus Gaussian noise of this std, both as fractions of the input range (clipped to it)


@dataclass(frozen=True)
class Ascent:
    """How activation maximization climbs (``activation_max.*``; see conf/activation_max/default.yaml)."""

    steps: int
    learning_rate: float  # each step moves the input by this fraction of its range (rms over its pixels)
    jitter: int  # each step looks at the input shifted by up to this many pixels (robust, less noisy patterns)
    blur_every: int  # a Gaussian blur every this many steps (0: never)
    blur_sigma: float  # the blur's sigma, in pixels
    decay: float  # each step x ← (1 − decay)·x: pixels no channel needs fade to 0 (the background)
    seed: int


def forward_to(model: keras.Model, address: str) -> Callable[[tf.Tensor], tf.Tensor]:
    """The function from the model's input to the output of the layer at ``address`` (inference mode)."""
    parts = layer_output(model, address)

    def forward(x: tf.Tensor) -> tf.Tensor:
        for part in parts:
            x = part(x, training=False)
        return x

    return forward


def own_channel_means(activations: tf.Tensor) -> tf.Tensor:
    """Image i's mean activation of channel i (a batch of as many images as channels): the spatial mean of
    each channel (the value of a Dense unit), then the diagonal of images × channels."""
    axes = list(range(1, len(activations.shape) - 1))
    means = tf.reduce_mean(activations, axis=axes) if axes else activations
    return tf.linalg.diag_part(means)


def maximize_channels(
    model: keras.Model, address: str, input_shape: tuple[int, ...], top: float, ascent: Ascent
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every channel of the layer at ``address``, the input (in the model's input space, each value in
    0..``top``) that maximizes the channel's mean activation: all channels at once, input i for channel i,
    by normalized gradient ascent from seeded gray noise with jitter, blur and decay.

    ``input_shape`` is the model's (H, W, C): a colour model's (H, W, 3) inputs start from noise drawn for each
    colour and climb on each colour's own gradient (the blur is per colour too).

    Returns the inputs (channels × ``input_shape``) and each channel's mean activation for its input before
    and after the ascent (without jitter).
    """
    forward = forward_to(model, address)
    channels = int(forward(tf.zeros((1, *input_shape))).shape[-1])
    rng = np.random.default_rng(ascent.seed)
    start = top * np.clip(GRAY + NOISE * rng.standard_normal((channels, *input_shape)), 0, 1)
    x = tf.constant(start, tf.float32)
    step_size = tf.constant(ascent.learning_rate * top, tf.float32)
    keep = tf.constant(1.0 - ascent.decay, tf.float32)
    kernel = gaussian_kernel(ascent.blur_sigma)[:, :, None, None] * np.ones((1, 1, input_shape[-1], 1))
    kernel = tf.constant(kernel, tf.float32)

    @tf.function(reduce_retracing=True)
    def step(x: tf.Tensor, shift: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch(x)
            objective = own_channel_means(forward(tf.roll(x, shift, axis=[1, 2])))
        grads = tape.gradient(objective, x)  # image i moves only its own channel's objective
        grads /= tf.math.reduce_std(grads, axis=list(range(1, len(input_shape) + 1)), keepdims=True) + 1e-8
        return tf.clip_by_value((x + step_size * grads) * keep, 0.0, top)

    @tf.function
    def blur(x: tf.Tensor) -> tf.Tensor:
        return tf.nn.depthwise_conv2d(x, kernel, strides=[1, 1, 1, 1], padding="SAME")

    before = own_channel_means(forward(x)).numpy()
    for i in range(ascent.steps):
        shift = rng.integers(-ascent.jitter, ascent.jitter + 1, size=2) if ascent.jitter else np.zeros(2)
        x = step(x, tf.constant(shift, tf.int32))
        if ascent.blur_every and (i + 1) % ascent.blur_every == 0:
            x = blur(x)
    after = own_channel_means(forward(x)).numpy()
    return x.numpy(), before, after


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
