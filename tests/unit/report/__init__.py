"""Unit tests of convlens.report."""
