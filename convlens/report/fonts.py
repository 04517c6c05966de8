"""Hangul on a machine without a Korean font: the page carries the NanumGothic glyphs it uses.

The Korean page (and the English one, whose subtitle is the book's title) would show boxes in a browser on a machine
without a Korean font, a fresh Linux among them. A page opened from disk cannot load a font file beside it (Chromium
refuses ``file://`` fonts), so :func:`hangul_font_face` embeds one: NanumGothic (the figures' font, from
koreanize-matplotlib) cut down to the Hangul the page holds, a few kB to a hundred kB, as a ``data:`` URL after the
machine's own Korean fonts (``local()``). The family comes first in the page's font lists, its ``unicode-range``
Hangul only: named after ``system-ui``, Chromium on Linux drew half the page's Hangul as boxes all the same. The cut is
kept in the download cache (``$CONVLENS_CACHE/fonts``) by what it holds, so a page with the same letters reuses it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
from pathlib import Path

from convlens.data.fetch import cache_dir
from convlens.errors import ConvlensError
from convlens.pipeline.files import atomic_path
from convlens.render.language import font_file

FAMILY = "convlens-hangul"  # first in the page's font lists: its unicode-range leaves every other letter to them
# A machine's own Korean fonts, tried before the embedded glyphs (CSS local(): full and PostScript names)
LOCAL = (
    "Malgun Gothic",
    "Apple SD Gothic Neo",
    "AppleSDGothicNeo-Regular",
    "Noto Sans CJK KR",
    "NotoSansCJKkr-Regular",
    "NanumGothic",
)
HANGUL = ((0x1100, 0x11FF), (0x3130, 0x318F), (0xA960, 0xA97F), (0xAC00, 0xD7A3), (0xD7B0, 0xD7FF))  # jamo, syllables
TRUETYPE = b"\x00\x01\x00\x00"  # a TrueType font's first four bytes


def hangul_letters(text: str) -> str:
    """The distinct Hangul characters of ``text`` (:data:`HANGUL`'s blocks), in code point order."""
    return "".join(sorted({c for c in text if any(lo <= ord(c) <= hi for lo, hi in HANGUL)}))


def unicode_range() -> str:
    """:data:`HANGUL` as CSS ``unicode-range`` writes it."""
    return ",".join(f"U+{lo:04X}-{hi:04X}" for lo, hi in HANGUL)


def subset_font(font: bytes, letters: str) -> bytes:
    """``font`` (a TrueType file) cut down to the glyphs of ``letters``: no hinting, no layout features (Hangul
    syllables are whole glyphs)."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    logging.getLogger("fontTools").setLevel(logging.ERROR)  # "TSI0 NOT subset; dropped": hinting sources, unused
    options = subset.Options()
    options.hinting = False
    options.layout_features = []
    face = TTFont(io.BytesIO(font), lazy=True, recalcTimestamp=False)  # the same bytes for the same letters
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=letters)
    subsetter.subset(face)
    out = io.BytesIO()
    face.save(out)
    return out.getvalue()


def cached_subset(font: Path, letters: str, cache: Path) -> bytes:
    """:func:`subset_font` of the file ``font``, kept in ``cache`` under a digest of the font and ``letters``."""
    data = font.read_bytes()
    key = hashlib.sha256(data + letters.encode("utf-8")).hexdigest()[:32]
    path = cache / f"{key}.ttf"
    if path.is_file() and (kept := path.read_bytes()).startswith(TRUETYPE):
        return kept
    cut = subset_font(data, letters)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_bytes(cut)
    except (OSError, ConvlensError):  # a read-only cache: the page still gets its font, cut again next time
        pass
    return cut


def hangul_font_face(text: str) -> str:
    """The ``@font-face`` rule of :data:`FAMILY` holding the Hangul of ``text``; ``""`` where ``text`` has none or
    NanumGothic is not installed (the page then relies on the machine's fonts, as before)."""
    letters = hangul_letters(text)
    if not letters:
        return ""
    try:
        font = font_file("ko")
    except ConvlensError:
        return ""
    cut = cached_subset(font, letters, cache_dir() / "fonts")
    url = "data:font/ttf;base64," + base64.b64encode(cut).decode("ascii")
    sources = ", ".join([*(f'local("{name}")' for name in LOCAL), f'url({url}) format("truetype")'])
    rule = f'font-family: "{FAMILY}"; src: {sources}; unicode-range: {unicode_range()};'
    return f"@font-face {{ {rule} }}"
