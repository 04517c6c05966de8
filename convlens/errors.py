"""The one error type a stage reports as a single clear line."""


class ConvlensError(Exception):
    """Bad input or config: the message says what is wrong and what to do."""
