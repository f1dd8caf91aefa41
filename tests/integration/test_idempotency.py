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
from tools.lambda_context import LambdaContext

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
