"""Pickles that can hold nothing but plain data and NumPy arrays: CIFAR's python batches, never unpickled as such.

:func:`load_plain` admits only numpy's ``ndarray``, ``dtype`` and ``_reconstruct`` (as NumPy 1 and 2 spell their
module); any other class or function a pickle names is refused with one line, before it is looked up, so no code
from the file ever runs.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np

from convlens.errors import ConvlensError

_RECONSTRUCT = ("numpy.core.multiarray", "numpy._core.multiarray")


class UnpickleError(ConvlensError):
    """A pickle that names anything but numpy arrays, or that is not a readable pickle."""


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """numpy's ``_reconstruct`` as its own pickles call it: an empty ndarray, filled by the pickle's state."""
    if subtype is not np.ndarray or tuple(shape) != (0,):
        raise pickle.UnpicklingError(
            f"_reconstruct({getattr(subtype, '__name__', subtype)!r}, {shape!r}) is not how numpy pickles an array"
        )
    return np.ndarray.__new__(np.ndarray, (0,), dtype)


_ALLOWED: dict[tuple[str, str], Any] = {
    **{(module, "_reconstruct"): _reconstruct for module in _RECONSTRUCT},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class PlainUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` knows only numpy's array classes."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which is not numpy data") from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("it holds a persistent reference, which is not data")


# Any of these from a hostile or cut pickle is "not a readable pickle", never a traceback.
_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    AttributeError,
    OverflowError,
    MemoryError,
    UnicodeDecodeError,
    RecursionError,
)


def load_plain(data: bytes, source: str, own: bool = False) -> Any:
    """The object pickled in ``data`` (Python 2 pickles too: strings as ``bytes``), if it is plain data and arrays
    (``own``: the archive is the user's, which the message tells them how to mend)."""
    try:
        return PlainUnpickler(io.BytesIO(data), encoding="bytes").load()
    except _ERRORS as e:
        reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise UnpickleError(
            f"{source} is not a plain data pickle ({reason}); refused without running it: {_fix(reason, own)}"
        ) from e


def _fix(reason: str, own: bool) -> str:
    """What makes a refused pickle readable: Python 3 pickles bytes with protocols 0-2 as ``_codecs.encode`` calls
    (an archive re-pickled), anything else is not an archive's batch: the original archive, or for the user's own
    (``own``) batches pickled as plain dicts of arrays."""
    if "_codecs.encode" in reason:
        return (
            "Python 3 pickles bytes that way with protocol 2 or lower; re-pickle your batches with protocol 3 or "
            "later (Python 3's default: pickle.dumps(batch))" + ("" if own else ", or use the original archive")
        )
    if own:
        return "pickle your batches as dicts of NumPy arrays, lists, str and int (pickle.dumps(batch))"
    return "use the original archive"
