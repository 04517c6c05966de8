"""The commands that are not DVC stages (they read what DVC recorded, or write ``params.yaml``), run as
``python -m convlens <command>``: see ``convlens/__main__.py``."""
