"""Timeouts and retries shared by every client.

botocore's defaults (60 s connect, 60 s read, legacy retries) let one slow call outlive the whole
Lambda timeout, which turns a brief AWS hiccup into a timed-out invocation with no useful error.
These bounds keep the worst case of one call (every attempt timing out, plus backoff) inside the
function timeout; ``tests/infra/test_template.py`` checks that against the template.
"""

from botocore.config import Config

CONNECT_TIMEOUT_SECONDS = 1.0
READ_TIMEOUT_SECONDS = 2.0
MAX_ATTEMPTS = 3
"""Total attempts, the first included (botocore's ``total_max_attempts``)."""

_MAX_BACKOFF_SECONDS_PER_RETRY = (1.0, 2.0)
"""Upper bounds of botocore's standard-mode jittered backoff before retry 1 and retry 2."""


def _bounded_config(read_timeout_seconds: float, max_attempts: int) -> Config:
    return Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=read_timeout_seconds,
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        tcp_keepalive=True,
    )


def _worst_case_seconds(read_timeout_seconds: float, max_attempts: int) -> float:
    """Every attempt times out, with the longest backoff between them."""
    attempts_time = max_attempts * (CONNECT_TIMEOUT_SECONDS + read_timeout_seconds)
    return attempts_time + sum(_MAX_BACKOFF_SECONDS_PER_RETRY[: max_attempts - 1])


CLIENT_CONFIG = _bounded_config(READ_TIMEOUT_SECONDS, MAX_ATTEMPTS)


def worst_case_call_seconds() -> float:
    """Longest one call can take before botocore gives up: every attempt times out, plus backoff."""
    return _worst_case_seconds(READ_TIMEOUT_SECONDS, MAX_ATTEMPTS)


INVOKE_READ_TIMEOUT_SECONDS = 20.0
"""Reading a synchronous Invoke's answer waits for the invoked function: its init and its run
(the API functions' timeout is 15 s), not for one AWS API call."""
INVOKE_MAX_ATTEMPTS = 2
"""A timed-out probe is tried once more; the probes read and never write, so a repeat is safe."""

INVOKE_CONFIG = _bounded_config(INVOKE_READ_TIMEOUT_SECONDS, INVOKE_MAX_ATTEMPTS)


def worst_case_invoke_seconds() -> float:
    """Longest one synchronous Invoke can take with :data:`INVOKE_CONFIG`."""
    return _worst_case_seconds(INVOKE_READ_TIMEOUT_SECONDS, INVOKE_MAX_ATTEMPTS)
