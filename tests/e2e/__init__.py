"""End-to-end runs: real `dvc repro` / `dvc exp run`, the README's and docs' commands, a browser."""
