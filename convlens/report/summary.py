"""The model summary: Keras's ``model.summary()`` (each layer's output shape and parameter count) without
TensorFlow, for the report's first section."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from convlens.analysis.receptive import Field, graph_fields, receptive_fields
from convlens.model.archive import Archive
from convlens.model.graph import model_graph
from convlens.model.shapes import graph_shapes


@dataclass(frozen=True)
class LayerRow:
    """One row of the model summary: Keras's ``model.summary()`` without TensorFlow."""

    index: int | None
    name: str
    kind: str
    output_shape: tuple[int | None, ...] | None
    params: int
    field: Field | None = None  # its receptive field in input pixels; None where it is not known
    shape_source: str = ""  # where its output shape comes from: "numpy" (the forward pass), "graph" (graph_shapes)


def output_shapes(archive: Archive, sample: Sequence[int] | None = None) -> dict[str, tuple[int | None, ...]]:
    """Each layer's output shape (batch axis ``None``) from the numpy forward pass of one blank input, of the
    images' shape ``sample`` (H, W[, C]) where the model's input size is open; empty where the forward pass does not
    compute the model (a branch, a nested model, a layer kind it lacks, an open size without ``sample``)."""
    from convlens.model.forward import load_network
    from convlens.model.ops import Unsupported

    try:
        network = load_network(archive, sample=sample)
    except Unsupported:
        return {}
    if None in network.input_shape:
        return {}
    blank = np.zeros((1, *network.input_shape), np.float32)
    outputs = network.activations(blank, network.names)
    return {name: (None, *out.shape[1:]) for name, out in zip(network.names, outputs, strict=True)}


def parameter_counts(archive: Archive) -> dict[str, int]:
    """Each layer's number of stored weights (Keras's ``Param #``); a nested model counts its layers'."""
    names = [layer.name for layer in archive.layers]
    stored = archive.weights(names)
    own = {name: sum(int(np.size(v)) for v in stored.get(name) or []) for name in names}
    return {name: own[name] + sum(c for n, c in own.items() if n.startswith(f"{name}/")) for name in names}


def layer_fields(archive: Archive, chain: bool, sample: Sequence[int] | None = None) -> dict[str, Field]:
    """Each layer's receptive field (``analysis.receptive``) with a 2-D input, fixed or open (then at the images'
    shape ``sample``, which decides only which fields are the whole input): along the chain where the numpy
    forward pass computes the model (``chain``), else through the model's graph (:func:`model_graph`), a layer
    whose field is not known left out."""
    from convlens.model.forward import sized_input

    size = sized_input((None, *archive.input_shape), sample)[:2]
    if len(size) != 2 or None in size:
        return {}
    if chain:
        entries = [e for e in archive.config["config"]["layers"] if e["class_name"] != "InputLayer"]
        return receptive_fields([(e["class_name"], e["config"]) for e in entries], (int(size[0]), int(size[1])))
    layers, inputs = model_graph(archive.config)
    return graph_fields(layers, inputs, (int(size[0]), int(size[1])))


def graph_output_shapes(archive: Archive, sample: Sequence[int] | None = None) -> dict[str, tuple[int | None, ...]]:
    """Each layer's output shape (batch axis ``None``) through the model's graph from its layers' configs
    (``model.shapes.graph_shapes``), at the images' shape ``sample`` where the input size is open; a layer whose shape
    is not known left out (empty without ``sample`` for an open size)."""
    from convlens.model.forward import sized_input

    size = sized_input((None, *archive.input_shape), sample)
    if None in size:
        return {}
    layers, inputs = model_graph(archive.config)
    return {name: (None, *shape) for name, shape in graph_shapes(layers, dict.fromkeys(inputs, size)).items()}


def model_summary(archive: Archive, sample: Sequence[int] | None = None) -> list[LayerRow]:
    """The report's model table: each layer's row, shapes and fields of a model of open input size at the images'
    shape ``sample`` (H, W[, C]); the shapes from the numpy forward pass, or through the graph where it does not
    compute the model."""
    computed, counts = output_shapes(archive, sample), parameter_counts(archive)
    shapes, source = (computed, "numpy") if computed else (graph_output_shapes(archive, sample), "graph")
    fields = layer_fields(archive, bool(computed), sample)
    return [
        LayerRow(
            layer.index,
            layer.name,
            layer.kind,
            shapes.get(layer.name),
            counts[layer.name],
            fields.get(layer.name),
            source if layer.name in shapes else "",
        )
        for layer in archive.layers
    ]


def field_text(field: Field | None, whole: str) -> str:
    """A receptive field as the report shows it: ``10×10``, ``whole`` (the given word) for a layer that sees the whole
    input, ``–`` where it is not known."""
    if field is None:
        return "–"
    return whole if field.whole else f"{field.size[0]}×{field.size[1]}"


def shape_text(shape: Sequence[int | None] | None) -> str:
    """An output shape as ``model.summary()`` prints it, ``(None, 26, 26, 32)``; ``–`` where it is not known."""
    return "–" if shape is None else "(" + ", ".join(map(str, shape)) + ")"
