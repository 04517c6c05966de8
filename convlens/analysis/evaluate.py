"""How well a model classifies a split: its predictions, streamed in batches, and what they add up to.

The pure functions take labels and predictions (class indices) and give the confusion matrix, the accuracy
and the accuracy per class; ``analysis.dataset.stream_pass`` runs a split through the model once, keeping one class
index per image (:func:`predicted_classes`) beside the layers' statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from convlens.errors import ConvlensError
from convlens.model.forward import Activations
from convlens.model.inputs import model_inputs


def check_labels(labels: np.ndarray, classes: int, split: str) -> None:
    """Every label of ``split`` must name one of the ``classes`` classes of ``data.classes``."""
    if labels.size and labels.max() >= classes:
        raise ConvlensError(f"the {split} labels go up to {labels.max()}; data.classes names only {classes}")


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, classes: int) -> np.ndarray:
    """Counts (classes × classes): row = actual class, column = predicted class."""
    labels, predictions = np.asarray(labels, np.int64), np.asarray(predictions, np.int64)
    if labels.shape != predictions.shape:
        raise ConvlensError(f"{labels.size} labels but {predictions.size} predictions")
    for name, values in (("labels", labels), ("predictions", predictions)):
        if values.size and (values.min() < 0 or values.max() >= classes):
            raise ConvlensError(f"{name} must lie in 0..{classes - 1}; check data.classes")
    return np.bincount(labels * classes + predictions, minlength=classes * classes).reshape(classes, classes)


def accuracy(confusion: np.ndarray) -> float:
    """The fraction of images whose predicted class is their class (NaN for no image)."""
    total = confusion.sum()
    return float(np.trace(confusion) / total) if total else float("nan")


def class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """Per actual class, the fraction of its images predicted as it (its recall; NaN for a class with no image)."""
    counts = confusion.sum(axis=1)
    return np.divide(np.diag(confusion), counts, out=np.full(len(counts), np.nan), where=counts > 0)


def head_problem(output_shape: tuple[int, ...], classes: int, layer: str) -> str | None:
    """Why a model whose last layer ``layer`` outputs ``output_shape`` per image cannot be scored against the
    data's ``classes`` classes (one score per class wanted), or ``None`` when it can."""
    if len(output_shape) == 1 and output_shape[0] == classes:
        return None
    shape = "×".join(map(str, output_shape))
    return (
        f"the model's last layer {layer!r} outputs {shape} values per image, not one score for each of the data's "
        f"{classes} classes; use a classifier trained on this data"
    )


def predicted_classes(outputs: np.ndarray, classes: int, layer: str) -> np.ndarray:
    """The class each image's output (N, classes) scores highest (ties: the lower class, as ``argmax``)."""
    if outputs.ndim != 2 or outputs.shape[1] != classes:
        raise ConvlensError(
            f"the model's last layer {layer!r} outputs shape {outputs.shape[1:]}, not one score per class of "
            f"data.classes ({classes}); evaluate needs a classifier whose last layer has {classes} units"
        )
    return outputs.argmax(axis=1)


def output_shape(network: Activations, layer: str, image: np.ndarray, scale: float) -> tuple[int, ...]:
    """``layer``'s output shape for one image (no batch axis), from one forward pass of ``image``."""
    return tuple(network.activations(model_inputs(image[np.newaxis], scale), [layer])[0].shape[1:])


def prediction_rows(labels: np.ndarray, predictions: np.ndarray, classes: Sequence[str]) -> list[dict[str, str]]:
    """One row per image, its actual and its predicted class by name: ``dvc plots``' confusion table."""
    names = np.array(classes, dtype=object)
    return [{"actual": a, "predicted": p} for a, p in zip(names[labels], names[predictions], strict=True)]


def evaluation_summary(confusion: np.ndarray, classes: Sequence[str]) -> dict[str, object]:
    """One model's metrics: ``accuracy`` and ``class_accuracy`` by class name (null for a class with no image)."""
    from convlens.analysis.stats import as_number

    per_class = zip(classes, class_accuracy(confusion), strict=True)
    return {
        "accuracy": as_number(accuracy(confusion)),
        "class_accuracy": {name: None if np.isnan(v) else as_number(v) for name, v in per_class},
    }


def confusion_from_rows(path: Path, classes: Sequence[str]) -> np.ndarray:
    """The confusion matrix (:func:`confusion_matrix`) of a table of :func:`prediction_rows` (class names)."""
    import csv

    index = {name: k for k, name in enumerate(classes)}
    with open(path, encoding="utf-8", newline="") as f:
        pairs = np.array([(index[row["actual"]], index[row["predicted"]]) for row in csv.DictReader(f)], np.int64)
    pairs = pairs.reshape(-1, 2)
    return confusion_matrix(pairs[:, 0], pairs[:, 1], len(classes))
