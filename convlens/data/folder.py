"""An image folder in Keras's ``image_dataset_from_directory`` layout: one subfolder per class (its name the class
name), PNG, JPEG or BMP files in it; ``DIR/train/<class>/`` and ``DIR/test/<class>/`` when both exist, else a
seeded split.

Every file is checked before one pixel is decoded (links that leave the folder, empty files, other files, headers
over ``MAX_PIXELS``, sizes and colours that differ); then each image is decoded once, straight into the split's
memmap (:func:`decoded`), never the whole folder in memory.
"""

from __future__ import annotations

import os
import shlex
import stat
import warnings
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convlens.data.pixels import image_shape, shape_text, transform
from convlens.errors import ConvlensError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
FORMATS = ("PNG", "JPEG", "BMP")
# The most pixels one image may declare: 8192 × 8192, 64 megapixels (Pillow warns at 89 and refuses at 179); a
# header over it is refused before the image is decoded (a decompression bomb).
MAX_PIXELS = 1 << 26
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "F")  # the rest become RGB (P, RGBA, CMYK, …)
# Pillow's 16-bit gray modes (a 16-bit gray PNG; "I" in older Pillow): made 8-bit by keeping the high byte.
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I")
# Modes Pillow's ``convert`` makes gray or RGB as they are (16-bit colour PNGs open as RGB/RGBA, high byte kept).
EIGHT_BIT_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr")
SPLIT_DIRS = ("train", "test")


class FolderError(ConvlensError):
    """The folder or one of its files is not what an image folder may hold."""


@dataclass(frozen=True)
class Entry:
    """One image file: where it is, its class, its size (H, W) and whether it is gray."""

    path: Path
    label: int
    size: tuple[int, int] = (0, 0)
    gray: bool = True


def _visible(names: Sequence[str]) -> list[str]:
    """Names not hidden (``.DS_Store``, ``.ipynb_checkpoints``), sorted as Keras sorts them."""
    return sorted(name for name in names if not name.startswith("."))


def _inside(path: Path, top: Path, class_folder: bool = False) -> None:
    """A link in the folder must stay in it and lead to a file (``class_folder``: the link is one of the class
    folders, which Keras reads as a class)."""
    target = path.resolve()
    if not target.is_relative_to(top):
        what = "folder" if path.is_dir() else "file"
        raise FolderError(f"{path} is a link leading out of {top} (to {target}); put a copy of the {what} in its place")
    if not path.exists():
        raise FolderError(f"{path} is a broken link (to {target}); remove it or put the file in its place")
    if path.is_dir():
        keras = (
            "copy the folder in its place (Keras reads a linked class folder as a class)"
            if class_folder
            else "copy the folder in its place, as Keras reads it with follow_links=True, or remove the link, as "
            "with follow_links=False (the default)"
        )
        raise FolderError(f"{path} is a link to a folder, which convlens does not follow; {keras}")


def is_image(name: str) -> bool:
    """Whether a file is indexed as an image, as Keras indexes it: its name ends with an extension, in any case."""
    return name.lower().endswith(EXTENSIONS)


def _walk(folder: Path, top: Path) -> tuple[list[Path], list[Path]]:
    """The images of one class folder in Keras's order (``index_directory``: its folders, subfolders and hidden
    ones too, sorted by path, each one's files sorted by name) and its other files (``notes.txt``, ``Thumbs.db``, a
    GIF; hidden ones, and any in a hidden folder, are left out); a link out of ``top``, a link to a folder, an empty
    file or one that is not a regular file is one line."""
    found, others = [], []
    for here, dirs, files in sorted(os.walk(folder), key=lambda step: step[0]):
        for name in sorted(dirs):
            if (Path(here) / name).is_symlink():
                _inside(Path(here) / name, top)
        for name in sorted(files):
            path = Path(here) / name
            if not is_image(name) and any(part.startswith(".") for part in path.relative_to(folder).parts):
                continue
            if path.is_symlink():
                _inside(path, top)
            mode = os.stat(path)
            if not stat.S_ISREG(mode.st_mode):
                raise FolderError(f"{path} is not a regular file; remove it from {top}")
            if not is_image(name):
                others.append(path)
            elif mode.st_size == 0:
                raise FolderError(f"{path} is empty (0 bytes); remove it or replace it with the image")
            else:
                found.append(path)
    return found, others


def others_message(others: Sequence[Path], top: Path, depth: int, shown: int = 3) -> str:
    """One line for every file of the class folders that is not an image: how many, the first ``shown`` (relative
    to ``top``) and the ``find`` command that lists them all (``depth``: 2 for DIR/<class>/, 3 for DIR/train/…)."""
    names = sorted(str(p.relative_to(top)) for p in others)
    listed = ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")
    patterns = " ".join(f"! -iname '*{ext}'" for ext in EXTENSIONS)
    return (
        f"{top} holds {len(names)} file(s) in its class folders that are not PNG, JPEG or BMP images ({listed}); "
        f"remove them or move them out of {top}; list them all: cd {shlex.quote(str(top))} && find . -mindepth "
        f"{depth} ! -type d ! -path '*/.*' {patterns}"
    )


