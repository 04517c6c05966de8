"""Unit tests of convlens.cli."""
