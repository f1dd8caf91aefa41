"""Write mutation/report.md from the last ``make mutation``: the score, per module, and every
surviving mutant with its diff and verdict.

Runs in ``.venv-mutation`` (it reads mutmut's results in ``mutants/`` through mutmut's own code;
only :func:`load_mutants` imports mutmut, so the rest is tested in the suite's own venv).
Verdicts live in ``mutation/verdicts.toml``, one ``[[mutant]]`` table each::

    function = "ItemsTable.get"    # the function or Class.method, without its module
    removed = ["the changed lines of the original, stripped"]
    added = ["the same lines in the mutant, stripped"]
    equivalent = "why no test can tell the mutant from the original"   # or:
    killed_by = "tests/test_mutation_items.py::test_name"

A verdict names the mutation by what it changes, not by mutmut's numbering or the module's path,
so it still applies after a module moves or its other functions change. ``--draft`` prints such a
table for each survivor that has none, to fill in. The script fails (exit 1) when the score is
below the target, a survivor has no verdict, a ``killed_by`` mutant survives or its test is gone,
or a verdict matches no mutant at all (its code changed, so it no longer says anything).
"""

import argparse
import os
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from tools import mutation_sample

TARGET = 0.90
DETECTED = ("killed", "timeout", "caught by type check")
"""A timeout is a kill: the tests did not pass (mutmut stops them at 4x their clean time plus
15 s). So is a mutant strict mypy rejects: ``make types`` would not let it land."""
VERDICTS = Path("mutation/verdicts.toml")
REPORT = Path("mutation/report.md")
WALL_SECONDS = Path("mutants/wall-seconds")


@dataclass(frozen=True)
class Mutant:
    name: str
    module: str
    function: str
    status: str
    diff: str

    @property
    def removed(self) -> list[str]:
        return _changed(self.diff, "-")

    @property
    def added(self) -> list[str]:
        return _changed(self.diff, "+")

    @property
    def detected(self) -> bool:
        return self.status in DETECTED


def _changed(diff: str, sign: str) -> list[str]:
    return [
        line[1:].strip()
        for line in diff.splitlines()
        if line.startswith(sign) and not line.startswith(sign * 3)
    ]


def load_mutants(judged_functions: frozenset[str] = frozenset()) -> list[Mutant]:
    """Every mutant of the last run, with its diff when it survived or its function has a
    verdict (so a verdict whose mutant is now killed is told from one that matches nothing)."""
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.file_utils import walk_mutatable_files
    from mutmut.utils.format_utils import orig_function_and_class_names_from_key

    mutants = []
    for path in sorted(walk_mutatable_files()):
        data = SourceFileMutationData(path=path)
        data.load()
        module = str(path.with_suffix("")).removeprefix("src" + os.sep).replace(os.sep, ".")
        for name, exit_code in sorted(data.exit_code_by_key.items(), key=_natural):
            status = status_by_exit_code[exit_code]
            function, class_name = orig_function_and_class_names_from_key(name)
            function = f"{class_name}.{function}" if class_name else function
            wanted = status not in DETECTED or function in judged_functions
            diff = get_diff_for_mutant(name, path=path) if wanted else ""
            mutants.append(Mutant(name, module, function, status, diff))
    return mutants


def _natural(item: tuple[str, Any]) -> tuple[str, int]:
    stem, _, number = item[0].rpartition("__mutmut_")
    return stem, int(number)


def _matches(entry: dict[str, Any], mutant: Mutant) -> bool:
    return (
        entry["function"] == mutant.function
        and entry["removed"] == mutant.removed
        and entry["added"] == mutant.added
    )