def image_files(folders: Sequence[Path], top: Path, depth: int) -> dict[Path, list[Path]]:
    """The images of each class folder, in sorted order. Files that are not images, in all the folders together,
    are one line naming them (convlens refuses them where Keras skips them); so is a folder without images."""
    walked = {folder: _walk(folder, top) for folder in folders}
    others = [path for _, extra in walked.values() for path in extra]
    if others:
        raise FolderError(others_message(others, top, depth))
    for folder, (found, _) in walked.items():
        if not found:
            raise FolderError(f"class folder {folder} holds no images; remove it or add its images")
    return {folder: found for folder, (found, _) in walked.items()}


def class_folders(folder: Path, top: Path) -> dict[str, Path]:
    """The class subfolders of ``folder`` by name (files beside them, a README, are ignored)."""
    classes = {}
    for name in _visible(os.listdir(folder)):
        path = folder / name
        if path.is_symlink():
            _inside(path, top, class_folder=True)
        elif path.is_dir():
            classes[name] = path
    if not classes:
        raise FolderError(f"{folder} has no class folders; put each class's images in DIR/<class>/ (Keras's layout)")
    return classes


def keras_shuffled(entries: Sequence[Entry], seed: int) -> list[Entry]:
    """``entries`` in the order ``index_directory`` shuffles its file list into: ``RandomState(seed).shuffle``."""
    shuffled = list(entries)
    np.random.RandomState(seed).shuffle(shuffled)
    return shuffled


def held_out_count(images: int, fraction: float) -> int:
    """How many of ``images`` the test split holds: Keras's validation count, ``int(fraction × images)``."""
    return int(fraction * images)


def scan(top: Path, test_fraction: float, seed: int) -> tuple[dict[str, list[Entry]], list[str]]:
    """Each split's files with their labels, and the class names by label: the files Keras's
    ``image_dataset_from_directory(top, validation_split=test_fraction, seed=seed)`` puts in its training and
    validation subsets, in its order (each of ``DIR/train/`` and ``DIR/test/`` as it indexes that folder alone)."""
    top = top.resolve()
    present = [d for d in SPLIT_DIRS if (top / d).is_dir() and not (top / d).is_symlink()]
    if len(present) == 1:
        other = next(d for d in SPLIT_DIRS if d not in present)
        raise FolderError(
            f"{top} has {present[0]}/ but no {other}/; add {top / other}/<class>/, or put the class folders "
            "directly in the folder for a split by data.test_fraction"
        )
    if present:
        folders = {split: class_folders(top / split, top) for split in SPLIT_DIRS}
        if set(folders["train"]) != set(folders["test"]):
            odd = sorted(set(folders["train"]) ^ set(folders["test"]))
            raise FolderError(
                f"{top}: train/ and test/ must have the same class folders; {', '.join(odd)} is in one only"
            )
        names = list(folders["train"])
        images = image_files([f for split in SPLIT_DIRS for f in folders[split].values()], top, depth=3)
        splits = {
            split: [Entry(p, names.index(c)) for c, f in folders[split].items() for p in images[f]]
            for split in SPLIT_DIRS
        }
        return {split: keras_shuffled(entries, seed) for split, entries in splits.items()}, names
    folders = class_folders(top, top)
    names = list(folders)
    images = image_files(list(folders.values()), top, depth=2)
    entries = [Entry(p, label) for label, f in enumerate(folders.values()) for p in images[f]]
    n_test = held_out_count(len(entries), test_fraction)
    if not 0 < n_test < len(entries):
        raise FolderError(
            f"{top} holds {len(entries)} image(s); data.test_fraction={test_fraction} of them makes "
            f"{n_test} test image(s) (int(N × fraction), as Keras's validation_split counts) and "
            f"{len(entries) - n_test} to train on; each split needs at least one: add images or raise "
            "data.test_fraction"
        )
    shuffled = keras_shuffled(entries, seed)
    return {"train": shuffled[:-n_test], "test": shuffled[-n_test:]}, names


