"""What the continuation queue sends, and how a refused send is named in the operator's log line.
botocore's Stubber answers in place of SQS: nothing is sent."""

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from app.services import ContinuationQueue, DependencyError

pytestmark = pytest.mark.unit

QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/continuations"


@pytest.fixture
def stubbed() -> Iterator[tuple[ContinuationQueue, Stubber]]:
    queue = ContinuationQueue(boto3.Session(), QUEUE_URL)  # keys and region: tests/conftest.py
    with Stubber(queue._client) as stubber:
        yield queue, stubber
        stubber.assert_no_pending_responses()


SENDS: list[tuple[str, Callable[[ContinuationQueue], None], str]] = [
    ("run", lambda queue: queue.send("run-1"), '{"run_id": "run-1"}'),
    ("segment", lambda queue: queue.send_segment("run-1", 3), '{"run_id": "run-1", "segment": 3}'),
]


@pytest.mark.parametrize(("send", "body"), [s[1:] for s in SENDS], ids=[s[0] for s in SENDS])
def test_each_message_is_the_run_and_its_segment(
    stubbed: tuple[ContinuationQueue, Stubber], send: Callable[[ContinuationQueue], None], body: str
) -> None:
    queue, stubber = stubbed
    stubber.add_response(
        "send_message", {"MessageId": "m-1"}, {"QueueUrl": QUEUE_URL, "MessageBody": body}
    )
    send(queue)


@pytest.mark.parametrize(("send", "_body"), [s[1:] for s in SENDS], ids=[s[0] for s in SENDS])
def test_a_refused_send_is_named_by_its_queue_and_operation(
    stubbed: tuple[ContinuationQueue, Stubber], send: Callable[[ContinuationQueue], Any], _body: str
) -> None:
    queue, stubber = stubbed
    stubber.add_client_error("send_message", "AccessDenied", http_status_code=403)

    with pytest.raises(DependencyError) as raised:
        send(queue)

    assert (raised.value.resource, raised.value.operation) == (QUEUE_URL, "SendMessage")
    assert (raised.value.code, raised.value.retryable) == ("AccessDenied", False)
