"""Where a page's images go: inline as ``data:`` URIs, or as files beside the page, referred to by relative paths.

A page of a run with many samples cannot inline every figure (100 samples made a 46 MB report). In the folder
mode the page holds no image bytes at all: each figure is a file under ``figures/`` beside the page (its path as
under ``outputs/figures``), and the per-sample figures past the first few are shown as small thumbnails under
``thumbnails/``, each a link to its full-size figure. Every reference is relative and points inside the page's
folder, so the page opens offline from wherever the folder is copied to.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from convlens.report.pages import Image, data_uri

FIGURES = "figures"  # full-size figures beside the page
THUMBNAILS = "thumbnails"  # their small copies, each a link to its figure
THUMBNAIL_SIZE = 240  # px, the longer side of a thumbnail
FULL_SAMPLES = 4  # per-sample figures shown full size on the page; later samples as thumbnails
FULL_FIGURES = 8  # figures that differ shown full size on the comparison page; later ones as thumbnails


def thumbnail(data: bytes, size: int = THUMBNAIL_SIZE) -> bytes:
    """A PNG at most ``size`` pixels on its longer side (never enlarged), from an image's bytes."""
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(data)) as picture:
        picture.load()
        small = picture.copy()
    small.thumbnail((size, size))
    if small.mode not in ("1", "L", "LA", "P", "RGB", "RGBA"):
        small = small.convert("RGBA")
    out = io.BytesIO()
    small.save(out, format="PNG", optimize=True)
    return out.getvalue()


def safe_name(name: str) -> str:
    """A figure's relative path as a file under the page's folder: ``/``-separated, no ``..``, no root."""
    parts = [p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("", ".", "..", "/")]
    if not parts:
        raise ValueError(f"not a figure's name: {name!r}")
    return "/".join(parts)


@dataclass
class Assets:
    """A page's images: inline (``folder=False``, one file that can be mailed as it is) or files beside the page
    (``folder=True``), under ``prefix`` (``""`` for the report's own folder, ``"<stem>_files/"`` for a page that
    shares its folder with others)."""

    folder: bool = True
    prefix: str = ""
    # relative path in the page's folder -> (the figure's file or bytes, whether to write its thumbnail instead)
    files: dict[str, tuple[Path | bytes, bool]] = field(default_factory=dict)

    def image(self, source: Path | bytes, name: str, alt: str, small: bool = False) -> Image:
        """The image of ``source`` (a file or its bytes) called ``name`` (a relative path); ``small``: a thumbnail
        that links to the full-size figure. Inline, a thumbnail is the small copy alone."""
        if not self.folder:
            data = source.read_bytes() if isinstance(source, Path) else source
            if small:
                return Image(data_uri(thumbnail(data)), alt)
            return Image(data_uri(data, "image/gif" if name.endswith(".gif") else "image/png"), alt)  # a film plays
        name = safe_name(name)
        full = f"{self.prefix}{FIGURES}/{name}"
        self.files[full] = (source, False)
        if not small:
            return Image(full, alt)
        thumb = f"{self.prefix}{THUMBNAILS}/{PurePosixPath(name).with_suffix('.png')}"
        self.files[thumb] = (source, True)
        return Image(thumb, alt, href=full)

    def __iter__(self) -> Iterator[str]:
        return iter(self.files)

    def write(self, folder: Path, strip: str = "") -> int:
        """Write every file under ``folder`` (a staged dir: the caller renames it into place), its relative path
        less ``strip``; their bytes in all."""
        total = 0
        for relative, (source, small) in self.files.items():
            target = folder / relative.removeprefix(strip)
            target.parent.mkdir(parents=True, exist_ok=True)
            if small:
                data = source.read_bytes() if isinstance(source, Path) else source
                target.write_bytes(thumbnail(data))
            elif isinstance(source, Path):
                shutil.copyfile(source, target)
            else:
                target.write_bytes(source)
            total += target.stat().st_size
        return total
