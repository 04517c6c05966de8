"""``dvc.lock`` holds the default pipeline's stages and nothing else.

DVC never drops the entry of a stage that left ``dvc.yaml`` (renamed, split, or made opt-in by ``analyses``), and it
re-reads and rewrites the whole file after every stage it runs: stale entries only make each rerun slower.
"""

import yaml

from tests.support.helpers import PROJECT


def test_dvc_lock_holds_exactly_the_stages_of_the_default_pipeline():
    from dvc.repo import Repo

    with Repo(str(PROJECT)) as repo:
        current = {stage.addressing for stage in repo.index.stages}
    locked = set(yaml.safe_load((PROJECT / "dvc.lock").read_text(encoding="utf-8"))["stages"])
    assert "report" in current and not any(s.startswith(("activation_max@", "gradcam@", "train@")) for s in current)
    assert locked - current == set(), (
        "stale entries (DVC never drops them): `python -m convlens tidy` drops them (docs/pipeline.md)"
    )
    assert current - locked == set(), "stages never reproduced: run `dvc repro` and commit dvc.lock"
