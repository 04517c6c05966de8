"""Unit tests of convlens.render."""
