"""The render tests' shared fixture."""

from __future__ import annotations

import pytest

from convlens.render import analyses as figures_analyses
from convlens.render import figures


@pytest.fixture
def drawn(monkeypatch):
    """Every figure saved, as ``(figure, path, dpi)``; the real save still writes the PNG."""
    saved = []
    real = figures.save_figure

    def save(fig, path, dpi):
        saved.append((fig, path, dpi))
        real(fig, path, dpi)

    monkeypatch.setattr(figures, "save_figure", save)
    monkeypatch.setattr(figures_analyses, "save_figure", save)
    return saved
