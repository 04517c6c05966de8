"""Receptive fields of a branching (Functional, Add) model in the report's table and the dataset examples: the
layers before the first fork are exact, as for a chain; after it none is claimed (outside tester 3, finding 1)."""

from __future__ import annotations

import numpy as np

from convlens.model.archive import Archive


def branching_model(path):
    """Input 12×12×3 → stem 3×3 conv → two branches (3×3 and 5×5 'same' convs) → Add → 3×3 conv."""
    from convlens.model.keras_models import keras

    inputs = keras.Input((12, 12, 3))
    stem = keras.layers.Conv2D(4, 3, name="stem")(inputs)
    relu = keras.layers.ReLU(name="stem_relu")(stem)
    a = keras.layers.Conv2D(4, 3, padding="same", name="a")(relu)
    b = keras.layers.Conv2D(4, 5, padding="same", name="b")(relu)
    merged = keras.layers.Add(name="add")([a, b])
    out = keras.layers.Conv2D(2, 3, name="head")(merged)
    model = keras.Model(inputs, out)
    model.save(path)
    return model


def changed_units(model, layer: str, row: int, column: int) -> set[tuple[int, int]]:
    """The (row, column) positions of ``layer``'s map that change when input pixel (row, column) changes."""
    from convlens.model.keras_models import keras

    probe = keras.Model(model.inputs, model.get_layer(layer).output)
    image = np.random.default_rng(0).random((1, 12, 12, 3)).astype(np.float32)
    moved = image.copy()
    moved[0, row, column] += 10.0
    diff = np.abs(np.asarray(probe(moved)) - np.asarray(probe(image))).max(axis=-1)[0]
    return {(int(r), int(c)) for r, c in zip(*np.nonzero(diff > 1e-6), strict=True)}


def test_a_branching_models_stem_has_its_exact_field_and_merged_layers_none(tmp_path):
    from convlens.report.summary import layer_fields, output_shapes

    model = branching_model(tmp_path / "branch.keras")
    archive = Archive.read(tmp_path / "branch.keras")
    fields = layer_fields(archive, bool(output_shapes(archive)))
    for name in ("stem", "stem_relu"):
        field = fields[name]
        assert field.size == (3, 3) and not field.whole
        # the boxes agree with Keras: input pixel (5, 7) moves exactly the positions whose box holds it
        seen = {
            (r, c)
            for r in range(10)
            for c in range(10)
            if (box := field.box(r, c, (12, 12)))[0] <= 5 < box[2] and box[1] <= 7 < box[3]
        }
        assert seen == changed_units(model, name, 5, 7)
    assert all(name not in fields for name in ("a", "b", "add", "head"))
