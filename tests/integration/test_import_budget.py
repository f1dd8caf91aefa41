"""What each function's init imports, beyond what its baseline's imports, is its budget.

Cold init is the function's import, and every module imported costs at every cold start
(README "Performance": the functions hold within 1.15x of the bare baselines only while they
import no more than this). ``import_budget/<Function>.txt`` lists the modules each function's init
imports that its baseline (``bench/baseline/``: boto3 and the same clients) does not; a change
that adds one fails here with its name. If it is needed at init, rewrite the budgets with
``UPDATE_IMPORT_BUDGET=1 make test`` (or this file alone) and say in the commit why it is worth
its milliseconds; ``make bench-cold`` measures them. A module that left init fails here too,
until the budget is rewritten, so that no budget keeps room for what is gone.

Each init runs in a fresh ``python -I -S`` process from ``src/`` and this environment's packages
(the versions ``sam build`` ships), with Lambda's variables and no reachable endpoint.
"""

import os
import socket
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from bench.plain_init import BASELINES
from tests.conftest import LAMBDA_ENVIRONMENT
from tools.emulator import sam_template

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
BASELINE_DIR = ROOT / "bench" / "baseline"
BUDGETS = Path(__file__).with_name("import_budget")
UPDATE = os.environ.get("UPDATE_IMPORT_BUDGET") == "1"
HANDLERS = {
    logical_id: resource["Properties"]["Handler"]
    for logical_id, resource in sam_template.functions(sam_template.load()).items()
}
# What the child imports before the handler is left out of the difference: it is the same on
# both sides. It prints the garbage collector's state after init (collections during init, then
# whether it runs, then how many objects are frozen) and then one module per line: no json, which
# a function might not import.
CHILD = """
import gc, importlib, sys
sys.dont_write_bytecode = True
sys.path[:0] = sys.argv[2:]
collections = []
gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info))
before = set(sys.modules)
importlib.import_module(sys.argv[1].rpartition(".")[0])
imported = sorted(set(sys.modules) - before)
sys.stdout.write(f"{len(collections)} {gc.isenabled()} {gc.get_freeze_count()}\\n")
sys.stdout.write("\\n".join(imported))
"""
NEVER_AT_INIT = {
    "asyncio": "Powertools' event handler and batch utility bring it; no function needs it",
    "aws_lambda_powertools.event_handler": "every resolver it has: app.handlers.routing",
    "aws_lambda_powertools.utilities.batch": "asyncio and every data class: partial_batch_response",
    "aws_lambda_powertools.utilities.data_classes": "every event class of Powertools at once",
}
"""Packages no function imports at init, and why (README "Performance")."""


def _closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@dataclass(frozen=True)
class Init:
    """What one fresh process's init imported, and what the garbage collector did meanwhile."""

    modules: set[str]
    collections: int
    collector_enabled: bool
    frozen_objects: int


