"""A deadline shared by every AWS call of one invocation.

``CLIENT_CONFIG`` bounds one call, but an invocation makes several (``GetItem``, ``AssumeRole``
at a refresh, ``PutObject``), and a batch makes them per record: under a slow or failing AWS their
retries add up past the function timeout, and Lambda then kills the invocation before it can
answer. Every client checks this deadline before each attempt, retries included, and gives up
with :class:`InvocationDeadlineError` once an attempt could no longer finish in time, leaving the
handler the time to answer with a clean 503 or batch item failure.

A Lambda execution environment runs one invocation at a time, so one process-wide deadline is
right; worker threads of that invocation see it too.
"""

import time
from collections.abc import Callable
from typing import Any

from app.sessions.config import CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS
from app.sessions.errors import InvocationDeadlineError

ANSWER_RESERVE_SECONDS = 1.0
"""Kept for the handler to log, count and answer after the last AWS attempt."""
ATTEMPT_SECONDS = CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS
"""The longest one attempt can take; a new attempt starts only if this much time is left."""

clock: Callable[[], float] = time.monotonic
"""Seconds on a monotonic clock; tests replace it to simulate slow calls without sleeping."""

_deadline: float | None = None


def start(remaining_seconds: float) -> None:
    """The invocation has ``remaining_seconds`` before Lambda stops it."""
    global _deadline  # noqa: PLW0603 - one invocation at a time per process, by design
    _deadline = clock() + remaining_seconds - ANSWER_RESERVE_SECONDS


def clear() -> None:
    global _deadline  # noqa: PLW0603
    _deadline = None


def check_before_attempt(**_event: Any) -> None:  # noqa: ANN401 - botocore event keywords
    """botocore ``before-send`` handler: refuse an attempt that could outlive the invocation."""
    if _deadline is not None and clock() + ATTEMPT_SECONDS > _deadline:
        raise InvocationDeadlineError()
