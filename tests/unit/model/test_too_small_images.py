"""Images too small for a model whose input size is open (``keras.Input((None, None, 1))``; docs/robustness.md, the
row "images too small for a model of open input size"): a layer whose window is larger than its input gives an empty
output. Before, ``check_input`` passed any size for such a model, and what came next depended on the layer and the
engine: TensorFlow's eager convolution (the numpy pass's fallback, ``KerasNetwork``) returned a 2×2 map of numbers
from uninitialised memory (±1e36) for a 3×3 Conv2D on a 2×2 input, an AveragePooling2D an empty map, a MaxPooling2D an
``AbortedError`` from oneDNN, the Keras engine a line naming every Conv2D and "images of shape (None, None, 1)".

Now ``Archive.check_input`` (``fetch_model``, and each stage that computes the model) walks the model's chain from
its input layer (``layer_config.empty_output``) and refuses in one line naming the file, the layer, the image size
and the smallest size the model takes; where the walk does not know a layer (a DepthwiseConv2D, a SeparableConv2D, a
Cropping2D), the Keras networks ``forward.open_network`` returns refuse the images by Keras's shape inference before
computing anything, and so does ``gradcam``, which computes with Keras models of its own, before its first Keras call
(``forward.refuse_small_images``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convlens.errors import ConvlensError
from convlens.model.archive import Archive
from convlens.model.forward import open_network
from convlens.pipeline import paths
from convlens.pipeline.config import compose, declared_params, select
from tests.support.helpers import PIPELINE, configure, copy_project, foreach_items, one_line, stage_name


def _saved(folder: Path, name: str, layers: list) -> Path:
    from convlens.model.keras_models import keras

    model = keras.Sequential([keras.Input((None, None, 1)), *layers])
    path = folder / f"{name}.keras"
    model.save(path)
    return path


def _conv_after_pool(folder: Path) -> Path:
    """6×6 → Conv2D 3×3 → 4×4 → MaxPool 2 → 2×2 → Conv2D 3×3 → 0×0: images of 8×8 or more fit."""
    from convlens.model.keras_models import keras

    layers = keras.layers
    return _saved(
        folder,
        "conv",
        [
            layers.Conv2D(2, 3, name="c1"),
            layers.MaxPooling2D(2, name="p1"),
            layers.Conv2D(2, 3, name="c2"),
            layers.GlobalAveragePooling2D(name="g"),
            layers.Dense(3, name="d"),
        ],
    )


def _pool(kind: str):
    def make(folder: Path) -> Path:
        """6×6 → Conv2D 3×3 → 4×4 → a pool of 5 → 0×0: images of 7×7 or more fit."""
        from convlens.model.keras_models import keras

        layers = keras.layers
        pool = getattr(layers, kind)(5, name="p1")
        return _saved(
            folder,
            kind,
            [layers.Conv2D(2, 3, name="c1"), pool, layers.GlobalAveragePooling2D(name="g"), layers.Dense(3, name="d")],
        )

    return make


def _unknown(kind: str):
    def make(folder: Path) -> Path:
        """A layer the config walk does not know after Conv2D 3×3 → MaxPool 2: on 6×6 images it gets 2×2."""
        from convlens.model.keras_models import keras

        layers = keras.layers
        layer = {
            "DepthwiseConv2D": lambda: layers.DepthwiseConv2D(3, name="c2"),
            "SeparableConv2D": lambda: layers.SeparableConv2D(2, 3, name="c2"),
            "Cropping2D": lambda: layers.Cropping2D(2, name="c2"),
        }[kind]()
        return _saved(
            folder,
            kind,
            [layers.Conv2D(2, 3, name="c1"), layers.MaxPooling2D(2, name="p1"), layer, layers.GlobalMaxPooling2D()],
        )

    return make


# make, the layer at fault, its input and output on 6×6 images, the smallest side the model takes
STATIC = {
    "conv2d": (_conv_after_pool, "c2", "Conv2D", "2×2", "0×0×2", 8),
    "max-pooling": (_pool("MaxPooling2D"), "p1", "MaxPooling2D", "4×4", "0×0×2", 7),
    "average-pooling": (_pool("AveragePooling2D"), "p1", "AveragePooling2D", "4×4", "0×0×2", 7),
}


def _keras_shapes(path: Path, side: int) -> list[tuple]:
    """Each layer's output shape on side×side images by Keras's own shape inference (a ValueError where it refuses)."""
    from convlens.model.keras_models import keras, load_model

    model = load_model(path)
    spec = keras.KerasTensor((None, side, side, 1))
    return [tuple(keras.Model(model.inputs[0], layer.output).compute_output_spec(spec).shape) for layer in model.layers]


@pytest.mark.parametrize("case", list(STATIC))
def test_images_too_small_for_the_model_are_refused_from_its_config(tmp_path, case):
    make, layer, kind, gets, gives, side = STATIC[case]
    path = make(tmp_path)
    archive = Archive.read(path)
    with pytest.raises(ConvlensError) as err:
        archive.check_input((6, 6))
    assert one_line(err) == (
        f"{path}: images of 6×6 are too small for this model: its layer {layer!r} ({kind}) gets inputs of {gets} "
        f"and its output would be empty ({gives}); resize them to at least {side}×{side} "
        f"(-S data.resize=[{side},{side}]) or use another model"
    )
    assert archive.check_input((side, side, 1)) == (None, None, 1)
    with pytest.raises(ConvlensError, match=f"images of {side - 1}×{side - 1} are too small"):
        archive.check_input((side - 1, side - 1))
    # the smallest side is Keras's: every layer's output has a size at `side`, not one below it
    assert all(d is None or d > 0 for shape in _keras_shapes(path, side) for d in shape)
    try:
        smaller = _keras_shapes(path, side - 1)
    except ValueError:
        return
    assert any(d == 0 for shape in smaller for d in shape if d is not None), smaller


def test_only_the_too_small_side_is_grown(tmp_path):
    """9×6 images: the height fits, the width needs 8: resize to 9×8 (the height kept), which fits."""
    archive = Archive.read(_conv_after_pool(tmp_path))
    with pytest.raises(ConvlensError) as err:
        archive.check_input((9, 6, 1))
    assert "images of 9×6 are too small" in one_line(err), one_line(err)
    assert "gets inputs of 3×2 and its output would be empty (1×0×2); resize them to at least 9×8 (" in one_line(err)
    archive.check_input((9, 8, 1))


@pytest.mark.parametrize("engine", ["numpy", "keras"])
@pytest.mark.parametrize("kind", ["DepthwiseConv2D", "SeparableConv2D", "Cropping2D"])
def test_layers_the_walk_does_not_know_are_refused_by_the_keras_network(tmp_path, kind, engine):
    """Before: a DepthwiseConv2D or SeparableConv2D on 2×2 inputs gave 2×2 maps of uninitialised memory (the numpy
    pass's fallback, eager TensorFlow); now one line, before anything is computed, and 8×8 images compute."""
    path = _unknown(kind)(tmp_path)
    archive = Archive.read(path)
    archive.check_input((6, 6))  # the walk stops at the layer it does not know: nothing decided there
    network = open_network(archive, ["c2"], lambda line: None, engine)
    x = np.random.default_rng(0).uniform(0, 1, (2, 6, 6)).astype(np.float32)
    with pytest.raises(ConvlensError) as err:
        network.activations(x, ["c2"])
    side = 12 if kind == "Cropping2D" else 8  # a crop of 2 on each side needs 5×5 inputs: 12×12 images
    assert one_line(err) == (
        f"{path}: images of 6×6 are too small for this model: its layer 'c2' would give an empty output (Keras's "
        f"shape inference); resize them to at least {side}×{side} (-S data.resize=[{side},{side}]) or use another model"
    )
    big = np.random.default_rng(0).uniform(0, 1, (2, side, side)).astype(np.float32)
    (maps,) = network.activations(big, ["c2"])
    assert maps.shape[1:3] == (1, 1) and np.isfinite(maps).all()


def test_fetch_model_refuses_the_users_model_for_images_too_small(tmp_path, tiny_assets, monkeypatch):
    """The tiny data's 28×28 images through 5×5 valid convolutions and pools: 24, 12, 8, 4, then 0."""
    from convlens.model.keras_models import keras

    layers = keras.layers
    user = _saved(
        tmp_path,
        "deep",
        [
            layers.Conv2D(2, 5, name="conv2d"),
            layers.MaxPooling2D(2, name="max_pooling2d"),
            layers.Conv2D(2, 5, name="conv2d_1"),
            layers.MaxPooling2D(2, name="max_pooling2d_1"),
            layers.Conv2D(2, 5, name="conv2d_2"),
            layers.GlobalAveragePooling2D(name="gap"),
            layers.Dense(10, activation="softmax", name="dense"),
        ],
    )
    monkeypatch.setenv("CONVLENS_MIRROR", str(tiny_assets["mirror"]))
    root = copy_project(tmp_path / "project")
    configure(root, str(user), tiny_assets["sums"])
    composed = compose(root)
    names = [stage_name(m) for m in PIPELINE]
    for module in PIPELINE[: names.index("fetch_model")]:
        for item in foreach_items(module, composed):
            module.run(select(composed, declared_params(root, stage_name(module))), root, *([item] if item else []))
    fetch_model = PIPELINE[names.index("fetch_model")]
    with pytest.raises(ConvlensError) as err:
        fetch_model.run(select(composed, declared_params(root, "fetch_model")), root)
    assert one_line(err) == (
        f"{user}: images of 28×28 are too small for this model: its layer 'conv2d_2' (Conv2D) gets inputs of 4×4 and "
        "its output would be empty (0×0×2); resize them to at least 32×32 (-S data.resize=[32,32]) or use another "
        "model"
    )
    assert not paths.model_path(root, "trained").exists()


def _window_past_the_images(kind: str):
    def make(folder: Path) -> Path:
        """28×28 → Conv2D 3×3 → 26×26 → two pools of 2 → 6×6 → a 7×7 window (which the config walk does not
        decide) → empty; then a head of 10 classes: images of 30×30 or more fit."""
        from convlens.model.keras_models import keras

        layers = keras.layers
        window = {
            "DepthwiseConv2D": lambda: layers.DepthwiseConv2D(7, name="c2"),
            "SeparableConv2D": lambda: layers.SeparableConv2D(2, 7, name="c2"),
        }[kind]()
        keras.utils.set_random_seed(0)
        return _saved(
            folder,
            kind,
            [
                layers.Conv2D(2, 3, activation="relu", name="c1"),
                layers.MaxPooling2D(2, name="p1"),
                layers.MaxPooling2D(2, name="p2"),
                window,
                layers.GlobalMaxPooling2D(name="g"),
                layers.Dense(10, activation="softmax", name="dense"),
            ],
        )

    return make


def _outputs(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in (root / "outputs").rglob("*"))


@pytest.mark.parametrize("kind", ["DepthwiseConv2D", "SeparableConv2D"])
def test_the_keras_computing_stages_refuse_images_too_small_for_a_layer_the_walk_does_not_know(
    tmp_path, tiny_assets, monkeypatch, kind
):
    """gradcam computes with Keras models of its own (no ``SizeGuard``): before, TensorFlow's eager depthwise
    convolution on 6×6 inputs with a 7×7 window gave maps from uninitialised memory, written as the model's; now the
    line, before the first Keras call, and nothing written. activation_max climbs such a model at the images' size:
    the same line."""
    from tests.unit.model.test_keras_compute_errors import _stage, _stage_project

    root, _ = _stage_project(tmp_path, tiny_assets, monkeypatch, _window_past_the_images(kind)(tmp_path))
    before, model = _outputs(root), paths.model_path(root, "trained")
    for name, item, says in (
        (
            "gradcam",
            paths.ATTRIBUTION,
            f"{model}: images of 28×28 are too small for this model: its layer 'c2' would give an empty output "
            "(Keras's shape inference); resize them to at least 30×30 (-S data.resize=[30,30]) or use another model",
        ),
        (
            "activation_max",
            "trained",
            f"{model.relative_to(root)}: images of 28×28 are too small for this model: its layer 'c2' would give an "
            "empty output (Keras's shape inference); resize them to at least 30×30 (-S data.resize=[30,30]) or use "
            "another model",
        ),
    ):
        module, cfg = _stage(root, name, [])
        with pytest.raises(ConvlensError) as err:
            module.run(cfg, root, item)
            pytest.fail(f"{name} ran")
        assert one_line(err) == says, (name, one_line(err))
        assert _outputs(root) == before, name


def test_the_refusal_gradcam_calls_passes_the_smallest_size_it_names_and_skips_a_fixed_size(tmp_path):
    from convlens.model.forward import refuse_small_images
    from convlens.model.keras_models import keras, load_model

    path = _window_past_the_images("SeparableConv2D")(tmp_path)
    model, open_axes = load_model(path), (True, True, False)
    refuse_small_images(model, path, (30, 30, 1), open_axes)  # the size the line names fits
    refuse_small_images(model, path, (40, 31, 1), open_axes)
    with pytest.raises(ConvlensError, match=r"images of 30×29 are too small .* at least 30×30 "):
        refuse_small_images(model, path, (30, 29, 1), open_axes)
    fixed = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.DepthwiseConv2D(3, name="c2")])
    refuse_small_images(fixed, path, (2, 2, 1), (False, False, False))  # fixed size: Archive.check_input decides
