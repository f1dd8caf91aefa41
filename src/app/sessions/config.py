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

CLIENT_CONFIG = Config(
    connect_timeout=CONNECT_TIMEOUT_SECONDS,
    read_timeout=READ_TIMEOUT_SECONDS,
    retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
    tcp_keepalive=True,
)


def worst_case_call_seconds() -> float:
    """Longest one call can take before botocore gives up: every attempt times out, plus backoff."""
    attempts_time = MAX_ATTEMPTS * (CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS)
    return attempts_time + sum(_MAX_BACKOFF_SECONDS_PER_RETRY[: MAX_ATTEMPTS - 1])


INVOKE_READ_TIMEOUT_SECONDS = 20.0
"""Reading a synchronous Invoke's answer waits for the invoked function: its init and its run
(the API functions' timeout is 15 s), not for one AWS API call."""
INVOKE_MAX_ATTEMPTS = 2
"""A timed-out probe is tried once more; the probes read and never write, so a repeat is safe."""

INVOKE_CONFIG = Config(
    connect_timeout=CONNECT_TIMEOUT_SECONDS,
    read_timeout=INVOKE_READ_TIMEOUT_SECONDS,
    retries={"mode": "standard", "total_max_attempts": INVOKE_MAX_ATTEMPTS},
    tcp_keepalive=True,
)


def worst_case_invoke_seconds() -> float:
    """Longest one synchronous Invoke can take with :data:`INVOKE_CONFIG`."""
    attempts_time = INVOKE_MAX_ATTEMPTS * (CONNECT_TIMEOUT_SECONDS + INVOKE_READ_TIMEOUT_SECONDS)
    return attempts_time + sum(_MAX_BACKOFF_SECONDS_PER_RETRY[: INVOKE_MAX_ATTEMPTS - 1])
