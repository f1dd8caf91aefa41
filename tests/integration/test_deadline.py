"""An invocation's AWS calls share its remaining time: slow dependencies end in a clean answer."""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError

from app.sessions import deadline
from app.sessions.config import MAX_ATTEMPTS
from tests.conftest import Stack, load_event
from tests.handler_calls import call
from tools.emulator.lambda_context import LambdaContext


class SimulatedClock:
    """Time that passes only when a simulated attempt says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatedClock]:
    simulated = SimulatedClock()
    monkeypatch.setattr(deadline, "clock", simulated)
    yield simulated
    deadline.clear()


def _slow(stack: Stack, clock: SimulatedClock, operation: str) -> list[float]:
    """Every attempt of ``operation`` reads until its read timeout, then fails."""
    started: list[float] = []

    def times_out(event_name: str, **kwargs: Any) -> None:
        if event_name.endswith(f".{operation}"):
            started.append(clock.now)
            clock.now += deadline.ATTEMPT_SECONDS
            raise ReadTimeoutError(endpoint_url=kwargs["request"].url)

    # Registered on the generic event, after the deadline check the client was built with, as a
    # real slow attempt would come after it.
    for client in (stack.items._client, stack.exports._client):
        client.meta.events.register("before-send", times_out)
    return started


def test_a_call_that_fits_is_attempted_in_full(stack: Stack, clock: SimulatedClock) -> None:
    attempts = _slow(stack, clock, "GetItem")
    context = LambdaContext(function_name="f", timeout_seconds=15)
    response = call("GetItemFunction", load_event("GetItemFunction/found"), stack, context)
    assert response["statusCode"] == 503
    assert len(attempts) == MAX_ATTEMPTS


def test_attempts_stop_when_the_invocation_would_run_out(
    stack: Stack, clock: SimulatedClock
) -> None:
    attempts = _slow(stack, clock, "PutObject")
    before = clock.now
    # With only 5 s left there is room for one 3 s attempt (plus the answer), not for a second.
    context = LambdaContext(function_name="f", timeout_seconds=5)
    response = call("ExportItemFunction", load_event("ExportItemFunction/created"), stack, context)
    assert response["statusCode"] == 503
    assert json.loads(response["body"]) == {"message": "temporarily unavailable, retry later"}
    assert len(attempts) == 1
    assert clock.now - before <= 5 - deadline.ANSWER_RESERVE_SECONDS


def test_no_deadline_outside_an_invocation(stack: Stack, clock: SimulatedClock) -> None:
    deadline.clear()
    clock.now += 10**6
    assert stack.items.get("42") is not None


def test_an_attempt_that_would_end_exactly_at_the_deadline_still_starts(
    clock: SimulatedClock,
) -> None:
    """The deadline is the last moment an attempt may end (the answer's reserve is after it)."""
    deadline.start(deadline.ATTEMPT_SECONDS + deadline.ANSWER_RESERVE_SECONDS)  # integral floats
    deadline.check_before_attempt()
    clock.now += 0.25
    with pytest.raises(deadline.InvocationDeadlineError):
        deadline.check_before_attempt()
