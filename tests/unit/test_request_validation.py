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


_NOT_AN_OBJECT = "the body must be a JSON object"
_FIELDS_LIST = "fields must be a list of 1-20 attribute names"
_FIELD_NAME = "each field must be an attribute name: letters, digits and '_', up to 64 characters"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, _NOT_AN_OBJECT + ", e.g. {} for the defaults"),
        ("   ", _NOT_AN_OBJECT + ", e.g. {} for the defaults"),
        ("not json", "the body is not valid JSON"),
        ("[1, 2]", _NOT_AN_OBJECT),
        ('"text"', _NOT_AN_OBJECT),
        ('{"fields": "name"}', _FIELDS_LIST),
        ('{"fields": []}', _FIELDS_LIST),
        ('{"fields": [1]}', _FIELD_NAME),
        ('{"fields": ["a b"]}', _FIELD_NAME),
        ('{"fields": ["a", "a"]}', "fields must not repeat a name"),
        (json.dumps({"fields": [f"f{i}" for i in range(21)]}), _FIELDS_LIST),
        ('{"feilds": ["name"]}', "unknown field(s) 'feilds'; allowed: fields"),
        ('{"b": 1, "a": 2, "fields": ["x"]}', "unknown field(s) 'a', 'b'; allowed: fields"),
        (  # at most five named, so a body of many typos still gets a short answer
            json.dumps(dict.fromkeys("abcdef", 1)),
            "unknown field(s) 'a', 'b', 'c', 'd', 'e'; allowed: fields",
        ),
        ('{"fields": ["\\ud800"]}', _FIELD_NAME),  # an escaped surrogate is JSON text
        ('{"fields": ["x"]}\ud800', "the body is not valid UTF-8 text"),  # a raw one is not
        (json.dumps({"fields": ["a" * MAX_BODY_BYTES]}), "the body must be at most 16384 bytes"),
    ],
)
def test_bad_api_bodies_say_exactly_what_is_wrong(body: str | None, message: str) -> None:
    """The message is the API's answer (a 400's body): each says exactly what to fix."""
    with pytest.raises(InvalidRequestError) as raised:
        export_request_from_api("42", body)
    assert str(raised.value) == message


def test_a_body_of_exactly_the_size_limit_is_judged_on_its_content() -> None:
    body = '{"fields": ["name"]}'
    body += " " * (16384 - len(body))
    assert len(body.encode()) == MAX_BODY_BYTES
    assert export_request_from_api("42", body) == ExportRequest("42", ("name",))


def test_as_many_fields_as_allowed_are_accepted() -> None:
    names = tuple(f"f{i}" for i in range(20))
    assert len(names) == MAX_FIELDS
    assert export_request_from_api("42", json.dumps({"fields": names})).fields == names


def test_queue_message() -> None:
    assert export_request_from_message('{"item_id": "7", "fields": ["name"]}') == ExportRequest(
        "7", ("name",)
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{}", "item_id is required"),
        (
            '{"item_id": 42}',
            "item_id must be 1-64 characters of letters, digits, '_', '.' or '-', "
            "starting with a letter or digit",
        ),
        ('{"item_id": "42", "extra": 1}', "unknown field(s) 'extra'; allowed: fields, item_id"),
        (
            '{"item_id": "42", "' + "x" * 70 + '": 1}',
            "unknown field(s) '" + "x" * 64 + "'; allowed: fields, item_id",
        ),
        ("Hello from SQS!", "the body is not valid JSON"),
        *(
            (json_itself, "the body must be text holding a JSON object, not JSON itself")
            for json_itself in (7, ["42"], {"item_id": "42"}, True)
        ),
        (None, "the body must be a JSON object, e.g. {} for the defaults"),
    ],
)
def test_bad_queue_messages_say_exactly_what_is_wrong(body: object, message: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        export_request_from_message(body)
    assert str(raised.value) == message


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
