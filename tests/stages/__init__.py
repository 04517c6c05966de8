"""Stage tests: each stage's run(cfg, root) on tiny data, in process or as `python -m stages.<name>`."""
