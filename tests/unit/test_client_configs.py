"""Every client the code builds carries its timeouts and retries (a mutant dropping one survived).

Building a client makes no call: the suite's environment (tests/conftest.py) gives the session
its made-up keys and region.
"""

from collections.abc import Callable
from typing import Any

import boto3
import pytest

from app.sessions import clients
from app.sessions.config import (
    CONNECT_TIMEOUT_SECONDS,
    INVOKE_MAX_ATTEMPTS,
    INVOKE_READ_TIMEOUT_SECONDS,
    MAX_ATTEMPTS,
    READ_TIMEOUT_SECONDS,
)

pytestmark = pytest.mark.unit

SESSION = boto3.Session()


@pytest.mark.parametrize(
    ("build", "read_timeout", "attempts"),
    [
        (clients.dynamodb_client, READ_TIMEOUT_SECONDS, MAX_ATTEMPTS),
        (clients.s3_client, READ_TIMEOUT_SECONDS, MAX_ATTEMPTS),
        (clients.sqs_client, READ_TIMEOUT_SECONDS, MAX_ATTEMPTS),
        (clients.sts_client, READ_TIMEOUT_SECONDS, MAX_ATTEMPTS),
        (clients.codedeploy_client, READ_TIMEOUT_SECONDS, MAX_ATTEMPTS),
        (clients.lambda_client, INVOKE_READ_TIMEOUT_SECONDS, INVOKE_MAX_ATTEMPTS),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_each_client_has_its_timeouts_and_bounded_retries(
    build: Callable[[boto3.Session], Any], read_timeout: float, attempts: int
) -> None:
    config = build(SESSION).meta.config

    assert config.connect_timeout == CONNECT_TIMEOUT_SECONDS
    assert config.read_timeout == read_timeout
    assert config.retries == {"mode": "standard", "total_max_attempts": attempts}
