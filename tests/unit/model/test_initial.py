"""The untrained baseline without TensorFlow (issue 25 §4): Keras's initialisation replayed in numpy.

Every expected value comes from Keras itself (``tf.random.stateless_uniform``, ``load_with_untrained_model``), never
from convlens's replay; a model the replay does not cover must still be built, by Keras.
"""

from __future__ import annotations

import copy
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from convlens.model.archive import Archive
from convlens.model.initial import stateless_uniform, untrained_variables, write_untrained
from tests.support.helpers import MIRROR, PROJECT, tiny_model


@pytest.fixture(scope="module")
def keras():
    from convlens.model.keras_models import keras

    return keras


def save(model, path: Path) -> Path:
    model.save(path)
    return path


def assert_built_as_keras_builds(path: Path, seed: int, tmp_path: Path) -> str:
    """``write_untrained``'s archive loads in Keras with exactly the weights Keras's own clone gets."""
    from convlens.model.keras_models import load_model, load_with_untrained_model

    how = write_untrained(Archive.read(path), seed, tmp_path / "untrained.keras")
    _, expected = load_with_untrained_model(path, seed)
    built = load_model(tmp_path / "untrained.keras")
    assert [layer.name for layer in built.layers] == [layer.name for layer in expected.layers]
    for mine, theirs in zip(built.layers, expected.layers, strict=True):
        got, want = mine.get_weights(), theirs.get_weights()
        assert len(got) == len(want), mine.name
        for g, w in zip(got, want, strict=True):
            assert g.dtype == w.dtype and np.array_equal(g, w), f"{mine.name}: {np.abs(g - w).max()}"
    return how


@pytest.mark.parametrize(
    ("shape", "low", "high", "seed"),
    [((3, 3, 1, 32), -0.2, 0.2, 262950629), ((7,), 0.0, 1.0, 1), ((5, 3), -1.0, 2.5, 2**31 + 5), ((2, 2, 3), -3, 3, 0)],
)
def test_the_stateless_uniform_is_tensorflows_bit_for_bit(keras, shape, low, high, seed):
    """Sizes that are not a multiple of Philox's four draws, and a seed past int32 (Keras folds it)."""
    want = np.asarray(keras.random.uniform(shape, minval=low, maxval=high, seed=seed))
    got = stateless_uniform(shape, low, high, seed)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.array_equal(got, want)


@pytest.mark.parametrize("seed", [42, 7])
def test_the_books_architecture_scaled_down_is_built_as_keras_builds_it(keras, tmp_path, seed):
    path = save(tiny_model(), tmp_path / "trained.keras")
    how = assert_built_as_keras_builds(path, seed, tmp_path)
    assert how == "Keras's initializers replayed in numpy"


def test_every_replayed_layer_and_initializer(keras, tmp_path):
    """Seeded and unseeded initializers, dropouts with and without a rate (only a rate takes a seed), batch
    normalization, a layer with no bias, and an adapted Normalization, whose statistics the clone keeps."""
    layers, init = keras.layers, keras.initializers
    keras.utils.set_random_seed(0)
    normalization = layers.Normalization()
    normalization.adapt(np.random.default_rng(0).random((16, 8, 8, 3)).astype(np.float32))
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            normalization,
            layers.Conv2D(4, 3, kernel_initializer="he_uniform", bias_initializer=init.RandomUniform(seed=5)),
            layers.BatchNormalization(),
            layers.Dropout(0.0),
            layers.SpatialDropout2D(0.2),
            layers.MaxPooling2D(),
            layers.Conv2D(2, 3, use_bias=False, kernel_initializer=init.RandomUniform(-1.0, 2.0)),
            layers.GlobalAveragePooling2D(),
            layers.Dense(5, kernel_initializer="lecun_uniform", bias_initializer=init.Constant(0.5)),
            layers.GaussianNoise(0.1),
            layers.GaussianDropout(0.2),
            layers.Dense(3, kernel_initializer=init.VarianceScaling(2.0, "fan_out", "uniform")),
            layers.Dense(2, kernel_initializer=init.GlorotUniform(seed=11)),
        ]
    )
    path = save(model, tmp_path / "trained.keras")
    assert assert_built_as_keras_builds(path, 3, tmp_path) == "Keras's initializers replayed in numpy"
    stored = Archive.read(tmp_path / "untrained.keras").weights(["normalization"])["normalization"]
    assert np.array_equal(stored[0], np.asarray(normalization.mean).reshape(-1))


