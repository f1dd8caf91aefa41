"""SQS messages as Lambda's SQS event source mapping hands them to a function.

One shape for every place that plays the mapping (the local target, the tests, the benchmarks),
so that what the handlers are given is the same wherever they run. Standard library only.
"""

from __future__ import annotations

from typing import Any


def queue_arn(queue_url: str, region: str) -> str:
    """The queue's ARN from its URL (``.../<account>/<name>``), without asking SQS."""
    account, name = queue_url.rsplit("/", 2)[1:]
    return f"arn:aws:sqs:{region}:{account}:{name}"


def record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One received message (``ReceiveMessage``'s shape) as an ``event["Records"]`` entry."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def receive_records(
    sqs: Any,  # noqa: ANN401 - an SQS client, from whichever session
    queue_url: str,
    region: str,
    **receive: Any,  # noqa: ANN401 - ReceiveMessage's own arguments
) -> list[dict[str, Any]]:
    """One ``ReceiveMessage`` call's messages (none when the queue has nothing to give), as
    records; ``receive`` are its arguments (``MaxNumberOfMessages``, ``VisibilityTimeout``)."""
    received = sqs.receive_message(QueueUrl=queue_url, **receive).get("Messages", [])
    arn = queue_arn(queue_url, region)
    return [record(message, arn, region) for message in received]
