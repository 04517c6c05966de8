"""Images and labels as convlens stores them, and the two changes a user may ask for (``data.resize``,
``data.color``).

Images are uint8, N×H×W (gray) or N×H×W×3 (RGB); labels are integers 0..K-1, K the number of classes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from convlens.errors import ConvlensError

CHUNK = 1024  # images converted at a time by transformed()


def shape_text(shape: Sequence[int]) -> str:
    """One image's shape as messages say it: ``28×28`` (gray) or ``32×32×3`` (RGB)."""
    return "×".join(map(str, shape))


def _as_uint8(array: np.ndarray) -> str:
    """How to save non-integer pixels as uint8, by their range: 0..1 (``x / 255.0``) is scaled back, not cut to 0."""
    if array.dtype.kind != "f" or not array.size:
        return "save them as uint8"
    unreadable = int(np.count_nonzero(~np.isfinite(array)))
    if unreadable:  # a cast would make them 0 without a word
        return (
            f"{unreadable} of them are NaN or infinite, which no pixel can be: mend or drop those images, then save "
            "them as uint8"
        )
    low, high = float(np.nanmin(array)), float(np.nanmax(array))
    if low >= 0 and high <= 1:
        return f"they run from {low:.4g} to {high:.4g}, so save (x * 255).round().astype('uint8')"
    if low >= 0 and high <= 255:
        return f"they run from {low:.4g} to {high:.4g}, so save x.round().astype('uint8')"
    return f"they run from {low:.4g} to {high:.4g}: scale them to 0..255 and save them as uint8"


def as_images(array: np.ndarray, source: str) -> np.ndarray:
    """``array`` as uint8 N×H×W or N×H×W×3 (N×H×W×1 becomes N×H×W); integer pixels 0..255, else one line."""
    if array.dtype.kind not in "ui":
        raise ConvlensError(
            f"{source} holds {array.dtype} pixels; convlens stores uint8 pixels 0..255: {_as_uint8(array)}"
        )
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if not (array.ndim == 3 or (array.ndim == 4 and array.shape[-1] == 3)) or 0 in array.shape[1:]:
        raise ConvlensError(f"{source} has shape {array.shape}; images must be N×H×W (gray) or N×H×W×3 (RGB)")
    if array.dtype != np.uint8 and array.size and (array.min() < 0 or array.max() > 255):
        raise ConvlensError(
            f"{source} holds pixels from {array.min()} to {array.max()}; convlens stores uint8 pixels 0..255"
        )
    return array.astype(np.uint8, copy=False)


def as_labels(array: np.ndarray, source: str) -> np.ndarray:
    """``array`` as an int64 vector (N×1 becomes N): integer labels, each ≥ 0, else one line (N×K labels, one-hot
    or scores per class, with the fix: ``y.argmax(1)``)."""
    if array.ndim == 2 and array.shape[1] > 1:
        raise ConvlensError(
            f"{source} has shape {array.shape} ({array.dtype}): one-hot labels or scores per class, not class "
            "indices; save y.argmax(1), a vector of N class indices 0..K-1"
        )
    if array.dtype.kind not in "ui":
        raise ConvlensError(f"{source} holds {array.dtype} labels; labels must be integers 0..K-1 (class indices)")
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ConvlensError(f"{source} has shape {array.shape}; labels must be a vector of N class indices")
    if array.size and array.min() < 0:
        raise ConvlensError(f"{source} holds the label {array.min()}; labels must be class indices 0..K-1")
    return array.astype(np.int64)


def check_pairs(images: np.ndarray, labels: np.ndarray, split: str, names: tuple[str, str] | None = None) -> None:
    """A split is N ≥ 1 images and as many labels; ``names``: where its images and labels are, as messages say them
    (``…/d.npz: x_train``)."""
    if len(images) != len(labels):
        if names is None:
            raise ConvlensError(f"{split}: {len(images)} images but {len(labels)} labels; they must pair one to one")
        (source, _, first), (other, _, second) = (name.rpartition(": ") for name in names)
        if not source or source != other:  # not one file's two members: each named whole
            source, first, second = "", *names
        held = f"{first} holds {len(images)} images but {second} holds {len(labels)} labels"
        raise ConvlensError(f"{source + ': ' if source else ''}{held}; they must pair one to one")
    if not len(images):
        where = f"{names[0]} holds" if names is not None else "the data holds"
        raise ConvlensError(f"{split}: {where} no images; each split needs at least one")


def check_labels(labels: np.ndarray, classes: int, split: str, named_by: str, source: str) -> None:
    """Every label is a class index 0..``classes``-1; ``named_by`` says where the class names came from, ``source``
    where the labels are (``…/d.npz: y_train``)."""
    if labels.size and labels.max() >= classes:
        raise ConvlensError(
            f"{split} labels go up to {labels.max()} ({source}) but there are {classes} classes "
            f"({named_by}: labels 0..{classes - 1}); give one class name per label (data.classes) or fix the labels"
        )


def label_dtype(classes: int) -> np.dtype:
    """The smallest unsigned type holding labels 0..``classes``-1: uint8 for up to 256 classes (as Fashion-MNIST)."""
    return np.min_scalar_type(max(classes - 1, 0))


def image_shape(shape: Sequence[int], resize: Sequence[int] | None, color: str) -> tuple[int, ...]:
    """The shape one image of ``shape`` (H×W or H×W×3) has after ``resize`` ([H, W] or None) and ``color``."""
    height, width = resize if resize is not None else shape[:2]
    rgb = color == "rgb" or (color == "keep" and len(shape) == 3)
    return (int(height), int(width), 3) if rgb else (int(height), int(width))


def transform(image: np.ndarray, resize: Sequence[int] | None, color: str) -> np.ndarray:
    """One uint8 image converted (``color``: Pillow's ``convert``, ITU-R 601-2 luma for gray) and resized
    (Pillow's bilinear filter, antialiased when shrinking)."""
    from PIL import Image

    picture = Image.fromarray(image)
    if color != "keep":
        picture = picture.convert("L" if color == "gray" else "RGB")
    if resize is not None and tuple(resize) != picture.size[::-1]:
        picture = picture.resize((int(resize[1]), int(resize[0])), Image.Resampling.BILINEAR)
    return np.asarray(picture, dtype=np.uint8)


def is_unchanged(shape: Sequence[int], resize: Sequence[int] | None, color: str) -> bool:
    """Whether ``resize`` and ``color`` leave images of ``shape`` as they are."""
    return image_shape(shape, resize, color) == tuple(shape)


def transformed(images: np.ndarray, resize: Sequence[int] | None, color: str) -> Iterator[np.ndarray]:
    """``images`` (N×H×W or N×H×W×3 uint8) in chunks of ``CHUNK``, each image changed as asked; the arrays
    themselves, in chunks, when nothing is asked."""
    unchanged = is_unchanged(images.shape[1:], resize, color)
    for start in range(0, len(images), CHUNK):
        chunk = images[start : start + CHUNK]
        yield chunk if unchanged else np.stack([transform(image, resize, color) for image in chunk])
