"""Unit tests, one folder per convlens subpackage: functions called directly on small arrays and files."""
