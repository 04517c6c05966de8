"""How pixels become the model's inputs: ``pixels / input.scale``, or raw pixels for a model that starts
with Rescaling or Normalization; and the warning when most channels of the first conv layer never fire,
the sign of pixels scaled otherwise than the model was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .archive import Archive
from .layers import CONV_KINDS, LayerInfo
from .ops import IDENTITY_KINDS
from .schema import SCHEMA

SCALE_KEY = "input.scale"  # the config key of the pixel divisor, as messages name it


RAW_PIXEL_KINDS = ("Rescaling", "Normalization")  # a model starting with one of these scales its own input


def check_scale(scale: object) -> float:
    """The configured pixel divisor, checked as the schema checks ``input.scale``."""
    SCHEMA[SCALE_KEY](SCALE_KEY, scale)
    return float(scale)


def model_inputs(images: np.ndarray, scale: float) -> np.ndarray:
    """Pixels (N, H, W) → float32 inputs (N, H, W, 1) divided by ``scale`` (the book's ``/ 255.0``)."""
    x = np.asarray(images, dtype=np.float32) / np.float32(check_scale(scale))
    return x[..., np.newaxis] if x.ndim == 3 else x


def first_layer(config: dict) -> dict | None:
    """The first layer entry of a ``config.json`` that acts on the pixels: input layers and layers that do
    nothing at inference (dropout, noise) skipped; ``None`` for a model with no such layer."""
    for entry in config.get("config", {}).get("layers", []):
        if entry.get("class_name") not in ("InputLayer", *IDENTITY_KINDS):
            return entry
    return None


def _values(value: object) -> str:
    array = np.asarray(value, dtype=np.float64)
    return f"{array.item():.6g}" if array.size == 1 else np.array2string(array, precision=4, threshold=6)


def describe_preprocessing(entry: dict, weights: list[np.ndarray]) -> str:
    """A Rescaling or Normalization layer in a few words, e.g. ``Rescaling (scale 0.00392157, offset 0)``."""
    kind, cfg = entry["class_name"], entry.get("config", {})
    if kind == "Rescaling":
        return f"Rescaling (scale {_values(cfg.get('scale', 1.0))}, offset {_values(cfg.get('offset', 0.0))})"
    mean, variance = (cfg.get("mean"), cfg.get("variance")) if cfg.get("mean") is not None else weights[:2]
    return f"Normalization (mean {_values(mean)}, variance {_values(variance)})"


@dataclass(frozen=True)
class InputScale:
    """How pixels become the model's inputs: ``pixels / divisor``, and why."""

    divisor: float  # SCALE_KEY's value, or 1 when the model scales raw pixels itself
    preprocessing: str | None = None  # the model's own first layer, described, when it takes raw pixels

    def note(self) -> str | None:
        """The log line saying that the model gets raw pixels, or ``None`` when it gets ``pixels / scale``."""
        if self.preprocessing is None:
            return None
        return f"the model starts with {self.preprocessing}: feeding raw 0–255 pixels, {SCALE_KEY} ignored"

    def silent_warning(self, layer: str, peaks: np.ndarray, seen: str) -> str | None:
        """A warning when more than half of ``layer``'s channels never fire (``peaks``: each channel's
        largest activation, ≤ 0 when it never fires) on what was ``seen``: the sign of pixels scaled
        otherwise than the model was trained on."""
        silent, channels = int((np.asarray(peaks) <= 0).sum()), int(np.size(peaks))
        if 2 * silent <= channels:
            return None
        if self.preprocessing is not None:
            hint = f"it gets raw 0–255 pixels, as its first layer {self.preprocessing} asks"
        elif self.divisor == 1:
            hint = f"the model may expect pixels in 0..1: {SCALE_KEY}=255"
        else:
            hint = f"the model may expect raw pixels: {SCALE_KEY}=1"
        problem = f"{silent} of {channels} channels of {layer} never fire on {seen}"
        return f"warning: {problem}; is the input scale right? {hint}"


def input_scale(first: dict | None, weights: Sequence[np.ndarray], scale: object) -> InputScale:
    """The divisor for the pixels: 1 (raw 0–255 pixels) when the model's first layer (``first_layer``, its
    ``weights``) is Rescaling or Normalization, which scales the input itself (dividing first would scale
    it twice); else ``scale``, the configured divisor."""
    scale = check_scale(scale)
    if first is None or first.get("class_name") not in RAW_PIXEL_KINDS:
        return InputScale(scale)
    return InputScale(1.0, describe_preprocessing(first, list(weights)))


def read_input_scale(archive: Archive, scale: object) -> InputScale:
    """``input_scale`` for a ``.keras`` archive."""
    first = first_layer(archive.config)
    needs_weights = first is not None and first.get("class_name") == "Normalization"
    weights = archive.weights([first["config"]["name"]])[first["config"]["name"]] if needs_weights else []
    return input_scale(first, weights, scale)


def first_conv(layers: Sequence[LayerInfo]) -> str | None:
    """The model's first conv layer (``CONV_KINDS``): the one whose channels show a wrong input scale."""
    return next((layer.name for layer in layers if layer.kind in CONV_KINDS), None)
