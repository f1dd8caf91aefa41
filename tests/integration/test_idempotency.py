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
