"""Which errors mean "the run's condition failed" (mutation survivors): only DynamoDB's
ConditionalCheckFailedException, whatever else a ClientError or its response holds."""

import pytest
from botocore.exceptions import ClientError

from app.services import export_runs


def _client_error(response: dict[str, object]) -> ClientError:
    return ClientError(response, "UpdateItem")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_client_error({"Error": {"Code": "ConditionalCheckFailedException"}}), True),
        (_client_error({"Error": {"Code": "ProvisionedThroughputExceededException"}}), False),
        (_client_error({"Error": {}}), False),
        (_client_error({}), False),  # botocore builds such a response for an unparsable body
        (RuntimeError("ConditionalCheckFailedException"), False),
    ],
)
def test_only_a_conditional_check_failure_is_one(error: Exception, *, expected: bool) -> None:
    assert export_runs._condition_failed(error) is expected
