"""Services against moto: what they read, what they write, and how AWS failures surface."""

import base64
import json
import weakref
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary
from hypothesis import given, settings
from hypothesis import strategies as st

from app.operations import UNVERIFIED, ItemNotFoundError, export_item
from app.operations.requests import ExportRequest
from app.services import DependencyError, ExportsBucket, IdempotencyConflictError, ItemsTable
from app.services import items as items_module
from app.services.items import ScanPage
from tests.conftest import Stack, load_event
from tests.dynamodb_numbers import NUMBERS, typed
from tests.handler_calls import call
from tools.emulator.lambda_context import LambdaContext
from tools.emulator.seed import ExactNumbers, load_seed, put_items

_TYPED = {
    "item_id": "typed",
    "whole": Decimal(3),
    "fraction": Decimal("0.25"),
    "names": {"b", "a"},
    "raw": b"\x00\x01",
    "nested": {"list": [Decimal(1), "two", None, True]},
}


def test_item_types_come_back_as_json(stack: Stack) -> None:
    put_items(stack.admin.client("dynamodb"), stack.items.table_name, [_TYPED])
    assert stack.items.get("typed") == {
        "item_id": "typed",
        "whole": Decimal(3),
        "fraction": Decimal("0.25"),
        "names": ["a", "b"],
        "raw": base64.b64encode(b"\x00\x01").decode(),
        "nested": {"list": [1, "two", None, True]},
    }


# Every DynamoDB type, nested: what a table may hold whatever this project's items look like.
_SCALARS = st.one_of(
    st.text(max_size=8),
    NUMBERS,  # DynamoDB's whole domain: 38 digits, 1E-130 to 9.99...E+125
    st.binary(max_size=8),
    st.booleans(),
    st.none(),
)
_SETS = st.one_of(
    st.frozensets(st.text(max_size=4), min_size=1, max_size=4).map(set),
    st.frozensets(NUMBERS, min_size=1, max_size=4).map(set),
    st.frozensets(st.binary(min_size=1, max_size=4), min_size=1, max_size=4).map(set),
)
_VALUES = st.recursive(
    st.one_of(_SCALARS, _SETS),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=8,
)


def _reference_json(value: Any) -> Any:
    """What the services promise for a value put in, from the value itself: a number is the
    Decimal that went in (exact), binary its base64 text, a set a sorted list."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, set):
        members = [_reference_json(member) for member in value]
        return (
            sorted(members) if isinstance(next(iter(value)), Decimal) else sorted(members, key=repr)
        )
    if isinstance(value, dict):
        return {key: _reference_json(member) for key, member in value.items()}
    if isinstance(value, list):
        return [_reference_json(member) for member in value]
    return value


@given(_VALUES)
@settings(max_examples=300, deadline=None)
def test_values_convert_exactly_from_the_wire_and_from_botocore(value: Any) -> None:
    """Scans hand items over as DynamoDB sent them (base64 text for binary), GetItem as botocore
    parsed them (bytes): both become the JSON the value put in implies, numbers digit for digit."""
    parsed = ExactNumbers().serialize(value)
    expected = typed(_reference_json(value))
    as_sent = json.loads(json.dumps(parsed, default=_wire))
    assert typed(items_module._to_json(as_sent)) == expected
    assert typed(items_module._to_json(parsed)) == expected


def _wire(value: object) -> object:
    """How botocore's serializer writes binary."""
    if isinstance(value, Binary | bytes):
        return base64.b64encode(bytes(value)).decode()  # type: ignore[arg-type]
    raise TypeError(type(value))


@pytest.mark.parametrize("body", [b"<html>proxy</html>", b"[]"], ids=["not-json", "not-an-object"])
def test_a_scan_body_that_is_not_a_json_object_is_left_to_botocores_parser(body: bytes) -> None:
    response = {"status_code": 200, "body": body, "headers": {}}
    customized: dict[str, Any] = {}
    items_module._keep_items_as_sent(response, customized)
    assert customized == {}
    assert response["body"] == body


