"""The end-to-end scenarios' target: the local stack, or the deployed one ``make e2e`` names."""

import os
from collections.abc import Iterator

import boto3
import pytest

from tests.conftest import DEPLOYED_STACK
from tools.e2e import local
from tools.e2e.deployed import DeployedTarget
from tools.e2e.target import Target


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    """Offline: the template in the embedded AWS. ``make e2e ENV=... PROFILE=...``: that stack,
    reached with a session from the profile (or, without one, the environment's credentials).

    One per test module, not per session: an in-process ``mock_aws`` (another file's tests, in the
    same worker) resets every moto backend of the process when it ends, the embedded server's
    included, and a stack kept for the whole session would lose its tables and queues."""
    if DEPLOYED_STACK:
        session = boto3.Session(
            profile_name=os.environ.get("E2E_PROFILE") or None,
            region_name=os.environ.get("E2E_REGION") or None,
        )
        yield DeployedTarget.from_stack(
            session, DEPLOYED_STACK, smoke=bool(os.environ.get("E2E_SMOKE"))
        )
        return
    with local.started() as started:
        yield started
