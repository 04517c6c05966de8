"""Unit tests of convlens.data."""