def test_a_functional_chain(keras, tmp_path):
    """Keras loads and clones a Functional model layer by layer in graph order: a chain replays like a Sequential."""
    layers = keras.layers
    x = keras.Input((8, 8, 1))
    y = layers.Conv2D(2, 3, padding="same", name="c1")(x)
    y = layers.Conv2D(3, 3, padding="same", name="c2")(layers.Dropout(0.2)(y))
    model = keras.Model(x, layers.Dense(3, name="out")(layers.Flatten()(layers.MaxPooling2D()(y))))
    path = save(model, tmp_path / "trained.keras")
    assert assert_built_as_keras_builds(path, 5, tmp_path) == "Keras's initializers replayed in numpy"


def test_a_branching_model_needs_keras_anyway_so_keras_builds_it(keras, tmp_path):
    layers = keras.layers
    x = keras.Input((8, 8, 1))
    a = layers.Conv2D(2, 3, padding="same", name="c1")(x)
    joined = layers.Concatenate(name="join")([a, layers.Conv2D(2, 1, name="side")(x)])
    model = keras.Model(x, layers.Dense(3, name="out")(layers.Flatten()(joined)))
    path = save(model, tmp_path / "trained.keras")
    how = assert_built_as_keras_builds(path, 5, tmp_path)
    assert how == "by Keras: layer 'side', which does not simply follow 'c1' is not replayed in numpy"


def test_a_model_the_replay_does_not_cover_is_built_by_keras_and_says_why(keras, tmp_path):
    layers = keras.layers
    model = keras.Sequential(
        [keras.Input((6, 6, 1)), layers.Conv2D(3, 3, kernel_initializer="he_normal", name="c"), layers.Flatten()]
    )
    path = save(model, tmp_path / "trained.keras")
    how = assert_built_as_keras_builds(path, 9, tmp_path)
    assert how == "by Keras: kernel_initializer HeNormal of layer 'c' is not replayed in numpy"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda c: c.update(class_name="Custom"), "a Custom model"),
        (lambda c: c["config"]["layers"][1].update(class_name="LocallyConnected"), "of class LocallyConnected"),
        (lambda c: c["config"]["layers"][1]["config"].update(dtype="mixed_float16"), "with dtype 'mixed_float16'"),
        (lambda c: c["config"]["layers"][1]["config"]["kernel_initializer"]["config"].update(seed="x"), "seed 'x'"),
        (lambda c: c["config"]["layers"][1]["config"].update(bias_initializer="orthogonal"), "'orthogonal'"),
        (
            lambda c: c["config"]["layers"][1]["config"].update(
                kernel_initializer={"class_name": "RandomUniform", "config": {"minval": "-1", "maxval": 1}}
            ),
            "RandomUniform with minval '-1'",
        ),
        (
            lambda c: c["config"]["layers"][1]["config"].update(
                kernel_initializer={"class_name": "Constant", "config": {"value": float("nan")}}
            ),
            "Constant with value nan",
        ),
        (
            lambda c: c["config"]["layers"][1]["config"].update(
                kernel_initializer={"class_name": "Constant", "config": {"value": 1e39}}
            ),
            "Constant with value 1e+39",  # past float32: Keras would fill the kernel with inf
        ),
        (
            lambda c: c["config"]["layers"].insert(2, {"class_name": "Dropout", "config": {"name": "d", "rate": 1.5}}),
            "layer 'd' of class Dropout with rate 1.5",
        ),
    ],
)
def test_what_the_replay_refuses_it_names(keras, tmp_path, change, reason):
    path = save(tiny_model(), tmp_path / "trained.keras")
    archive = Archive.read(path)
    weights = archive.weights(["conv2d", "conv2d_1", "dense"])
    config = copy.deepcopy(archive.config)
    change(config)
    found = untrained_variables(config, weights, 1)
    assert isinstance(found, str) and reason in found


def test_the_same_seed_gives_the_same_bytes_and_tensorflow_never_starts(keras, tmp_path):
    path = save(tiny_model(), tmp_path / "trained.keras")
    probe = (
        "import sys; from pathlib import Path; from convlens.model.archive import Archive; "
        "from convlens.model.initial import write_untrained; "
        f"print(write_untrained(Archive.read(Path({str(path)!r})), 42, Path(sys.argv[1]))); "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    digests = []
    for name in ("a.keras", "b.keras"):
        done = subprocess.run(
            [sys.executable, "-c", probe, str(tmp_path / name)], cwd=PROJECT, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["Keras's initializers replayed in numpy", "False False"]
        digests.append(hashlib.sha256((tmp_path / name).read_bytes()).hexdigest())
    assert digests[0] == digests[1]


@pytest.mark.skipif(not (MIRROR / "best-cnn-model.keras").exists(), reason="the book's model is not in the mirror")
@pytest.mark.parametrize("seed", [42, 1234567])
def test_the_books_untrained_baseline_is_kerass(keras, tmp_path, seed):
    how = assert_built_as_keras_builds(MIRROR / "best-cnn-model.keras", seed, tmp_path)
    assert how == "Keras's initializers replayed in numpy"
