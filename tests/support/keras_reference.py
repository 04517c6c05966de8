"""Keras itself, as the reference the numpy forward pass and the archive reader are checked against (tests only)."""

from __future__ import annotations

from collections.abc import Sequence

from convlens.model.keras_models import keras
from convlens.model.layers import LayerInfo


def model_layers(model: keras.Model) -> list[LayerInfo]:
    """``model.layers`` as LayerInfo (input layers left out, as in a Sequential's ``layers``)."""
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    return [LayerInfo(i, layer.name, type(layer).__name__) for i, layer in enumerate(layers)]


def activation_model(model: keras.Model, names: Sequence[str]) -> keras.Model:
    """One multi-output model giving the named layers' activations (the book's ``conv_acti``)."""
    return keras.Model(model.inputs[0], [model.get_layer(n).output for n in names])
