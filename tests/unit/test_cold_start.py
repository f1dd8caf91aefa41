"""app.cold_start in this process: who may stop the collector, and that the end of init restarts it.

The fresh-process proof, with Lambda's variables and every function's real init, is
tests/integration/test_import_budget.py; here each rule is checked on its own (and mutmut, which
runs no spawning test, sees them). Each test leaves the collector as it found it.
"""

import gc
from collections.abc import Iterator

import pytest

from app import cold_start


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    was_enabled = gc.isenabled()
    try:
        yield
    finally:
        cold_start._Pause.active = False
        gc.unfreeze()
        if was_enabled:
            gc.enable()
        else:
            gc.disable()


@pytest.mark.parametrize(
    "handler", ["app.handlers.get_item.lambda_handler", "app.handlers.export_table.lambda_handler"]
)
def test_lambda_importing_a_handler_stops_the_collector_until_init_ends(
    monkeypatch: pytest.MonkeyPatch, handler: str
) -> None:
    monkeypatch.setenv("_HANDLER", handler)
    gc.enable()
    cold_start.pause_for_init()
    assert not gc.isenabled()
    kept = [object() for _ in range(100)]  # built during init, alive after it
    cold_start.end_init()
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(kept)


@pytest.mark.parametrize(
    "handler",
    [None, "", "bare_get_item.lambda_handler", "app.runtime.x", "app.handlers_v1.handler"],
)
def test_any_other_importer_keeps_its_collector(
    monkeypatch: pytest.MonkeyPatch, handler: str | None
) -> None:
    if handler is None:
        monkeypatch.delenv("_HANDLER", raising=False)
    else:
        monkeypatch.setenv("_HANDLER", handler)
    gc.enable()
    cold_start.pause_for_init()
    assert gc.isenabled()
    cold_start.end_init()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0, "nothing to freeze when init was not paused"


def test_a_collector_stopped_by_someone_else_stays_theirs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_HANDLER", "app.handlers.get_item.lambda_handler")
    gc.disable()
    cold_start.pause_for_init()
    cold_start.end_init()
    assert not gc.isenabled(), "end_init started a collector it had not stopped"
    assert gc.get_freeze_count() == 0


def test_the_end_of_init_ends_the_pause_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every handler module ends with at_init; a second one (tests import several) does nothing."""
    monkeypatch.setenv("_HANDLER", "app.handlers.get_item.lambda_handler")
    gc.enable()
    cold_start.pause_for_init()
    cold_start.end_init()
    gc.disable()  # someone else's, after init
    cold_start.end_init()
    assert not gc.isenabled()
