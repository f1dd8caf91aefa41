"""What fails `make mutation` (tools/mutation_report.py): hand-built runs, each with one flaw."""

from pathlib import Path
from typing import Any

import pytest

from tools.mutation_report import Mutant, render

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
THIS_TEST = (
    "tests/unit/test_mutation_report.py::test_a_run_whose_survivors_are_all_explained_passes"
)


@pytest.fixture(autouse=True)
def _at_the_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verdicts name tests by their path from the project's root, as `make mutation` runs."""
    monkeypatch.chdir(ROOT)


def _mutant(number: int, status: str, old: str = "", new: str = "") -> Mutant:
    diff = f"--- src/app/m.py\n+++ src/app/m.py\n@@ -1 +1 @@\n-    {old}\n+    {new}" if old else ""
    return Mutant(f"app.m.x_f__mutmut_{number}", "app.m", "f", status, diff)


def _verdict(old: str, new: str, **outcome: str) -> dict[str, Any]:
    return {"function": "f", "removed": [old], "added": [new], **outcome}


def _killed(count: int) -> list[Mutant]:
    """Detected each way: a timeout is a kill, and so is a mutant strict mypy rejects."""
    ways = ("killed", "caught by type check", "timeout")
    return [_mutant(100 + number, ways[number % 3]) for number in range(count)]


SURVIVOR = _mutant(1, "survived", "return a + 1", "return a + 2")
EXPLAINED = _verdict("return a + 1", "return a + 2", equivalent="a is never read")


def test_a_run_whose_survivors_are_all_explained_passes() -> None:
    report, problems = render([SURVIVOR, *_killed(9)], [EXPLAINED])

    assert problems == []
    assert "**Score: 90.0%** of 10 mutants killed (9)" in report
    assert "| `app.m` | 10 | 9 | 1 | 0 | 90.0% |" in report
    assert "Verdict: equivalent: a is never read" in report
    assert "-    return a + 1\n+    return a + 2" in report


def test_a_score_just_under_the_target_fails() -> None:
    survivors = [_mutant(n, "survived", f"return a + {n}", "return b") for n in (1, 2)]
    verdicts = [_verdict(f"return a + {n}", "return b", equivalent="why") for n in (1, 2)]

    _, problems = render([*survivors, *_killed(17)], verdicts)

    assert problems == ["score 89.5% is below the target of 90%"]


def test_a_survivor_without_a_verdict_fails_and_says_so() -> None:
    report, problems = render([SURVIVOR, *_killed(20)], [])

    assert problems == ["1 survivors have no verdict in mutation/verdicts.toml"]
    assert "Verdict: **no verdict yet**" in report


def test_a_verdict_matches_by_what_it_changes_not_by_mutmut_s_number() -> None:
    renumbered = _mutant(57, "survived", "return a + 1", "return a + 2")
    other_change = _mutant(58, "survived", "return a + 1", "return a - 1")

    _, problems = render([renumbered, other_change, *_killed(20)], [EXPLAINED])

    assert problems == ["1 survivors have no verdict in mutation/verdicts.toml"]


def test_a_survivor_its_verdict_says_is_killed_fails() -> None:
    claimed = _verdict("return a + 1", "return a + 2", killed_by=THIS_TEST)

    _, problems = render([SURVIVOR, *_killed(20)], [claimed])

    assert problems == [
        f"app.m.x_f__mutmut_1 survives, yet mutation/verdicts.toml says {THIS_TEST}"
    ]


def test_a_verdict_naming_a_test_that_does_not_exist_fails() -> None:
    killed = _mutant(1, "killed", "return a + 1", "return a + 2")
    gone = "tests/unit/test_mutation_report.py::test_renamed_long_ago"
    verdict = _verdict("return a + 1", "return a + 2", killed_by=gone)

    _, problems = render([killed, *_killed(20)], [verdict])

    assert problems == [f"mutation/verdicts.toml names {gone}, which is no test"]


def test_a_killed_verdict_is_listed_as_a_kill_and_a_stale_one_fails() -> None:
    killed = _mutant(1, "killed", "return a + 1", "return a + 2")
    kill = _verdict("return a + 1", "return a + 2", killed_by=THIS_TEST)
    stale = _verdict("return a * 1", "return a * 2", killed_by=THIS_TEST)

    report, problems = render([killed, *_killed(20)], [kill, stale])

    assert problems == [
        "1 verdicts in mutation/verdicts.toml match no mutant (their code changed): remove them"
    ]
    kills = report.split("## Survivors of earlier runs killed by new tests (1)")[1]
    assert kills.split("## ")[0].strip() == (
        f"- `f`: `return a + 1` -> `return a + 2`: `{THIS_TEST}`"
    )
    assert "## Verdicts that match no mutant of this run\n\n- `f`: `return a * 1`" in report


def test_a_run_that_did_not_finish_fails_and_scores_what_it_checked() -> None:
    waiting = [_mutant(n, "not checked", f"return {n}", "return None") for n in (1, 2)]

    report, problems = render([*waiting, *_killed(8)], [])

    assert problems == [
        "score 80.0% is below the target of 90%",
        "2 mutants not checked: the run did not finish",
    ]
    assert "- **Partial run**: 2 mutants not checked; killed among the checked ones: 100.0%." in (
        report
    )
