"""What an AWS failure is called, exactly (mutation survivors): the code and hint an operator reads
for each kind of failure, and the operations' own refusals. Built from botocore's exception
objects: nothing here calls AWS."""

from typing import Any

import pytest
from botocore.exceptions import ClientError, NoRegionError, ReadTimeoutError

from app.operations import get_item
from app.operations.errors import ItemNotFoundError, UnidentifiedCallerError
from app.operations.requests import InvalidRequestError, export_id_for
from app.services import DependencyError
from app.sessions import InvocationDeadlineError


def _client_error(response: dict[str, Any]) -> ClientError:
    return ClientError(response, "GetItem")  # type: ignore[arg-type]


def _status(code: int) -> dict[str, Any]:
    return {"ResponseMetadata": {"HTTPStatusCode": code, "HTTPHeaders": {}}}


REFUSED = "AWS refused the call: check the request and the function's configuration"


@pytest.mark.parametrize(
    ("error", "code", "hint", "retryable"),
    [
        (
            _client_error({"Error": {"Code": "NoSuchBucket"}, **_status(404)}),
            "NoSuchBucket",
            "check the bucket name the template passes to the function",
            False,
        ),
        (
            _client_error({"Error": {"Code": "ValidationException"}, **_status(400)}),
            "ValidationException",
            REFUSED,
            False,
        ),
        (_client_error({"Error": {}, **_status(400)}), "Unknown", REFUSED, False),
        (_client_error(_status(400)), "Unknown", REFUSED, False),
        (
            _client_error({"Error": {"Code": "InternalServerError"}, **_status(500)}),
            "InternalServerError",
            "AWS failed the call after retries",
            True,
        ),
        (
            InvocationDeadlineError(),
            "InvocationDeadline",
            "the invocation ran out of time for AWS calls: a dependency is slow or failing",
            True,
        ),
        (
            ReadTimeoutError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com"),
            "ReadTimeoutError",
            "AWS could not be reached or did not answer in time after retries",
            True,
        ),
        (
            NoRegionError(),
            "NoRegionError",
            "botocore could not make the call: check the function's configuration",
            False,
        ),
        (ValueError("not from AWS"), "ValueError", "unexpected failure", False),
    ],
    ids=[
        "known-code",
        "unknown-code",
        "no-code",
        "no-error",
        "aws-5xx",
        "deadline",
        "timeout",
        "no-region",
        "not-aws",
    ],
)
def test_each_failure_has_its_code_hint_and_retryability(
    error: Exception, code: str, hint: str, retryable: bool
) -> None:
    wrapped = DependencyError.wrap("items", "GetItem", error)

    assert (wrapped.resource, wrapped.operation) == ("items", "GetItem")
    assert (wrapped.code, wrapped.hint, wrapped.retryable) == (code, hint, retryable)
    assert str(wrapped) == f"GetItem on items failed ({code}): {hint}"
    assert wrapped.log_fields() == {
        "resource": "items",
        "operation": "GetItem",
        "error_code": code,
        "retryable": retryable,
        "hint": hint,
    }


class _NoItems:
    def get(self, item_id: str) -> None:
        return None


def test_a_missing_item_is_named_in_its_error() -> None:
    with pytest.raises(ItemNotFoundError, match="item 'x-1' not found") as raised:
        get_item("x-1", items=_NoItems())  # type: ignore[arg-type]
    assert raised.value.item_id == "x-1"


def test_a_token_naming_no_one_says_which_claims_it_lacks() -> None:
    assert str(UnidentifiedCallerError()) == (
        "the token names neither a subject (sub) nor a client (client_id, azp)"
    )


def test_a_bad_idempotency_key_is_refused_with_the_rule() -> None:
    with pytest.raises(InvalidRequestError) as raised:
        export_id_for("request-1", "not a key!")
    assert str(raised.value) == (
        "Idempotency-Key must be 1-64 letters, digits, '_' or '-' (a UUID works)"
    )
