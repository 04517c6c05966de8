"""Test shim: SIGKILL this process at the N-th numpy.save or before the N-th rename of an output; with
``CONVLENS_PAUSE_DIR`` set, pause there instead: create ``paused`` in that folder, wait until ``go`` exists."""

import os
import signal
import time
from pathlib import Path

_when, _stage = os.environ.get("CONVLENS_KILL_AT"), os.environ.get("CONVLENS_KILL_STAGE")
if _when and (not _stage or os.environ.get("DVC_STAGE") == _stage):
    _what, _n = _when.split(":")
    _calls = [0]

    def _tick():
        _calls[0] += 1
        if _calls[0] >= int(_n) and os.environ.get("CONVLENS_PAUSE_DIR"):
            folder = Path(os.environ["CONVLENS_PAUSE_DIR"])
            if _calls[0] == int(_n):
                (folder / "paused").touch()
                deadline = time.monotonic() + 300
                while not (folder / "go").exists() and time.monotonic() < deadline:
                    time.sleep(0.1)
        elif _calls[0] >= int(_n):
            os.kill(os.getpid(), signal.SIGKILL)

    if _what == "save":
        import numpy

        _save = numpy.save

        def _killing_save(file, arr, *args, **kwargs):
            _save(file, arr, *args, **kwargs)
            _tick()

        numpy.save = _killing_save
    else:
        _replace = os.replace

        def _output(path):
            return "/outputs/" in str(path) and ".convlens-tmp." not in str(path)

        def _killing_replace(src, dst, *args, **kwargs):
            if _output(src) or _output(dst):  # an output renamed into place, or its old version moved aside
                _tick()
            return _replace(src, dst, *args, **kwargs)

        os.replace = _killing_replace
