"""Services against moto: what they read, what they write, and how AWS failures surface."""

import base64
import json
from decimal import Decimal

import pytest

from app.models import ExportRequest
from app.operations import ItemNotFoundError, export_item
from app.services import DependencyError, ExportsBucket, ItemsTable
from tests.conftest import Stack, load_event
from tests.handler_calls import call
from tools.lambda_context import LambdaContext
from tools.seed import put_items


def test_item_types_come_back_as_json(stack: Stack) -> None:
    put_items(
        stack.admin.client("dynamodb"),
        stack.items.table_name,
        [
            {
                "item_id": "typed",
                "whole": Decimal(3),
                "fraction": Decimal("0.25"),
                "names": {"b", "a"},
                "raw": b"\x00\x01",
                "nested": {"list": [Decimal(1), "two", None, True]},
            }
        ],
    )
    assert stack.items.get("typed") == {
        "item_id": "typed",
        "whole": 3,
        "fraction": 0.25,
        "names": ["a", "b"],
        "raw": base64.b64encode(b"\x00\x01").decode(),
        "nested": {"list": [1, "two", None, True]},
    }


def test_absent_item_is_none(stack: Stack) -> None:
    assert stack.items.get("nope") is None


def test_fields_limit_what_is_read_and_always_keep_the_key(stack: Stack) -> None:
    assert stack.items.get("42", ["name"]) == {"item_id": "42", "name": "Espresso grinder"}


def test_missing_table_is_a_dependency_error_with_a_hint(stack: Stack) -> None:
    with pytest.raises(DependencyError) as raised:
        ItemsTable(stack.base, "no-such-table").get("42")
    assert raised.value.code == "ResourceNotFoundException"
    assert "table name" in raised.value.hint
    assert raised.value.log_fields()["operation"] == "GetItem"


def test_missing_bucket_is_a_dependency_error(stack: Stack) -> None:
    with pytest.raises(DependencyError) as raised:
        ExportsBucket(stack.writer, "no-such-bucket").write("42", "e1", {})
    assert raised.value.code == "NoSuchBucket"


def test_write_never_replaces_an_existing_object(stack: Stack) -> None:
    first = stack.exports.write("42", "export-1", {"version": 1})
    second = stack.exports.write("42", "export-1", {"version": 2})
    assert first.created
    assert not second.created
    assert second.key == first.key
    assert stack.objects() == {first.key: {"version": 1}}
    versions = stack.admin.client("s3").list_object_versions(Bucket=stack.exports.bucket_name)
    assert len(versions["Versions"]) == 1


def test_export_of_an_absent_item_writes_nothing(stack: Stack) -> None:
    with pytest.raises(ItemNotFoundError):
        export_item(ExportRequest("nope"), "e1", items=stack.items, exports=stack.exports)
    assert stack.objects() == {}


def test_repeated_api_request_keeps_the_first_export(stack: Stack, context: LambdaContext) -> None:
    event = load_event("ExportItemFunction/created")
    first = call("ExportItemFunction", event, stack, context)
    stored = stack.objects()
    repeated = call("ExportItemFunction", event, stack, context)
    assert (first["statusCode"], repeated["statusCode"]) == (201, 200)
    assert json.loads(repeated["body"]) == json.loads(first["body"])
    assert stack.objects() == stored


def test_redelivered_message_is_acknowledged_without_a_second_object(
    stack: Stack, context: LambdaContext
) -> None:
    event = load_event("ExportQueueFunction/batch")
    assert call("ExportQueueFunction", event, stack, context) == {"batchItemFailures": []}
    stored = stack.objects()
    assert call("ExportQueueFunction", event, stack, context) == {"batchItemFailures": []}
    assert stack.objects() == stored


def test_not_an_sqs_event_is_reported_not_raised(stack: Stack, context: LambdaContext) -> None:
    assert call("ExportQueueFunction", {"hello": "world"}, stack, context) == {
        "batchItemFailures": []
    }


def test_unknown_route_is_a_json_404(stack: Stack, context: LambdaContext) -> None:
    event = load_event("GetItemFunction/found")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/elsewhere"
    response = call("GetItemFunction", event, stack, context)
    assert response["statusCode"] == 404
    assert json.loads(response["body"]) == {"message": "no such route"}
