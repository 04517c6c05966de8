"""``computed_by_keras`` (docs/robustness.md, the hostile forward-pass row) turns what Keras or TensorFlow raise for a
model they cannot compute into one line naming the user's file; convlens's own numpy steps run inside the same blocks
(``gradcam``'s ``sample_maps`` and ``sanity_pass``, ``activation_max``'s ascent). Before, a ValueError, IndexError or
TypeError from a bug in convlens's code there read "…: Keras cannot compute this model (…)", the user's model blamed;
now it propagates as itself (``keras_models.raised_by_keras``), and what Keras raises in the same block is still the
line. The bugs are injected by replacing a convlens function called inside the block.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convlens.errors import ConvlensError
from convlens.pipeline import paths
from tests.support.helpers import one_line
from tests.unit.model.test_keras_compute_errors import _stage, _stage_project


def _outputs(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in (root / "outputs").rglob("*"))


def _bug(kind: type[Exception]):
    def raises(*args, **kwargs):
        raise kind("a bug in convlens's own step")

    return raises


def _keras_refuses(method, scorer, x, *rest):
    """A pixel method whose Keras call gets images of another height than the model's: Keras raises (Dense's input
    check), inside ``sample_maps``' guarded block."""
    return np.asarray(scorer(x[:, :5], training=False)[1])


def test_the_guard_converts_what_keras_raises_and_passes_numpys_errors_through(tmp_path):
    from convlens.model.keras_models import computed_by_keras, keras, raised_by_keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, name="d")])
    with pytest.raises(ValueError, match="negative dimensions") as err, computed_by_keras(tmp_path / "m.keras", model):
        np.zeros(-1)  # numpy's C code: the innermost frame is this test's
    assert not raised_by_keras(err.value)
    with pytest.raises(ValueError, match="need at least one array") as err, computed_by_keras(None, model):
        np.stack([])  # numpy's Python code
    assert not raised_by_keras(err.value)
    with pytest.raises(ConvlensError) as err, computed_by_keras(tmp_path / "m.keras", model):
        model(np.zeros((1, 4), np.float32))
    assert one_line(err).startswith(f"{tmp_path / 'm.keras'}: Keras cannot compute this model at layer 'd' ("), err
    with pytest.raises(ConvlensError, match="Keras cannot compute this model"), computed_by_keras(None, model):
        keras.ops.reshape(np.zeros(4, np.float32), (3,))  # TensorFlow's op error


BUGS = {  # where in gradcam, the convlens function replaced, its error
    "sample_maps": ("convlens.analysis.sanity.heat", ValueError),
    "sanity_pass": ("convlens.analysis.sanity.removal_order", IndexError),
    "sanity-deletion": ("convlens.analysis.sanity.delete_pixels", TypeError),
}


@pytest.mark.parametrize("case", list(BUGS))
def test_a_bug_in_gradcams_own_steps_is_not_blamed_on_the_model(tmp_path, tiny_assets, monkeypatch, case):
    target, kind = BUGS[case]
    root, _ = _stage_project(tmp_path, tiny_assets, monkeypatch, tiny_assets["model"])
    before = _outputs(root)
    module, cfg = _stage(root, "gradcam", [])
    monkeypatch.setattr(target, _bug(kind))
    with pytest.raises(kind, match="a bug in convlens's own step"):
        module.run(cfg, root, paths.ATTRIBUTION)
    assert _outputs(root) == before


def test_what_keras_raises_in_the_maps_block_is_still_the_line(tmp_path, tiny_assets, monkeypatch):
    root, _ = _stage_project(tmp_path, tiny_assets, monkeypatch, tiny_assets["model"])
    before = _outputs(root)
    module, cfg = _stage(root, "gradcam", [])
    monkeypatch.setattr("convlens.analysis.sanity.method_maps", _keras_refuses)
    with pytest.raises(ConvlensError) as err:
        module.run(cfg, root, paths.ATTRIBUTION)
    line = one_line(err)
    assert line.startswith(f"{paths.model_path(root, 'trained')}: Keras cannot compute this model at layer "), line
    assert line.endswith("any number at a time, or use another one"), line
    assert _outputs(root) == before


ASCENT_BUGS = {  # the convlens function replaced: called between the ascent's Keras calls, or traced with them
    "eager": "convlens.analysis.gradients.random_shift",
    "traced": "convlens.analysis.gradients.total_variation",  # in the step's tf.function: "in user code: …"
}


@pytest.mark.parametrize("case", list(ASCENT_BUGS))
def test_a_bug_in_the_ascents_own_steps_is_not_blamed_on_the_model(tmp_path, tiny_assets, monkeypatch, case):
    root, _ = _stage_project(tmp_path, tiny_assets, monkeypatch, tiny_assets["model"])
    module, cfg = _stage(root, "dataset", [])  # what activation_max reads
    module.run(cfg, root, "trained")
    before = _outputs(root)
    module, cfg = _stage(root, "activation_max", ["activation_max.steps=2", "activation_max.starts=1"])
    monkeypatch.setattr(ASCENT_BUGS[case], _bug(ValueError))
    with pytest.raises(ValueError, match="a bug in convlens's own step") as err:
        module.run(cfg, root, "trained")
    assert not isinstance(err.value, ConvlensError)
    assert str(err.value).startswith("in user code:") == (case == "traced"), err.value  # TensorFlow's trace said it
    assert _outputs(root) == before
