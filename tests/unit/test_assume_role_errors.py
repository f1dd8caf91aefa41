"""What a failed AssumeRole is called, exactly (mutation survivors): the code and hint an operator
reads, and whether a retry may help, from botocore's exception objects alone (no call to STS)."""

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from app.sessions import AssumeRoleError, is_retryable

ROLE = "arn:aws:iam::210987654321:role/items-writer"


def _client_error(response: dict[str, Any]) -> ClientError:
    return ClientError(response, "AssumeRole")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "code", "hint", "retryable"),
    [
        (_client_error({"Error": {}}), "Unknown", "STS refused the request", False),
        (_client_error({}), "Unknown", "STS refused the request", False),
        (
            _client_error({"Error": {"Code": "MalformedPolicyDocument"}}),
            "MalformedPolicyDocument",
            "STS refused the request",
            False,
        ),
        (
            EndpointConnectionError(endpoint_url="https://sts.eu-west-1.amazonaws.com"),
            "EndpointConnectionError",
            "STS did not answer after retries; check the VPC's route to STS (NAT or endpoint)",
            True,
        ),
        (ValueError("not from botocore"), "ValueError", "unexpected failure calling STS", False),
    ],
    ids=["no-code", "no-error", "unknown-code", "unreachable", "not-botocore"],
)
def test_each_failure_is_named_with_its_code_and_what_to_check(
    error: Exception, code: str, hint: str, retryable: bool
) -> None:
    explained = AssumeRoleError.explain(ROLE, "items-writer-session", error)
    assert (explained.code, explained.hint, explained.retryable) == (code, hint, retryable)
    assert str(explained) == f"AssumeRole {ROLE} as items-writer-session failed ({code}): {hint}"


def test_throttling_is_retryable_from_its_code_alone() -> None:
    # An error response built without ResponseMetadata (no status code) still names its code.
    assert is_retryable(_client_error({"Error": {"Code": "Throttling"}}))
    assert not is_retryable(_client_error({"Error": {"Code": "AccessDenied"}}))


def test_a_conflicting_conditional_write_is_retryable_though_botocore_does_not_retry_it() -> None:
    response = {
        "Error": {"Code": "ConditionalRequestConflict"},
        "ResponseMetadata": {"HTTPStatusCode": 409, "HTTPHeaders": {}},
    }
    assert is_retryable(_client_error(response))
