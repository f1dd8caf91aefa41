"""The score of a mutation run that cannot finish, estimated from a uniform sample of what is left.

mutmut checks the mutants with the cheapest tests first, so a partial run's kill rate describes
those modules, not the suite. ``draw`` picks mutants uniformly (seeded) from the ones not yet
checked and stores them, with that population, in ``mutants/sample.json``; ``make
mutation-sample`` has mutmut check exactly those. ``estimate`` then gives the whole run's score:
what is checked outside the population counts as it is, and the population counts at the
sample's kill rate, with a 95% Wilson interval around it.

No mutmut import here: it works on any objects with ``name``, ``status`` and ``detected``, so the
suite's own venv tests it.
"""

import argparse
import json
import math
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

SAMPLE = Path("mutants/sample.json")
NOT_CHECKED = "not checked"
Z_95 = 1.959964


class Checked(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def detected(self) -> bool: ...


@dataclass(frozen=True)
class Sample:
    seed: int
    population: frozenset[str]
    """The mutants not checked when the sample was drawn."""
    names: tuple[str, ...]


@dataclass(frozen=True)
class Estimate:
    checked: int
    """Sampled mutants checked so far (the rest of the sample still waits)."""
    detected: int
    score: float
    low: float
    high: float


def draw(mutants: Sequence[Checked], size: int, seed: int) -> Sample:
    population = sorted(mutant.name for mutant in mutants if mutant.status == NOT_CHECKED)
    names = random.Random(seed).sample(population, min(size, len(population)))  # noqa: S311
    return Sample(seed, frozenset(population), tuple(names))


def save(sample: Sample, path: Path = SAMPLE) -> None:
    document = {"seed": sample.seed, "population": sorted(sample.population)}
    path.write_text(json.dumps({**document, "names": list(sample.names)}, indent=1) + "\n")


def load(path: Path = SAMPLE) -> Sample | None:
    if not path.exists():
        return None
    document = json.loads(path.read_text())
    return Sample(document["seed"], frozenset(document["population"]), tuple(document["names"]))


def _wilson(detected: int, checked: int) -> tuple[float, float]:
    """The 95% interval of a proportion that stays within [0, 1] for small or extreme samples."""
    rate = detected / checked
    spread = Z_95**2 / checked
    centre = (rate + spread / 2) / (1 + spread)
    half = Z_95 * math.sqrt(rate * (1 - rate) / checked + spread / (4 * checked)) / (1 + spread)
    return max(0.0, centre - half), min(1.0, centre + half)


def estimate(mutants: Sequence[Checked], sample: Sample) -> Estimate | None:
    """None until at least one sampled mutant is checked."""
    by_name = {mutant.name: mutant for mutant in mutants}
    sampled = [by_name[name] for name in sample.names if name in by_name]
    checked = [mutant for mutant in sampled if mutant.status != NOT_CHECKED]
    if not checked:
        return None
    detected = sum(mutant.detected for mutant in checked)
    outside = [mutant for mutant in mutants if mutant.name not in sample.population]
    known = sum(mutant.detected for mutant in outside)
    population = len(mutants) - len(outside)
    low, high = _wilson(detected, len(checked))

    def score(rate: float) -> float:
        return (known + rate * population) / len(mutants)

    return Estimate(len(checked), detected, score(detected / len(checked)), score(low), score(high))


def main(argv: list[str] | None = None) -> int:
    from tools.mutation_report import load_mutants  # mutmut's venv only

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("size", type=int)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    sample = draw(load_mutants(), args.size, args.seed)
    save(sample)
    print(" ".join(sample.names))
    print(f"{SAMPLE}: {len(sample.names)} of {len(sample.population)} unchecked", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
