"""How pixels become the model's inputs: ``pixels / input.scale``, or raw pixels for a model with Rescaling or
Normalization before its first conv layer (in a nested preprocessing model too); and the warning when most
channels of the first conv layer never fire, the sign of pixels scaled otherwise than the model was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from convlens.errors import ConvlensError
from convlens.model.archive import Archive
from convlens.model.layers import CONV_KINDS, LayerInfo, walk_layers
from convlens.schema import SCHEMA

SCALE_KEY = "input.scale"  # the config key of the pixel divisor, as messages name it


PIXEL_MAX = 255.0  # the data's pixels are uint8 (fetch_data): inputs range over 0..PIXEL_MAX / divisor


RAW_PIXEL_KINDS = ("Rescaling", "Normalization")  # a model with one of these before its first conv scales its input


def check_scale(scale: object) -> float:
    """The configured pixel divisor, checked as the schema checks ``input.scale``."""
    SCHEMA[SCALE_KEY](SCALE_KEY, scale)
    return float(scale)


def non_finite_layers(model: Archive) -> list[str]:
    """The layers of ``model`` that store NaN or infinity, in its order."""
    stored = model.weights([layer.name for layer in model.layers])
    return [name for name, values in stored.items() if not all(np.isfinite(v).all() for v in values)]


def model_inputs(images: np.ndarray, scale: float) -> np.ndarray:
    """Pixels (N, H, W) → float32 inputs (N, H, W, 1) divided by ``scale`` (the book's ``/ 255.0``)."""
    x = np.asarray(images, dtype=np.float32) / np.float32(check_scale(scale))
    return x[..., np.newaxis] if x.ndim == 3 else x


def preprocessing_layers(config: dict) -> list[tuple[str, dict]]:
    """The Rescaling and Normalization layers (``RAW_PIXEL_KINDS``) before the model's first conv layer, as
    ``(address, config entry)`` in order, nested models' layers included (``outer/inner``): a
    ``Sequential([Rescaling(1 / 255)], name="preprocessing")`` inside the model scales its input as well."""
    found = []
    for info, entry, _ in walk_layers(config):
        if info.kind in CONV_KINDS:
            break
        if info.kind in RAW_PIXEL_KINDS:
            found.append((info.name, entry))
    return found


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
    preprocessing: str | None = None  # the model's own Rescaling / Normalization, described, when it takes raw pixels
    trained_here: bool = False  # trained by this pipeline (model.train_runs) at this very divisor: scale is no suspect

    @property
    def top(self) -> float:
        """The largest input: the brightest pixel, ``PIXEL_MAX / divisor``."""
        return PIXEL_MAX / self.divisor

    def note(self) -> str | None:
        """The log line saying that the model gets raw pixels, or ``None`` when it gets ``pixels / scale``."""
        if self.preprocessing is None:
            return None
        return f"the model starts with {self.preprocessing}: feeding raw 0–255 pixels, {SCALE_KEY} ignored"

    def suggestion(self) -> str:
        """What a silent first conv layer hints at (a key of ``HINTS``): ``diverged`` for a model trained here (at
        this very scale: its training may have diverged), ``raw`` (try ``input.scale=1``), ``unit`` (try
        ``input.scale=255``), or ``own`` (the model's own preprocessing already gets raw pixels)."""
        if self.trained_here:
            return "diverged"
        return "own" if self.preprocessing is not None else "unit" if self.divisor == 1 else "raw"

    def silent_warning(self, layer: str, peaks: np.ndarray, seen: str) -> str | None:
        """A warning when more than half of ``layer``'s channels never fire (``peaks``: each channel's
        largest activation, ≤ 0 when it never fires) on what was ``seen``: the sign of pixels scaled
        otherwise than the model was trained on, or, for a model trained here at this scale, of a training that
        diverged."""
        silent, channels = silent_channels(peaks)
        if 2 * silent <= channels:
            return None
        suggestion = self.suggestion()
        hint = HINTS[suggestion].format(preprocessing=self.preprocessing)
        problem = f"{silent} of {channels} channels of {layer} never fire on {seen}"
        if suggestion == "diverged":
            return f"warning: {problem}: {hint}"
        return f"warning: {problem}; is the input scale right? {hint}"

    def refuse_non_finite(self, values: np.ndarray, what: str, model: Archive | None = None) -> None:
        """Refuse ``values`` computed from the inputs (``what``: e.g. ``trained conv2d's activations on …``) that
        hold NaN or infinity, with one line naming the likely cause: the layers of ``model`` (the archive they came
        from) that store NaN or infinity where it has any, else the input scale, unless the model scales its own
        input, or such weights. Statistics of them would be NaN (written as such) or overflow."""
        bad = int(np.count_nonzero(~np.isfinite(values)))
        if not bad:
            return
        stored = [] if model is None else non_finite_layers(model)
        if stored:
            cause = f"the model stores numbers that are not finite (NaN or infinity) in {', '.join(map(repr, stored))}"
        elif self.preprocessing is None:
            cause = (
                f"is {SCALE_KEY}={self.divisor:g} right (inputs up to {self.top:.3g}; the book's is 255)? "
                "Otherwise the model stores NaN or infinite weights"
            )
        else:
            cause = f"the model ({self.preprocessing} first) stores NaN or infinite weights, or overflows"
        raise ConvlensError(f"{bad} of {np.size(values)} values of {what} are NaN or infinite: {cause}")

    def record(self, layer: str, peaks: np.ndarray, split: str, images: int) -> dict[str, object]:
        """The input range fed and the first conv ``layer``'s silent channels over a split (``images`` of
        ``split``), with ``silent_warning``'s line (null when none): what the report shows (``input_range.json``)."""
        silent, channels = silent_channels(peaks)
        return {
            "divisor": self.divisor,
            "preprocessing": self.preprocessing,
            "layer": layer,
            "silent_channels": silent,
            "channels": channels,
            "split": split,
            "images": images,
            "suggestion": self.suggestion(),
            "warning": self.silent_warning(layer, peaks, f"the {images} {split} images"),
        }


HINTS = {  # what ``InputScale.silent_warning`` suggests, by ``InputScale.suggestion``
    "raw": f"the model may expect raw pixels: {SCALE_KEY}=1",
    "unit": f"the model may expect pixels in 0..1: {SCALE_KEY}=255",
    "own": "it gets raw 0–255 pixels, as its first layer {preprocessing} asks",
    "diverged": "the training of this run may have diverged (see its learning curves; a lower train.learning_rate)",
}


def silent_channels(peaks: np.ndarray) -> tuple[int, int]:
    """How many channels never fire (their peak activation ≤ 0), and how many there are."""
    return int((np.asarray(peaks) <= 0).sum()), int(np.size(peaks))


def input_scale(scale: object, preprocessing: Sequence[str] = (), trained_here: bool = False) -> InputScale:
    """The divisor for the pixels: 1 (raw 0–255 pixels) when the model scales its input itself
    (``preprocessing``: its Rescaling and Normalization layers before the first conv layer, described; dividing
    first would scale the pixels twice); else ``scale``, the configured divisor. ``trained_here``: the model was
    trained by this pipeline (``model.train_runs``), on pixels divided by this same ``scale``."""
    scale = check_scale(scale)
    if preprocessing:
        return InputScale(1.0, ", then ".join(preprocessing), trained_here)
    return InputScale(scale, trained_here=trained_here)


def read_input_scale(archive: Archive, scale: object, trained_here: bool = False) -> InputScale:
    """``input_scale`` for a ``.keras`` archive; the weights file is read only for a Normalization layer."""
    found = preprocessing_layers(archive.config)
    normalizations = [address for address, entry in found if entry["class_name"] == "Normalization"]
    weights = archive.weights(normalizations) if normalizations else {}
    described = []
    for address, entry in found:
        outer = address.rpartition("/")[0]
        text = describe_preprocessing(entry, list(weights.get(address, [])))
        described.append(f"{text} in {outer}" if outer else text)
    return input_scale(scale, described, trained_here)


def fixed_input_shape(archive: Archive, sample: Sequence[int] | None = None) -> tuple[int, ...]:
    """The shape (no batch axis) of an input made up from nothing (activation maximization's): the model's input
    shape, its open dimensions (``None``) the data's images' ``sample`` (H, W[, C]), which must fit the model
    (``Archive.check_input``). An open size without the images' shape is refused, naming the input to build."""
    shape = archive.input_shape
    if None not in shape:
        return tuple(int(d) for d in shape)
    if sample is None:
        said = ", ".join(("H", "W")[i] if d is None and i < 2 else str(d) for i, d in enumerate(shape))
        raise ConvlensError(
            f"{archive.source} accepts inputs of any size {shape}; activation maximization needs the data's image "
            f"size for it (outputs/data, from fetch_data), or build the model with a fixed keras.Input(({said}))"
        )
    archive.check_input(tuple(sample))
    from convlens.model.forward import sized_input

    return tuple(int(d) for d in sized_input((None, *shape), sample))  # type: ignore[arg-type]


def first_conv(layers: Sequence[LayerInfo]) -> str | None:
    """The model's first conv layer (``CONV_KINDS``): the one whose channels show a wrong input scale."""
    return next((layer.name for layer in layers if layer.kind in CONV_KINDS), None)
