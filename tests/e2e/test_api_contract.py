"""schemathesis against ``make api`` with api/openapi.yaml: no server error, no answer outside it.

Valid inputs (what the document allows) and invalid ones (what it forbids, which must get one of
its 4xx answers, never a 5xx). Bounded: a fixed number of examples per operation, derandomized
(the same cases every run, so a failure reproduces), no deadline per example (a cold start is
slower than a warm call): about 30 s. The token carries every scope, so the fuzzing reaches the
functions; the authorizer's refusals are tests/e2e/test_local_api.py's.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.local_api import EXPORT, READ, ROOT, running_api
from tools.emulator import local_api

EXAMPLES_PER_OPERATION = 100
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

schema = schemathesis.openapi.from_path(ROOT / "api" / "openapi.yaml")
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    max_examples=EXAMPLES_PER_OPERATION,
    deterministic=True,
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local_api.RunningApi]:
    directory: Path = tmp_path_factory.mktemp("contract")
    with (directory / "functions.log").open("w") as log, running_api(directory, log) as api:
        yield api


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_local_api_keeps_its_contract(
    case: schemathesis.Case, served: local_api.RunningApi
) -> None:
    token = served.issuer.token([READ, EXPORT])
    case.call_and_validate(
        base_url=served.url, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS
    )
