"""TensorFlow's grappler prints "remapper failed" as a C++ error line for a Conv2D → LeakyReLU feeding an Add when a
gradient is traced, in runs whose numbers are right; convlens starts TensorFlow without it (outside tester 3,
finding 17)."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import sys
import numpy as np
from convlens.model.keras_models import keras, tf
L = keras.layers
inp = keras.Input((37, 45, 3))
stem = L.Conv2D(16, 3, strides=2, padding="same", name="stem")(L.Rescaling(1 / 255)(inp))
r = L.ReLU(name="relu")(L.BatchNormalization(name="bn")(stem))
k = L.LeakyReLU(name="leaky")(L.Conv2D(16, 3, padding="same", name="b1")(r))
a = L.Add(name="add")([r, k])
c = L.Concatenate(name="cat")([L.DepthwiseConv2D(3, padding="same", name="dw")(a),
                               L.SeparableConv2D(8, 3, padding="same", activation="relu", name="sep")(a)])
z = L.AveragePooling2D(2)(L.LayerNormalization(name="ln")(c))
z = L.Conv2D(24, 3, strides=2, padding="same", activation="relu", name="last")(z)
keras.Model(inp, L.Dense(4)(L.GlobalAveragePooling2D()(z))).save(sys.argv[1])
m = keras.models.load_model(sys.argv[1])
sub = keras.Model(m.inputs[0], m.get_layer("last").output)
x = tf.constant(np.random.default_rng(0).uniform(0, 255, size=(2, 37, 45, 3)).astype(np.float32))

@tf.function
def grad(x):
    with tf.GradientTape() as t:
        t.watch(x)
        out = tf.reduce_mean(sub(x, training=False), axis=[1, 2, 3])
    return t.gradient(out, x)

print(grad(x).shape)
"""


def test_a_leaky_relu_gradient_prints_no_grappler_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "m.keras")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "(2, 37, 45, 3)" in done.stdout
    assert "remapper failed" not in done.stderr and "meta_optimizer" not in done.stderr, done.stderr