def _verdict(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "**no verdict yet**"
    if "killed_by" in entry:
        return f"killed by `{entry['killed_by']}`"
    return f"equivalent: {entry['equivalent']}"


def _draft(mutant: Mutant) -> str:
    def strings(lines: list[str]) -> str:
        return "[" + ", ".join(_toml_string(line) for line in lines) + "]"

    return (
        f"[[mutant]]  # {mutant.name}\n"
        f"function = {_toml_string(mutant.function)}\n"
        f"removed = {strings(mutant.removed)}\n"
        f"added = {strings(mutant.added)}\n"
        'equivalent = ""\n'
    )


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _score(mutants: list[Mutant]) -> str:
    detected = sum(mutant.detected for mutant in mutants)
    return f"{detected / len(mutants):.1%}" if mutants else "n/a"


def render(
    mutants: list[Mutant],
    entries: list[dict[str, Any]],
    sample: mutation_sample.Sample | None = None,
    mutmut_version: str = "(version not given)",
) -> tuple[str, list[str]]:
    """The report, and what fails the run."""
    problems = []
    verdict_of = {
        mutant.name: next((entry for entry in entries if _matches(entry, mutant)), None)
        for mutant in mutants
    }
    survivors = [mutant for mutant in mutants if not mutant.detected]
    detected = len(mutants) - len(survivors)
    score = detected / len(mutants) if mutants else 0.0
    if score < TARGET:
        problems.append(f"score {score:.1%} is below the target of {TARGET:.0%}")
    unchecked = [mutant for mutant in mutants if mutant.status == mutation_sample.NOT_CHECKED]
    if unchecked:
        problems.append(f"{len(unchecked)} mutants not checked: the run did not finish")
    survivors = [mutant for mutant in survivors if mutant.status != mutation_sample.NOT_CHECKED]
    unexplained = [mutant for mutant in survivors if verdict_of[mutant.name] is None]
    if unexplained:
        problems.append(f"{len(unexplained)} survivors have no verdict in {VERDICTS}")
    for mutant in survivors:
        entry = verdict_of[mutant.name]
        if entry is not None and "killed_by" in entry:
            problems.append(f"{mutant.name} survives, yet {VERDICTS} says {entry['killed_by']}")
    problems += [
        f"{VERDICTS} names {entry['killed_by']}, which is no test"
        for entry in entries
        if "killed_by" in entry and not _test_exists(entry["killed_by"])
    ]
    unused = [entry for entry in entries if not any(_matches(entry, mutant) for mutant in mutants)]
    if unused:
        problems.append(
            f"{len(unused)} verdicts in {VERDICTS} match no mutant (their code changed): "
            "remove them"
        )

    wall = f"{int(WALL_SECONDS.read_text())} s" if WALL_SECONDS.exists() else "not recorded"
    lines = [
        "# Mutation testing of src/app",
        "",
        "Written by `make mutation` (tools/mutation_report.py); do not edit by hand. Verdicts: "
        f"`{VERDICTS}`.",
        "",
        f"- **Score: {score:.1%}** of {len(mutants)} mutants killed ({detected}); "
        f"target {TARGET:.0%}.",
        f"- mutmut {mutmut_version}, Python {sys.version.split()[0]}, the fast in-process "
        "tests (tools/mutation_selection.py); last full run's wall time: " + wall + ".",
        f"- Statuses: {_statuses(mutants)}.",
        *(
            [
                f"- **Partial run**: {len(unchecked)} mutants not checked; killed among the "
                f"checked ones: {detected / (len(mutants) - len(unchecked)):.1%}."
            ]
            if unchecked and len(unchecked) < len(mutants)
            else []
        ),
        *_estimate_lines(mutants, sample),
        "",
        "## Per module",
        "",
        "| module | mutants | killed | survived | not checked | score |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for module in dict.fromkeys(mutant.module for mutant in mutants):
        of_module = [mutant for mutant in mutants if mutant.module == module]
        killed = sum(mutant.detected for mutant in of_module)
        waiting = sum(mutant.status == mutation_sample.NOT_CHECKED for mutant in of_module)
        lines.append(
            f"| `{module}` | {len(of_module)} | {killed} | {len(of_module) - killed - waiting} "
            f"| {waiting} | {_score(of_module)} |"
        )
    lines += ["", f"## Surviving mutants ({len(survivors)})", ""]
    if not survivors:
        lines.append("None.")
    for mutant in survivors:
        lines += [
            f"### `{mutant.name}` ({mutant.status})",
            "",
            f"Verdict: {_verdict(verdict_of[mutant.name])}",
            "",
            "```diff",
            mutant.diff,
            "```",
            "",
        ]
    killers = [
        entry
        for entry in entries
        if "killed_by" in entry
        and any(_matches(entry, mutant) and mutant.detected for mutant in mutants)
    ]
    lines += ["", f"## Survivors of earlier runs killed by new tests ({len(killers)})", ""]
    lines += [
        f"- `{entry['function']}`: {_change(entry)}: `{entry['killed_by']}`" for entry in killers
    ]
    if unused:
        lines += ["", "## Verdicts that match no mutant of this run", ""]
        lines += [f"- `{entry['function']}`: {_change(entry)}" for entry in unused]
    if problems:
        lines += ["", "## Problems", ""] + [f"- {problem}" for problem in problems]
    return "\n".join(lines).rstrip() + "\n", problems


def _estimate_lines(mutants: list[Mutant], sample: mutation_sample.Sample | None) -> list[str]:
    if sample is None or (found := mutation_sample.estimate(mutants, sample)) is None:
        return []
    return [
        f"- **Estimated score: {found.score:.1%}** (95% interval {found.low:.1%} to "
        f"{found.high:.1%}): a uniform sample (seed {sample.seed}) of the "
        f"{len(sample.population)} mutants not checked when it was drawn, {found.checked} of "
        f"its {len(sample.names)} checked, {found.detected} of those killed; the rest as checked."
    ]


def _test_exists(node_id: str) -> bool:
    """``path::test_name`` names a test function defined in that file (a moved or renamed
    test would otherwise leave a verdict pointing nowhere)."""
    path, _, name = node_id.partition("::")
    source = Path(path)
    return bool(name) and source.is_file() and f"def {name.split('[')[0]}(" in source.read_text()


def _change(entry: dict[str, Any]) -> str:
    removed, added = " / ".join(entry["removed"]), " / ".join(entry["added"])
    return f"`{removed}` -> `{added}`"


def _statuses(mutants: list[Mutant]) -> str:
    counts = Counter(mutant.status for mutant in mutants)
    return ", ".join(f"{status} {count}" for status, count in counts.most_common())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--draft", action="store_true", help="print verdict stubs for unexplained survivors"
    )
    args = parser.parse_args(argv)
    entries = tomllib.loads(VERDICTS.read_text())["mutant"] if VERDICTS.exists() else []
    mutants = load_mutants(frozenset(entry["function"] for entry in entries))
    if args.draft:
        for mutant in mutants:
            survived = mutant.status not in (*DETECTED, mutation_sample.NOT_CHECKED)
            if survived and not any(_matches(entry, mutant) for entry in entries):
                print(_draft(mutant))
        return 0
    report, problems = render(mutants, entries, mutation_sample.load(), version("mutmut"))
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(report)
    print(f"{REPORT}: {report.splitlines()[4].removeprefix('- ')}")
    for problem in problems:
        print(f"mutation: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
