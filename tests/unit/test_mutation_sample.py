"""The estimate a partial mutation run reports (tools/mutation_sample.py), by hand-counted cases."""

from dataclasses import dataclass
from pathlib import Path

import pytest

from tools import mutation_sample
from tools.mutation_sample import NOT_CHECKED, Sample

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class _Mutant:
    name: str
    status: str

    @property
    def detected(self) -> bool:
        return self.status == "killed"


def _run(statuses: dict[str, str]) -> list[_Mutant]:
    return [_Mutant(name, status) for name, status in statuses.items()]


def test_a_draw_is_uniform_over_the_unchecked_and_repeatable() -> None:
    mutants = _run({f"m{i}": NOT_CHECKED if i % 2 else "killed" for i in range(40)})

    first = mutation_sample.draw(mutants, 5, seed=3)

    assert first == mutation_sample.draw(mutants, 5, seed=3)
    assert first.population == {f"m{i}" for i in range(1, 40, 2)}
    assert len(set(first.names)) == 5
    assert set(first.names) <= first.population
    assert len(mutation_sample.draw(mutants, 99, seed=3).names) == 20


def test_the_checked_count_as_they_are_and_the_unchecked_at_the_sample_s_rate() -> None:
    # 10 mutants: 4 checked before the draw (3 killed); 6 in the population, 4 of them sampled,
    # of which 3 are checked now (2 killed): 3 + 6 x 2/3 = 7 of 10.
    mutants = _run(
        {"a": "killed", "b": "killed", "c": "killed", "d": "survived"}
        | {"p1": "killed", "p2": "killed", "p3": "survived", "p4": NOT_CHECKED}
        | {"p5": NOT_CHECKED, "p6": NOT_CHECKED}
    )
    sample = Sample(1, frozenset({"p1", "p2", "p3", "p4", "p5", "p6"}), ("p1", "p2", "p3", "p4"))

    found = mutation_sample.estimate(mutants, sample)

    assert found is not None
    assert (found.checked, found.detected) == (3, 2)
    assert found.score == pytest.approx(0.7)
    assert 0.3 + 0.6 * 0.0 <= found.low < found.score < found.high <= 0.3 + 0.6 * 1.0


@pytest.mark.parametrize(
    ("detected", "checked", "low", "high"),
    # Wilson's interval at z = 1.96, as statistics references tabulate it.
    [(0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (81, 100, 0.7222, 0.8749)],
)
def test_the_interval_is_wilson_s(detected: int, checked: int, low: float, high: float) -> None:
    assert mutation_sample._wilson(detected, checked) == pytest.approx((low, high), abs=1e-4)


def test_no_estimate_before_a_sampled_mutant_is_checked() -> None:
    mutants = _run({"a": "killed", "p1": NOT_CHECKED})

    assert mutation_sample.estimate(mutants, Sample(1, frozenset({"p1"}), ("p1",))) is None


def test_a_sample_survives_its_file(tmp_path: Path) -> None:
    sample = Sample(7, frozenset({"x", "y"}), ("y",))
    path = tmp_path / "sample.json"

    mutation_sample.save(sample, path)

    assert mutation_sample.load(path) == sample
