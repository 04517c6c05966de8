"""Unit tests of convlens.pipeline."""
