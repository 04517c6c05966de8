"""The DVC stages, ``python -m stages.<name>``: thin scripts over the library in ``convlens``."""

import sys

from convlens.pipeline.interrupt import interrupt_hook

sys.excepthook = interrupt_hook  # first: a Ctrl-C while a stage imports its libraries is one line too
