"""The commands that are not DVC stages (they read what DVC recorded, or write ``params.yaml``), run as
``python -m convlens <command>``: see ``convlens/__main__.py``.

May import every subpackage (the top layer, below ``convlens.__main__`` only).
"""

from __future__ import annotations

import codecs
import io
import sys
from typing import TypeGuard

UNENCODABLE = "convlens.unencodable"  # the error handler of a stdout that cannot encode every character


def escape_or_replace(error: UnicodeError) -> tuple[str | bytes, int]:
    """One character an encoding cannot hold: the byte it stood for if it is a lone surrogate that a non-UTF-8
    decode made (what ``surrogateescape`` writes back), else ``?`` (what ``replace`` writes)."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    code = ord(error.object[error.start])
    return (bytes([code - 0xDC00]) if 0xDC80 <= code <= 0xDCFF else "?"), error.start + 1


codecs.register_error(UNENCODABLE, escape_or_replace)


def can_fail(stream: object) -> TypeGuard[io.TextIOWrapper]:
    """Whether printing to ``stream`` can raise ``UnicodeEncodeError``: a text stream whose encoding is not UTF-8
    (``LC_ALL=C``, ``PYTHONIOENCODING=ascii``) and whose errors handler raises (``strict``, ``surrogateescape``)."""
    return (
        isinstance(stream, io.TextIOWrapper)
        and codecs.lookup(stream.encoding).name != "utf-8"
        and stream.errors in ("strict", "surrogateescape")
    )


def tolerant_output() -> None:
    """Make stdout and stderr print ``?`` for what their encoding cannot hold, instead of a traceback."""
    for stream in (sys.stdout, sys.stderr):
        if can_fail(stream):
            stream.reconfigure(errors=UNENCODABLE)