def _init(handler: str, code: Path, function_id: str) -> Init:
    paths = sysconfig.get_paths()
    packages = dict.fromkeys([paths["purelib"], paths["platlib"]])
    environment = {
        **LAMBDA_ENVIRONMENT,
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_FUNCTION_NAME": f"items-test-{function_id}",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "LAMBDA_TASK_ROOT": str(code),  # outside Lambda, Powertools' Tracer imports more
        "AWS_ENDPOINT_URL": _closed_port(),
        "_HANDLER": handler,  # as Lambda sets it: app.cold_start pauses the collector for it
    }
    completed = subprocess.run(
        [sys.executable, "-I", "-S", "-c", CHILD, handler, str(code), *packages],
        capture_output=True,
        text=True,
        env=environment,
        cwd=code,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    collector, *modules = completed.stdout.splitlines()
    collections, enabled, frozen = collector.split()
    return Init(set(modules), int(collections), enabled == "True", int(frozen))


@cache
def _inits() -> dict[str, tuple[Init, Init]]:
    """Each function's init and its baseline's, in fresh processes (run in parallel)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = {
            function_id: (
                pool.submit(_init, handler, SRC, function_id),
                pool.submit(_init, BASELINES[function_id], BASELINE_DIR, function_id),
            )
            for function_id, handler in HANDLERS.items()
        }
        return {
            key: (function.result(), baseline.result())
            for key, (function, baseline) in runs.items()
        }


def _measured() -> dict[str, set[str]]:
    """Each function's init imports that its baseline's does not."""
    return {
        function_id: function.modules - baseline.modules
        for function_id, (function, baseline) in _inits().items()
    }


def _budget_path(function_id: str) -> Path:
    return BUDGETS / f"{function_id}.txt"


def _read_budget(function_id: str) -> set[str]:
    lines = _budget_path(function_id).read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def _write_budget(function_id: str, modules: set[str]) -> None:
    BUDGETS.mkdir(exist_ok=True)
    _budget_path(function_id).write_text(
        f"# What {function_id}'s init imports beyond its baseline's ({len(modules)} modules).\n"
        "# tests/integration/test_import_budget.py checks it; UPDATE_IMPORT_BUDGET=1 rewrites it.\n"
        + "".join(f"{module}\n" for module in sorted(modules))
    )


def test_every_function_has_a_baseline_and_a_budget() -> None:
    assert set(HANDLERS) == set(BASELINES)
    if not UPDATE:
        assert {path.stem for path in BUDGETS.glob("*.txt")} == set(HANDLERS)


@pytest.mark.parametrize("function_id", sorted(HANDLERS))
def test_init_imports_exactly_its_budget(function_id: str) -> None:
    imported = _measured()[function_id]
    if UPDATE:
        _write_budget(function_id, imported)
        return
    budget = _read_budget(function_id)
    added, gone = sorted(imported - budget), sorted(budget - imported)
    assert not added, (
        f"{function_id}'s init now imports {len(added)} module(s) beyond its budget: "
        f"{', '.join(added)}. Each costs at every cold start: import it where it is used, or, "
        f"if init needs it, rewrite {_budget_path(function_id).relative_to(ROOT)} with "
        "UPDATE_IMPORT_BUDGET=1 and measure with make bench-cold"
    )
    assert not gone, (
        f"{function_id}'s init no longer imports {', '.join(gone)}: shrink its budget with "
        "UPDATE_IMPORT_BUDGET=1"
    )


@pytest.mark.parametrize("function_id", sorted(HANDLERS))
def test_the_heavy_packages_stay_out_of_init(function_id: str) -> None:
    imported = _measured()[function_id]
    for package, why in NEVER_AT_INIT.items():
        inside = sorted(m for m in imported if m == package or m.startswith(f"{package}."))
        assert not inside, f"{function_id}'s init imports {inside[:5]}: {why}"


def test_the_read_function_never_loads_what_only_writers_use() -> None:
    imported = _measured()["GetItemFunction"]
    assert not imported & {
        "app.sessions.assumed_role",
        "app.services.exports",
        "app.operations.export_table",
        "app.operations.pre_traffic",
    }


@pytest.mark.parametrize("function_id", sorted(HANDLERS))
def test_init_runs_without_the_garbage_collector_and_freezes_what_it_built(
    function_id: str,
) -> None:
    """app.cold_start: no collection while init builds (one or two may come before, while Python
    imports ``app`` itself), the collector running again after it, and init's objects frozen out
    of its reach. The baseline, which does nothing of the kind, collects dozens of times: so would
    the function's init, and the count would see it."""
    function, baseline = _inits()[function_id]
    assert function.collections <= 2, f"{function.collections} collections during init"
    assert function.collector_enabled, "init left the garbage collector stopped"
    assert function.frozen_objects > 10_000, "init did not freeze what it built"
    assert baseline.collections >= 10, "the count misses the collections of an unpaused init"
    assert baseline.collector_enabled
    assert baseline.frozen_objects == 0
