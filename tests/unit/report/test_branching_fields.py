"""Receptive fields of a branching (Functional, Add, Concatenate) model in the report's table and the dataset
examples, through the model's graph: every layer's boxes are the input pixels Keras's outputs depend on (outside
tester 3, finding 1: every layer's patch was the whole image); a layer kind whose window is not known has none."""

from __future__ import annotations

import numpy as np
import pytest

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
    """The (row, column) positions of ``layer``'s map that change when input pixel (row, column) changes, up or
    down by far more than the image's values (so that a ReLU on the way cannot hide the change both times)."""
    from convlens.model.keras_models import keras

    probe = keras.Model(model.inputs[0], model.get_layer(layer).output)
    image = np.random.default_rng(0).random((1, 12, 12, 3)).astype(np.float32)
    changed = set()
    for step in (1000.0, -1000.0):
        moved = image.copy()
        moved[0, row, column] += step
        diff = np.abs(np.asarray(probe(moved)) - np.asarray(probe(image))).max(axis=-1)[0]
        changed |= {(int(r), int(c)) for r, c in zip(*np.nonzero(diff > 1e-6), strict=True)}
    return changed


def seen_by(field, rows: int, columns: int, pixel: tuple[int, int]) -> set[tuple[int, int]]:
    """The positions of a ``rows`` × ``columns`` map whose box holds input ``pixel``."""
    return {
        (r, c)
        for r in range(rows)
        for c in range(columns)
        if (box := field.box(r, c, (12, 12)))[0] <= pixel[0] < box[2] and box[1] <= pixel[1] < box[3]
    }


@pytest.mark.parametrize("pixel", [(5, 7), (0, 0), (11, 3)])
def test_every_layer_of_a_branching_model_has_the_field_keras_computes_with(tmp_path, pixel):
    from convlens.report.summary import layer_fields, output_shapes

    model = branching_model(tmp_path / "branch.keras")
    archive = Archive.read(tmp_path / "branch.keras")
    assert not output_shapes(archive)  # the numpy pass does not compute it: the graph walk gives the fields
    fields = layer_fields(archive, False)
    assert fields["stem"].size == (3, 3) and fields["add"].size == (7, 7) and fields["head"].size == (9, 9)
    for name in ("stem", "stem_relu", "a", "b", "add", "head"):
        rows, columns = model.get_layer(name).output.shape[1:3]
        assert seen_by(fields[name], rows, columns, pixel) == changed_units(model, name, *pixel), name


def test_a_concatenation_of_branches_sees_what_either_sees_and_an_unknown_kind_ends_the_fields(tmp_path):
    from convlens.model.keras_models import keras
    from convlens.report.summary import layer_fields

    inputs = keras.Input((12, 12, 3))
    a = keras.layers.Conv2D(2, 3, name="a")(inputs)  # 10×10
    b = keras.layers.Conv2D(2, 3, name="b")(keras.layers.Conv2D(2, 1, name="b0")(inputs))
    cat = keras.layers.Concatenate(name="cat")([a, b])
    padded = keras.layers.ZeroPadding2D(1, name="pad")(cat)  # a window convlens does not follow
    out = keras.layers.Conv2D(2, 3, name="after")(padded)
    model = keras.Model(inputs, out)
    model.save(tmp_path / "cat.keras")
    fields = layer_fields(Archive.read(tmp_path / "cat.keras"), False)
    assert seen_by(fields["cat"], 10, 10, (4, 4)) == changed_units(model, "cat", 4, 4)
    assert "pad" not in fields and "after" not in fields  # not known, never the whole image


def model_table(root, model_file):
    """The report's model table of ``model_file`` as the trained model of the project at ``root``."""
    import shutil

    import yaml

    from convlens.pipeline import paths
    from convlens.report.build import Report
    from convlens.report.pages import Strings
    from tests.support.helpers import PROJECT

    paths.model_path(root, "trained").parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(model_file, paths.model_path(root, "trained"))
    params = yaml.safe_load((PROJECT / "params.yaml").read_text(encoding="utf-8"))
    [table] = Report(root, params, Strings("en")).model().blocks
    return table


def test_the_model_tables_caption_says_where_shapes_come_from_and_when_there_are_none(tmp_path):
    """outside tester 3 #6: a branching model's table had no shape yet its caption claimed the numpy pass. Its
    shapes now follow the graph, as Keras computes them, and the caption says so; a model whose graph starts with a
    nested one has none, and its caption says that."""
    from convlens.model.keras_models import keras

    model = branching_model(tmp_path / "branch.keras")
    table = model_table(tmp_path, tmp_path / "branch.keras")
    assert "output shapes follow the model's graph" in table.caption
    assert "from the numpy forward pass" not in table.caption and "No output shapes" not in table.caption
    shapes = {row[1]: row[3] for row in table.rows}
    for layer in ("stem", "stem_relu", "a", "b", "add", "head"):
        assert shapes[layer] == str(tuple(model.get_layer(layer).output.shape)), layer
    fields = {row[1]: row[4] for row in table.rows}
    assert fields["stem"] == "3×3" and fields["add"] == "7×7" and fields["head"] == "9×9"

    inputs = keras.Input((12, 12, 3))
    nested = keras.Sequential([keras.Input((12, 12, 3)), keras.layers.Conv2D(4, 3)], name="block")
    keras.Model(inputs, keras.layers.Conv2D(2, 3, name="head")(nested(inputs))).save(tmp_path / "nested.keras")
    table = model_table(tmp_path, tmp_path / "nested.keras")
    assert "No output shapes: the numpy forward pass does not compute this model, and its graph gives none" in (
        table.caption
    )
    assert {row[3] for row in table.rows[:-1]} == {"–"}