def other_format(path: Path) -> str | None:
    """The format Pillow finds in a file it will not read as PNG, JPEG or BMP (GIF, TIFF, WebP, ICO, …), from its
    header alone; None when no format of Pillow's is it."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as picture:
                return picture.format
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error, Image.DecompressionBombError):
        return None


def _open(path: Path):
    """``path`` opened by Pillow (header only), its pixel count checked: a bomb is one line, not a warning."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            picture = Image.open(path, formats=FORMATS)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        raise FolderError(f"{path} declares too many pixels ({e}); refused as a decompression bomb") from e
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error) as e:
        if (found := other_format(path)) and found not in FORMATS:
            raise FolderError(
                f"{path} is a {found} image, not a PNG, JPEG or BMP one, whatever its name; save it as PNG (or "
                "JPEG or BMP) or remove it"
            ) from e
        raise FolderError(f"{path} is not a readable PNG, JPEG or BMP image ({e}); remove it or replace it") from e
    width, height = picture.size
    if width * height > MAX_PIXELS:
        picture.close()
        raise FolderError(
            f"{path} declares {width}×{height} pixels, over the {MAX_PIXELS} an image may have; refused as a "
            "decompression bomb: shrink the image"
        )
    return picture


def measured(entry: Entry) -> Entry:
    """``entry`` with its size and colour, read from the file's header."""
    with _open(entry.path) as picture:
        return Entry(entry.path, entry.label, picture.size[::-1], picture.mode in GRAY_MODES)


def common_shape(splits: dict[str, list[Entry]], resize: Sequence[int] | None, color: str) -> tuple[int, ...]:
    """The shape every image is written in; sizes or colours that differ, without ``data.resize`` or
    ``data.color`` to make them one, are one line naming two files."""
    entries = sorted((e for split in splits.values() for e in split), key=lambda e: e.path)
    first = entries[0]
    if resize is None and (odd := next((e for e in entries if e.size != first.size), None)):
        raise FolderError(
            f"{first.path} is {shape_text(first.size)} but {odd.path} is {shape_text(odd.size)}; the images must "
            "have one size: set data.resize=[H,W] to resize them all"
        )
    if color == "keep" and (odd := next((e for e in entries if e.gray != first.gray), None)):
        kinds = {True: "gray", False: "colour"}
        raise FolderError(
            f"{first.path} is {kinds[first.gray]} but {odd.path} is {kinds[odd.gray]}; the images must have one "
            "colour mode: set data.color=rgb (or gray) to convert them all"
        )
    return image_shape(first.size if first.gray else (*first.size, 3), resize, color)


def eight_bit(picture, path: Path):
    """``picture`` (loaded) with 8-bit channels. 16-bit gray keeps each pixel's high byte (``v >> 8``), as
    TensorFlow's ``decode_png(dtype=uint8)`` does (libpng's strip-16), and with it ``image_dataset_from_directory``;
    Pillow's own ``convert`` would clip every value over 255 to white. Any other mode is one line."""
    from PIL import Image

    if picture.mode in SIXTEEN_BIT_MODES:
        values = np.asarray(picture)
        if values.size and (values.min() < 0 or values.max() > 0xFFFF):
            raise FolderError(
                f"{path} holds pixels from {values.min()} to {values.max()} (Pillow mode {picture.mode}), outside the "
                "16-bit range 0..65535; save it as an 8-bit or 16-bit PNG"
            )
        return Image.fromarray((values >> 8).astype(np.uint8))
    if picture.mode not in EIGHT_BIT_MODES:
        raise FolderError(
            f"{path} has Pillow mode {picture.mode}, which convlens cannot make 8-bit as TensorFlow would; save it "
            "as an 8-bit or 16-bit PNG (or a JPEG or BMP)"
        )
    return picture


def decode(entry: Entry, shape: tuple[int, ...], resize: Sequence[int] | None, color: str) -> np.ndarray:
    """One image decoded as ``shape`` uint8 pixels (made 8-bit, its mode made gray or RGB, then ``resize``)."""
    from PIL import Image

    with _open(entry.path) as picture:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                picture.load()
                image = eight_bit(picture, entry.path)
                mode = "L" if len(shape) == 2 else "RGB"
                pixels = np.asarray(image.convert(mode) if image.mode != mode else image, dtype=np.uint8)
        except (OSError, SyntaxError, ValueError, EOFError, zlib.error, Image.DecompressionBombError) as e:
            raise FolderError(f"{entry.path} is not a readable image ({e}); remove it or replace it") from e
    pixels = transform(pixels, resize, "keep")
    if pixels.shape != shape:
        raise FolderError(
            f"{entry.path} decodes to {shape_text(pixels.shape)}, not the {shape_text(shape)} its header said; "
            "the file is corrupt, replace it"
        )
    return pixels


def decoded(
    entries: Sequence[Entry], shape: tuple[int, ...], resize: Sequence[int] | None, color: str, label: str
) -> Iterator[np.ndarray]:
    """The images of ``entries`` one at a time (each a 1-image chunk), with a progress bar on a terminal."""
    from tqdm import tqdm

    for entry in tqdm(entries, desc=label, unit="image", leave=False, disable=None):
        yield decode(entry, shape, resize, color)[None]
