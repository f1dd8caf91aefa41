"""Validation of requests, before any AWS call."""

import hashlib
import json

import pytest

from app.operations.requests import (
    MAX_BODY_BYTES,
    MAX_FIELDS,
    ExportRequest,
    InvalidRequestError,
    export_request_from_api,
    export_request_from_message,
    parse_item_id,
)


@pytest.mark.parametrize("item_id", ["42", "a", "sku-7.v2", "A_b-C", "x" * 64])
def test_valid_item_ids(item_id: str) -> None:
    assert parse_item_id(item_id) == item_id


@pytest.mark.parametrize(
    "item_id", ["", " ", "-leading-dash", "../etc", "a b", "x" * 65, "é", "a/b", None, 42, ["42"]]
)
def test_invalid_item_ids(item_id: object) -> None:
    with pytest.raises(InvalidRequestError, match="item_id"):
        parse_item_id(item_id)


def test_api_request_with_fields() -> None:
    request = export_request_from_api("42", '{"fields": ["name", "price"]}')
    assert request == ExportRequest("42", ("name", "price"))


def test_api_request_with_defaults() -> None:
    assert export_request_from_api("42", "{}") == ExportRequest("42", None)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, "JSON object"),
        ("   ", "JSON object"),
        ("not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('"text"', "JSON object"),
        ('{"fields": "name"}', "list"),
        ('{"fields": []}', "list"),
        ('{"fields": [1]}', "attribute name"),
        ('{"fields": ["a b"]}', "attribute name"),
        ('{"fields": ["a", "a"]}', "repeat"),
        (json.dumps({"fields": [f"f{i}" for i in range(MAX_FIELDS + 1)]}), "list"),
        ('{"feilds": ["name"]}', "unknown field"),
        (json.dumps({"fields": ["a" * MAX_BODY_BYTES]}), "at most"),
    ],
)
def test_bad_api_bodies_say_what_is_wrong(body: str | None, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        export_request_from_api("42", body)


def test_queue_message() -> None:
    assert export_request_from_message('{"item_id": "7", "fields": ["name"]}') == ExportRequest(
        "7", ("name",)
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{}", "^item_id is required$"),
        ('{"item_id": 42}', "item_id"),
        ('{"item_id": "42", "extra": 1}', "unknown field"),
        ("Hello from SQS!", "not valid JSON"),
    ],
)
def test_bad_queue_messages(body: str, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        export_request_from_message(body)


@pytest.mark.parametrize(
    ("request_", "caller", "canonical"),
    [
        (ExportRequest("42"), None, '{"fields":null,"item_id":"42"}'),
        (ExportRequest("42", ("b", "a")), None, '{"fields":["a","b"],"item_id":"42"}'),
        (
            ExportRequest("7", ("x",)),
            {"subject": "s-1", "client_id": None},
            '{"caller":{"client_id":null,"subject":"s-1"},"fields":["x"],"item_id":"7"}',
        ),
    ],
)
def test_the_fingerprint_is_the_sha256_of_the_compact_sorted_json_of_the_request(
    request_: ExportRequest, caller: dict[str, str | None] | None, canonical: str
) -> None:
    """Each export stores it (``x-amz-meta-request-sha256``) and every later deployment compares
    a retry's against it: its form may not drift, or retries across a deploy would get 409s."""
    assert request_.fingerprint(caller) == hashlib.sha256(canonical.encode()).hexdigest()
