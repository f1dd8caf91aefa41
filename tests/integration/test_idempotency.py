"""A retried export (same Idempotency-Key, or the same SQS message twice) writes one object and
answers with the same result."""

import copy
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.conftest import Stack, load_event
from tests.handler_calls import call
from tests.log_capture import lambda_output
from tools.emulator.lambda_context import LambdaContext

KEY = "0f8e2a64-5b7c-4d1e-9a3f-2c6b8d4e1f07"


def _request(request_id: str, key: str | None = KEY) -> dict[str, Any]:
    event = copy.deepcopy(load_event("ExportItemFunction/with_idempotency_key"))
    event["requestContext"]["requestId"] = request_id
    if key is None:
        del event["headers"]["idempotency-key"]
    else:
        event["headers"]["idempotency-key"] = key
    return event


def test_a_retry_with_the_same_key_gets_the_same_export(
    stack: Stack, context: LambdaContext
) -> None:
    first = call("ExportItemFunction", _request("request-1"), stack, context)
    stored = stack.objects()
    retry = call("ExportItemFunction", _request("request-2"), stack, context)
    assert (first["statusCode"], retry["statusCode"]) == (201, 200)
    assert json.loads(retry["body"]) == json.loads(first["body"])
    assert json.loads(first["body"])["key"] == f"exports/42/client-{KEY}.json"
    assert stack.objects() == stored


# Four threads share one Metrics (and Logger) here, where Lambda would run four environments: one
# thread's flush can publish another's metric and leave it an empty flush.
@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
def test_concurrent_duplicates_write_one_object(stack: Stack, context: LambdaContext) -> None:
    barrier = threading.Barrier(4)

    def send(index: int) -> dict[str, Any]:
        barrier.wait()
        return call("ExportItemFunction", _request(f"request-{index}"), stack, context)  # type: ignore[no-any-return]

    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(send, range(4)))
    assert sorted(response["statusCode"] for response in responses) == [200, 200, 200, 201]
    assert len({response["body"] for response in responses}) == 1
    assert len(stack.objects()) == 1


def test_without_a_key_every_request_is_its_own_export(
    stack: Stack, context: LambdaContext
) -> None:
    for index in range(2):
        assert (
            call("ExportItemFunction", _request(f"r{index}", key=None), stack, context)[
                "statusCode"
            ]
            == 201
        )
    assert len(stack.objects()) == 2


@pytest.mark.parametrize("key", ["", "has space", "x" * 65, "semi;colon", "ключ"])
def test_a_malformed_key_is_a_400(stack: Stack, context: LambdaContext, key: str) -> None:
    response = call("ExportItemFunction", _request("r", key=key), stack, context)
    assert response["statusCode"] == 400
    assert "Idempotency-Key" in json.loads(response["body"])["message"]
    assert stack.objects() == {}


UNNAMEABLE = (
    "the request's id (requestId, messageId) names its export and must be 1-128 letters, "
    "digits, '+', '/', '=', '_' or '-'"
)
UNNAMEABLE_IDS = ["", "a/../../b", "a\x00b", "a\ud800", "a b", "x" * 129, "ключ"]
"""Ids a direct Invoke may send where API Gateway and SQS send base64 text or a UUID."""


@pytest.mark.parametrize("request_id", UNNAMEABLE_IDS)
def test_a_request_id_that_cannot_name_an_export_is_a_400(
    stack: Stack, context: LambdaContext, request_id: str
) -> None:
    response = call("ExportItemFunction", _request(request_id, key=None), stack, context)
    assert response["statusCode"] == 400, response
    assert json.loads(response["body"])["message"] == UNNAMEABLE
    assert stack.objects() == {}


@pytest.mark.parametrize("message_id", UNNAMEABLE_IDS)
def test_a_message_id_that_cannot_name_an_export_is_a_reported_failure(
    stack: Stack, context: LambdaContext, message_id: str
) -> None:
    batch = load_event("ExportQueueFunction/batch")
    record = {**batch["Records"][0], "messageId": message_id}
    answer = call("ExportQueueFunction", {"Records": [record]}, stack, context)
    assert answer == {"batchItemFailures": [{"itemIdentifier": message_id}]}
    assert stack.objects() == {}


