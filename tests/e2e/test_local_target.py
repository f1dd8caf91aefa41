"""The offline target's own promises, beyond the scenarios: its waits deliver as Lambda's event
source mapping would, and end at once when nothing is left to deliver."""

import json

import pytest

from tools.e2e.local import LocalTarget
from tools.e2e.target import NotYetError, Target


@pytest.fixture
def local_target(target: Target) -> LocalTarget:
    assert isinstance(target, LocalTarget)
    return target


def _queue_depth(target: LocalTarget, logical_id: str) -> int:
    sqs = target.local.aws.client("sqs")
    url = target.local.deployment.resources[logical_id]
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def test_a_wait_with_nothing_to_deliver_fails_at_once_naming_what_it_waited_for(
    local_target: LocalTarget,
) -> None:
    checks = []

    def never() -> None:
        checks.append(1)

    with pytest.raises(NotYetError, match="the export x: not done, and no queue holds anything"):
        local_target.eventually(never, "the export x")
    assert checks == [1]


def test_a_failing_message_comes_back_until_the_redrive_limit_then_rests_in_the_dlq(
    local_target: LocalTarget,
) -> None:
    """As over SQS with the template's mapping: the function reports the record failed (no such
    item), the message returns at each poll, and after maxReceiveCount it is dead-lettered."""
    local_target.send_export_request(json.dumps({"item_id": "e2e-never-there"}))
    with pytest.raises(NotYetError, match="no queue holds anything"):
        local_target.eventually(lambda: None, "an export that cannot happen")
    assert _queue_depth(local_target, "ExportQueue") == 0
    assert _queue_depth(local_target, "ExportDeadLetterQueue") == 1
    assert local_target.keys("exports/e2e-never-there/") == []
