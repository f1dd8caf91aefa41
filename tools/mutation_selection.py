"""The tests ``make mutation`` runs against each mutant: the fast, in-process ones.

mutmut forks its own process once per mutant and runs, in it, the tests that reached the mutated
function. A test that starts processes, servers or the SAM CLI would run the original code (mutmut
swaps functions inside its own process only), cost seconds per mutant, and fork from a process
full of threads. So this plugin (``-p tools.mutation_selection``, see ``[tool.mutmut]`` in
pyproject.toml) keeps:

* when the suite's tier markers ``unit`` and ``integration`` are registered, only the tests that
  carry one of them (the same as ``-m "unit or integration"``); before the tiers exist, every test;
* minus the files and tests in :data:`SPAWNING` and :data:`READS_SOURCE`, by file name, so it
  holds wherever those files move (``tests/``, ``tests/unit/``, ``tests/integration/``, ...).

It also orders them: unit tests first, then the rest, each file's tests together and in the
order they are written. mutmut hands each mutant's tests over in no particular order and stops at
the first failure (``-x``), so a mutant that a millisecond unit test kills no longer waits for
moto stacks to be built first, and a file's module fixtures are built once per mutant.

And it guards the selection: a selected test that still starts a process fails, naming itself, so
a new spawning test shows up as a failed clean run instead of a silently slower, blind mutation run.
"""

import sys
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

TIERS = ("unit", "integration")

SPAWNING: dict[str, frozenset[str] | None] = {
    # file name: None for the whole file, else the names of its tests that spawn
    "test_sam_init.py": None,
    "test_local_invoke.py": None,
    "test_soak.py": None,
    "test_bench_smoke.py": None,
    "test_scanners.py": None,
    "test_delivery.py": None,
    "test_deep_nesting.py": frozenset(
        {"test_every_deep_body_is_refused_with_a_message_on_every_python"}
    ),
    "test_least_privilege_proven.py": None,
    "test_import_budget.py": None,
    "test_template.py": frozenset({"test_init_succeeds_with_exactly_the_template_environment"}),
}
"""Tests that start processes (Lambda workers, moto servers, the SAM CLI, scanners)."""

READS_SOURCE: dict[str, frozenset[str]] = {
    "test_template.py": frozenset({"test_every_variable_the_code_reads_is_set_by_the_template"}),
}
"""Tests that parse the text of src/app: in mutants/ they would read mutmut's rewrite (every
mutant's version of each function side by side), not a program, and no mutant changes what they
see when it runs."""

_SPAWN_EVENTS = frozenset(
    {"subprocess.Popen", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.system"}
)
_running: list[str] = []


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Whole files are not even imported (they may need what mutants/ does not copy)."""
    if collection_path.is_file() and SPAWNING.get(collection_path.name, frozenset()) is None:
        return True
    return None


def _excluded(item: pytest.Item) -> bool:
    file_name = Path(str(item.path)).name
    names = SPAWNING.get(file_name, frozenset())
    name = item.originalname  # type: ignore[attr-defined]
    return names is None or name in names or name in READS_SOURCE.get(file_name, frozenset())


def _in_tiers(item: pytest.Item) -> bool:
    return any(item.get_closest_marker(tier) for tier in TIERS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    registered = {line.split(":")[0].strip() for line in config.getini("markers")}
    by_tier = set(TIERS) <= registered
    kept = [item for item in items if (not by_tier or _in_tiers(item)) and not _excluded(item)]
    dropped = [item for item in items if item not in kept]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = sorted(kept, key=_cheapest_first)


def _cheapest_first(item: pytest.Item) -> tuple[bool, str, int]:
    _path, line, _name = item.location
    return (item.get_closest_marker("unit") is None, str(item.path), line or 0)


def _refuse_spawns(event: str, _args: tuple[Any, ...]) -> None:
    if _running and event in _SPAWN_EVENTS:
        raise RuntimeError(
            f"{_running[-1]} starts a process ({event}): add it to SPAWNING in {__file__}"
        )


sys.addaudithook(_refuse_spawns)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    _running.append(item.nodeid)
    try:
        return (yield)
    finally:
        _running.pop()