@pytest.mark.parametrize(
    "request_id", ["Rk1bAhDZjoEEJr0=", "a+b/c=", "4f1c0000-0000-0000-0000-00000000000b", "x" * 128]
)
def test_every_id_api_gateway_or_sqs_sends_names_its_export(
    stack: Stack, context: LambdaContext, request_id: str
) -> None:
    response = call("ExportItemFunction", _request(request_id, key=None), stack, context)
    assert response["statusCode"] == 201, response
    assert json.loads(response["body"])["key"] == f"exports/42/{request_id}.json"


def test_the_same_message_delivered_twice_writes_one_object(
    stack: Stack, context: LambdaContext
) -> None:
    batch = load_event("ExportQueueFunction/batch")
    duplicated = {"Records": [batch["Records"][0], copy.deepcopy(batch["Records"][0])]}
    assert call("ExportQueueFunction", duplicated, stack, context) == {"batchItemFailures": []}
    assert call("ExportQueueFunction", batch, stack, context) == {"batchItemFailures": []}
    assert len(stack.objects()) == len(batch["Records"])


# --- A key reused for a different request --------------------------------------------------------


def _with_fields(event: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    event["body"] = json.dumps({} if fields is None else {"fields": fields})
    return event


@pytest.mark.parametrize(
    "fields", [["name"], None, ["name", "price", "colour"]], ids=["fewer", "all", "more"]
)
def test_a_key_reused_for_other_fields_is_a_409(
    stack: Stack, context: LambdaContext, fields: list[str] | None
) -> None:
    first = call("ExportItemFunction", _request("request-1"), stack, context)
    stored = stack.objects()
    reused = call("ExportItemFunction", _with_fields(_request("request-2"), fields), stack, context)
    assert (first["statusCode"], reused["statusCode"]) == (201, 409)
    assert (
        "Idempotency-Key was already used for a different request"
        in (json.loads(reused["body"])["message"])
    )
    assert stack.objects() == stored, "the first export is left as it was"


def test_the_order_of_the_fields_does_not_make_another_request(
    stack: Stack, context: LambdaContext
) -> None:
    first = call("ExportItemFunction", _request("request-1"), stack, context)
    fields = json.loads(_request("r")["body"])["fields"]
    retry = _with_fields(_request("request-2"), list(reversed(fields)))
    assert call("ExportItemFunction", retry, stack, context)["body"] == first["body"]


def test_a_key_reused_for_another_item_names_that_items_own_export(
    stack: Stack, context: LambdaContext
) -> None:
    """A key is scoped by its resource, /items/{item_id}/exports: no answer is another's."""
    call("ExportItemFunction", _request("request-1"), stack, context)
    other = _request("request-2")
    other["rawPath"] = other["requestContext"]["http"]["path"] = "/items/7/exports"
    other["pathParameters"] = {"item_id": "7"}
    other = _with_fields(other, None)
    response = call("ExportItemFunction", other, stack, context)
    assert response["statusCode"] == 201
    assert json.loads(response["body"])["key"] == f"exports/7/client-{KEY}.json"


def test_an_export_stored_without_a_fingerprint_answers_its_retry(
    stack: Stack, context: LambdaContext
) -> None:
    """Objects written before fingerprints were stored: the retry cannot be judged; it is
    answered as before, with the export."""
    key = f"exports/42/client-{KEY}.json"
    stack.admin.client("s3").put_object(Bucket=stack.exports.bucket_name, Key=key, Body=b"{}")
    response = call("ExportItemFunction", _request("request-1"), stack, context)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["key"] == key


def test_a_message_id_reused_for_another_body_is_rejected(
    stack: Stack, context: LambdaContext
) -> None:
    batch = load_event("ExportQueueFunction/batch")
    first, second = batch["Records"]
    second["messageId"] = first["messageId"]
    second["body"] = json.dumps(
        {"item_id": json.loads(first["body"])["item_id"], "fields": ["name"]}
    )
    assert call("ExportQueueFunction", {"Records": [first]}, stack, context) == {
        "batchItemFailures": []
    }
    with lambda_output("INFO") as output:
        response = call("ExportQueueFunction", {"Records": [second]}, stack, context)
    assert response == {"batchItemFailures": [{"itemIdentifier": first["messageId"]}]}
    [rejected] = [line for line in output.records() if line.get("message") == "message rejected"]
    assert "made for a different request" in rejected["reason"]
    assert len(stack.objects()) == 1


# --- A key reused by another caller ---------------------------------------------------------------


def _as_caller(event: dict[str, Any], claims: dict[str, str] | None) -> dict[str, Any]:
    """``event`` as API Gateway would send it for another token (None: no authorizer at all)."""
    if claims is None:
        del event["requestContext"]["authorizer"]
        del event["headers"]["authorization"]
    else:
        verified = event["requestContext"]["authorizer"]["jwt"]["claims"]
        verified.update(claims)
        for name in [name for name, value in claims.items() if value is None]:
            del verified[name]
    return event


OTHER_CALLERS = {
    "another-client": {
        "sub": "0a1b2c3d4e5f6g7h8i9j0k1l2m",
        "client_id": "0a1b2c3d4e5f6g7h8i9j0k1l2m",
    },
    "same-client-other-subject": {"sub": "c0ffee00-1111-2222-3333-444455556666"},
    "same-subject-other-client": {"client_id": "9z8y7x6w5v4u3t2s1r0q9p8o7n"},
    "same-subject-no-client": {"client_id": None},
    "no-token": None,
}


@pytest.mark.parametrize("caller", OTHER_CALLERS)
def test_a_key_reused_by_another_caller_is_a_409(
    stack: Stack, context: LambdaContext, caller: str
) -> None:
    """An export answers only the caller that made it: another token's bearer (or a request
    without one) learns nothing of it, not even its key."""
    first = call("ExportItemFunction", _request("request-1"), stack, context)
    stored = stack.objects()
    other = _as_caller(_request("request-2"), OTHER_CALLERS[caller])
    reused = call("ExportItemFunction", other, stack, context)
    assert (first["statusCode"], reused["statusCode"]) == (201, 409)
    message = json.loads(reused["body"])["message"]
    assert "another caller" in message
    assert KEY not in message
    assert "exports/" not in message
    assert stack.objects() == stored


def test_the_same_caller_with_a_new_token_gets_its_export(
    stack: Stack, context: LambdaContext
) -> None:
    """A retry after its token expired: same subject and client, new jti, times and scopes."""
    first = call("ExportItemFunction", _request("request-1"), stack, context)
    renewed = {
        "jti": "5b9e4c1d-0000-4a6f-8e2d-7c3b1a0f9e8d",
        "iat": "1795342000",
        "exp": "1795345600",
    }
    retry = _as_caller(_request("request-2"), {**renewed, "scope": "items/export"})
    response = call("ExportItemFunction", retry, stack, context)
    assert (first["statusCode"], response["statusCode"]) == (201, 200)
    assert response["body"] == first["body"]


def test_an_unverified_retry_of_an_unverified_export_gets_it(
    stack: Stack, context: LambdaContext
) -> None:
    """Requests without claims (direct Invokes) keep the fingerprint they always had."""
    first = call("ExportItemFunction", _as_caller(_request("r1"), None), stack, context)
    retry = call("ExportItemFunction", _as_caller(_request("r2"), None), stack, context)
    assert (first["statusCode"], retry["statusCode"]) == (201, 200)
    verified = call("ExportItemFunction", _request("r3"), stack, context)
    assert verified["statusCode"] == 409, "a verified caller is not the unverified one"
