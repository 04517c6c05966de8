"""The DVC stages, ``python -m stages.<name>``: thin scripts over the library in ``convlens``."""