@pytest.mark.parametrize(
    ("body", "items"),
    [
        (
            b'{"Items": [{"item_id": {"S": "a"}}], "Count": 1, "ScannedCount": 3}',
            [{"item_id": {"S": "a"}}],
        ),
        (b'{"Count": 0, "ScannedCount": 3}', []),  # a count-only page (Select=COUNT) has no Items
    ],
    ids=["items", "no-items"],
)
def test_a_scan_body_s_items_are_taken_out_and_the_rest_left_to_botocore(
    body: bytes, items: list[dict[str, Any]]
) -> None:
    response = {"status_code": 200, "body": body, "headers": {}}
    customized: dict[str, Any] = {}
    items_module._keep_items_as_sent(response, customized)
    assert customized == {items_module._ITEMS_AS_SENT: items}
    assert json.loads(response["body"]) == {"Count": len(items), "ScannedCount": 3}


def test_an_unknown_attribute_type_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'X'"):
        items_module._to_json({"X": "?"})


@pytest.mark.parametrize("as_sent", [True, False], ids=["as-sent", "parsed-by-botocore"])
def test_a_scan_returns_each_item_as_get_does(stack: Stack, as_sent: bool) -> None:
    seeded = [item["item_id"] for item in load_seed()["ItemsTable"]]
    put_items(stack.admin.client("dynamodb"), stack.items.table_name, [_TYPED])
    if not as_sent:  # what a body the hook cannot read falls back to
        stack.items._client.meta.events.unregister(
            "before-parse.dynamodb.Scan", items_module._keep_items_as_sent
        )
    raw = stack.items._client.scan(TableName=stack.items.table_name, Limit=1)
    assert ("ItemsAsSent" in raw) is as_sent
    scanned = [item for page in stack.items.scan_pages(0, 1) for item in page.items]
    assert sorted(item["item_id"] for item in scanned) == sorted([*seeded, "typed"])  # type: ignore[type-var]
    for item in scanned:
        assert item == stack.items.get(str(item["item_id"]))


def test_a_scan_page_is_let_go_before_the_next_is_read(stack: Stack) -> None:
    """A segment holds one page: the one before is garbage by the time the next Scan is sent."""
    more = [{"item_id": f"more-{number}"} for number in range(5)]
    put_items(stack.admin.client("dynamodb"), stack.items.table_name, more)
    pages = stack.items.scan_pages(0, 1, page_items=2)
    previous: list[weakref.ref[ScanPage]] = []
    alive_at_scan: list[bool] = []

    def check(**_: object) -> None:
        alive_at_scan.append(any(page() is not None for page in previous))

    stack.items._client.meta.events.register("before-call.dynamodb.Scan", check)
    try:
        for page in pages:
            assert len(page.items) <= 2
            previous.append(weakref.ref(page))
            del page
    finally:
        stack.items._client.meta.events.unregister("before-call.dynamodb.Scan", check)
    assert len(alive_at_scan) >= 3
    assert not any(alive_at_scan)


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
        ExportsBucket(stack.writer, "no-such-bucket").write("42", "e1", {}, "fingerprint")
    assert raised.value.code == "NoSuchBucket"


def test_write_never_replaces_an_existing_object(stack: Stack) -> None:
    first = stack.exports.write("42", "export-1", {"version": 1}, "same request")
    second = stack.exports.write("42", "export-1", {"version": 2}, "same request")
    assert first.created
    assert not second.created
    assert second.key == first.key
    assert stack.objects() == {first.key: {"version": 1}}
    versions = stack.admin.client("s3").list_object_versions(Bucket=stack.exports.bucket_name)
    assert len(versions["Versions"]) == 1


def test_write_refuses_an_export_id_another_request_made(stack: Stack) -> None:
    first = stack.exports.write("42", "export-1", {"version": 1}, "request one")
    with pytest.raises(IdempotencyConflictError, match="export-1") as raised:
        stack.exports.write("42", "export-1", {"version": 2}, "request two")
    assert raised.value.export_id == "export-1"
    assert stack.objects() == {first.key: {"version": 1}}


def test_export_of_an_absent_item_writes_nothing(stack: Stack) -> None:
    with pytest.raises(ItemNotFoundError):
        export_item(
            ExportRequest("nope"), "e1", items=stack.items, exports=stack.exports, caller=UNVERIFIED
        )
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
