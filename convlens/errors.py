"""The one error type a stage reports as a single clear line, and how its messages write sizes."""


class ConvlensError(Exception):
    """Bad input or config: the message says what is wrong and what to do."""


def size_text(n: int) -> str:
    """``n`` bytes as a message says it, in the largest whole unit: ``16 MiB``, ``1.5 GiB``, ``300 bytes``."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n // scale} {unit}" if n % scale == 0 else f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
