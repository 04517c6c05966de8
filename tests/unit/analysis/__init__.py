"""Unit tests of convlens.analysis."""
