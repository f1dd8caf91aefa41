"""Every event in events/ through its handler, against moto: the response and the stored state."""

import json
import urllib.parse

import pytest

from tests.conftest import EXPECTED, Stack, event_names, load_event
from tests.dynamodb_numbers import exact, same_json
from tests.handler_calls import call, context_for
from tools.emulator.lambda_context import LambdaContext
from tools.emulator.seed import load_seed

SEEDED = {item["item_id"]: item for item in load_seed()["ItemsTable"]}


def test_every_event_has_an_expectation_and_every_expectation_an_event() -> None:
    assert set(EXPECTED["responses"]) == set(event_names())


@pytest.mark.parametrize("name", event_names())
def test_event_gets_the_expected_response(name: str, stack: Stack) -> None:
    function_id = name.split("/", maxsplit=1)[0]
    expected = EXPECTED["responses"][name]
    response = call(function_id, load_event(name), stack, context_for(function_id))

    if "statusCode" in expected:
        assert response["statusCode"] == expected["statusCode"], response
        body = json.loads(response["body"])
        assert response["headers"]["Content-Type"] == "application/json"
        if response["statusCode"] >= 400:
            assert isinstance(body["message"], str)
            assert body["message"]
            assert stack.objects() == {}, "a rejected request must not write"
    elif "status" in expected:
        assert response["status"] == expected["status"], response
    else:
        failed = sorted(entry["itemIdentifier"] for entry in response["batchItemFailures"])
        assert failed == sorted(expected["batchItemFailures"])


def test_found_item_is_returned_as_stored(stack: Stack, context: LambdaContext) -> None:
    response = call("GetItemFunction", load_event("GetItemFunction/found"), stack, context)
    assert same_json(exact(response["body"]), SEEDED["42"])


@pytest.mark.parametrize("name", ["ExportItemFunction/created", "ExportItemFunction/whole_item"])
def test_api_export_writes_the_item_under_the_returned_key(
    name: str, stack: Stack, context: LambdaContext
) -> None:
    event = load_event(name)
    response = call("ExportItemFunction", event, stack, context)
    body = json.loads(response["body"])
    item_id = event["pathParameters"]["item_id"]
    fields = json.loads(event["body"]).get("fields")

    stored = stack.objects()
    assert list(stored) == [body["key"]]
    assert body["key"] == f"exports/{item_id}/{event['requestContext']['requestId']}.json"
    document = stored[body["key"]]
    expected_item = {
        k: v for k, v in SEEDED[item_id].items() if not fields or k in {"item_id", *fields}
    }
    raw = stack.admin.client("s3").get_object(Bucket=stack.exports.bucket_name, Key=body["key"])
    assert same_json(exact(raw["Body"].read())["item"], expected_item)
    assert document["export_id"] == body["export_id"]


def test_queue_batch_exports_only_the_good_messages(stack: Stack, context: LambdaContext) -> None:
    event = load_event("ExportQueueFunction/mixed_batch")
    response = call("ExportQueueFunction", event, stack, context)
    failed = {entry["itemIdentifier"] for entry in response["batchItemFailures"]}
    succeeded = [r for r in event["Records"] if r["messageId"] not in failed]

    stored = stack.objects()
    expected_keys = {
        f"exports/{json.loads(r['body'])['item_id']}/{r['messageId']}.json" for r in succeeded
    }
    assert set(stored) == expected_keys
    assert stored[f"exports/42/{succeeded[0]['messageId']}.json"]["item"] == {
        "item_id": "42",
        "name": SEEDED["42"]["name"],
        "price": 249.5,
    }


def _metadata(stack: Stack, key: str) -> dict[str, str]:
    head = stack.admin.client("s3").head_object(Bucket=stack.exports.bucket_name, Key=key)
    return dict(head["Metadata"])


def test_an_api_export_records_who_asked(stack: Stack, context: LambdaContext) -> None:
    event = load_event("ExportItemFunction/created")
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    response = call("ExportItemFunction", event, stack, context)
    metadata = _metadata(stack, json.loads(response["body"])["key"])
    assert metadata["requested-by"] == claims["sub"]
    assert metadata["requested-client"] == claims["client_id"]
    assert set(metadata) == {"requested-by", "requested-client", "request-sha256"}


def test_a_queue_export_records_that_no_token_named_anyone(
    stack: Stack, context: LambdaContext
) -> None:
    call("ExportQueueFunction", load_event("ExportQueueFunction/batch"), stack, context)
    assert stack.objects()
    for key in stack.objects():
        metadata = _metadata(stack, key)
        assert (metadata["requested-by"], metadata["requested-client"]) == ("-", "-")


def test_a_subject_s3_metadata_cannot_hold_is_recorded_percent_encoded(
    stack: Stack, context: LambdaContext
) -> None:
    event = load_event("ExportItemFunction/created")
    subject = "auth0|Zoë Ünïcode\n" + "x" * 400
    event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = subject
    response = call("ExportItemFunction", event, stack, context)
    assert response["statusCode"] == 201
    recorded = _metadata(stack, json.loads(response["body"])["key"])["requested-by"]
    assert recorded.isascii()
    assert urllib.parse.unquote(recorded) == subject[:255]


@pytest.mark.parametrize(
    "subject",
    ["\N{GRINNING FACE}" * 255, "auth0|a\ud800b"],
    ids=["255-four-byte-characters", "lone-surrogate"],
)
def test_any_subject_a_json_claim_can_hold_is_exported_within_s3s_2kb(
    stack: Stack, context: LambdaContext, subject: str
) -> None:
    event = load_event("ExportItemFunction/created")
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    claims["sub"] = claims["client_id"] = subject
    response = call("ExportItemFunction", event, stack, context)
    assert response["statusCode"] == 201
    metadata = _metadata(stack, json.loads(response["body"])["key"])
    # S3 refuses user metadata over 2 KB (keys and values, in UTF-8 bytes); moto does not.
    assert sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items()) <= 2048
