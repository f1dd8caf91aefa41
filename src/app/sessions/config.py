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
