"""``mutmut results --all true | python -m bench.mutation_sample K [MODULE ...]``: a seeded 1-in-K sample.

Prints the names of about one in K of the mutants mutmut has not run yet, drawn per module (at least one from each
module that has any left), so ``mutmut run $(…)`` estimates the whole library's score in 1/K of the time
(``make mutate SAMPLE=K``, docs/testing.md). The same results and K give the same sample.
"""

from __future__ import annotations

import math
import random
import sys
from collections import defaultdict
from collections.abc import Iterable

NOT_RUN = "not checked"
SEED = "convlens-mutation-sample"


def module_of(mutant: str) -> str:
    """``convlens.cli.compare.x_main__mutmut_3`` → ``cli.compare``: the dotted path before the function."""
    parts = mutant.split(".")
    return ".".join(parts[1:-1])


def not_run(results: Iterable[str], modules: Iterable[str] = ()) -> dict[str, list[str]]:
    """The mutants mutmut has not run, by module, from ``mutmut results --all true`` lines; only ``modules`` if any."""
    wanted = set(modules)
    by_module: dict[str, list[str]] = defaultdict(list)
    for line in results:
        name, _, status = line.strip().rpartition(": ")
        if status == NOT_RUN and (not wanted or module_of(name) in wanted):
            by_module[module_of(name)].append(name)
    return dict(by_module)


def sample(by_module: dict[str, list[str]], k: int) -> list[str]:
    """``ceil(n / k)`` mutants of each module's ``n``, drawn with a seed of the module's name, sorted."""
    if k < 1:
        raise ValueError(f"the sample is one in K mutants, so K must be at least 1, not {k}")
    drawn = []
    for module, names in by_module.items():
        rng = random.Random(f"{SEED}:{module}")
        drawn += rng.sample(sorted(names), math.ceil(len(names) / k))
    return sorted(drawn)


def main(argv: list[str]) -> int:
    if not argv or not argv[0].isdigit():
        print("usage: mutmut results --all true | python -m bench.mutation_sample K [MODULE ...]", file=sys.stderr)
        return 2
    try:
        names = sample(not_run(sys.stdin, argv[1:]), int(argv[0]))
    except ValueError as err:
        print(f"mutation_sample: error: {err}", file=sys.stderr)
        return 2
    if not names:
        print(
            "mutation_sample: error: no mutant left to run (or no mutants/ yet): "
            "run `make mutate MODULES=<one module>` once to generate them",
            file=sys.stderr,
        )
        return 1
    print("\n".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
