"""Nothing acknowledged is lost: what fails is redelivered, and rests in the DLQ after the limit.

Lambda's event source mapping is emulated over moto's SQS with the queues as the template
declares them: receive a batch, hand it to the handler as Lambda would, delete only the records
not reported in ``batchItemFailures``, and let the rest come back.
"""

import json
from typing import Any

from mypy_boto3_sqs import SQSClient

from tests.conftest import REGION, Stack, load_event
from tests.handler_calls import call
from tools.emulator import sam_template, sqs_records
from tools.emulator.lambda_context import LambdaContext


def _queue_pair(sqs: SQSClient, template: dict[str, Any]) -> tuple[str, str, int]:
    """The export queue and its DLQ, with the template's redrive limit."""
    translated = sam_template.translate(template)["Resources"]
    redrive = translated["ExportQueue"]["Properties"]["RedrivePolicy"]
    dlq_url = sqs.create_queue(QueueName="export-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": redrive["maxReceiveCount"]}
    queue_url = sqs.create_queue(
        QueueName="export-requests", Attributes={"RedrivePolicy": json.dumps(policy)}
    )["QueueUrl"]
    return queue_url, dlq_url, int(redrive["maxReceiveCount"])


def test_failed_exports_are_retried_then_dead_lettered_and_the_rest_exported_once(
    stack: Stack, context: LambdaContext, template: dict[str, Any]
) -> None:
    sqs = stack.admin.client("sqs")
    queue_url, dlq_url, max_receives = _queue_pair(sqs, template)
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    assert sqs_records.queue_arn(queue_url, REGION) == queue_arn  # what the others rely on
    bodies = [record["body"] for record in load_event("ExportQueueFunction/mixed_batch")["Records"]]
    for body in bodies:
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)

    deliveries: dict[str, int] = {}
    for _ in range(10 * max_receives):  # bounded: each round is one poll of the mapping
        received = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0, AttributeNames=["All"]
        ).get("Messages", [])
        if not received:
            break
        for message in received:
            deliveries[message["Body"]] = deliveries.get(message["Body"], 0) + 1
        response = call(
            "ExportQueueFunction",
            {"Records": [sqs_records.record(m, queue_arn, REGION) for m in received]},
            stack,
            context,
        )
        failed = {failure["itemIdentifier"] for failure in response["batchItemFailures"]}
        for message in received:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    dead = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10).get("Messages", [])
    dead_bodies = sorted(message["Body"] for message in dead)
    exported = stack.objects()
    exported_ids = sorted(document["item_id"] for document in exported.values())

    assert (
        sorted(json.loads(body)["item_id"] for body in bodies if body not in dead_bodies)
        == exported_ids
    )
    assert len(dead) + len(exported) == len(bodies), (
        "every message is either exported or dead-lettered"
    )
    assert dead_bodies == sorted(
        [
            '{"item_id": "404-missing"}',
            "not an export request",
            '{"item_id": 42}',
        ]
    )
    for body in dead_bodies:
        assert deliveries[body] == max_receives, body
    for body in bodies:
        if body not in dead_bodies:
            assert deliveries[body] == 1, body
