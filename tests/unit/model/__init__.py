"""Unit tests of convlens.model."""
