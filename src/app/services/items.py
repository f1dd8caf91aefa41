"""Reads of the items DynamoDB table."""

import base64
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, SupportsBytes, TypeAlias, cast

import boto3
from boto3.dynamodb.types import Binary, TypeDeserializer

from app.services.errors import AWS_ERRORS, DependencyError
from app.sessions import dynamodb_client

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import GetItemInputTypeDef, ScanInputTypeDef

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"
Item: TypeAlias = dict[str, JsonValue]

KEY_ATTRIBUTE = "item_id"
_DESERIALIZER = TypeDeserializer()


def _to_json(value: Any) -> JsonValue:  # noqa: ANN401 - DynamoDB values are untyped
    """DynamoDB's types in JSON terms: whole numbers stay ints, sets become sorted lists."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Binary):  # boto3's wrapper for B values; its stub omits __bytes__
        value = bytes(cast(SupportsBytes, value))
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, set | frozenset):
        return sorted((_to_json(member) for member in value), key=repr)
    if isinstance(value, Mapping):
        return {str(key): _to_json(member) for key, member in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_to_json(member) for member in value]
    return value  # type: ignore[no-any-return]


def _item(raw: Mapping[str, Any]) -> Item:
    return {name: _to_json(_DESERIALIZER.deserialize(value)) for name, value in raw.items()}


@dataclass(frozen=True)
class ScanPage:
    items: list[Item]
    next_key: dict[str, Any] | None
    """Where the next page starts (``LastEvaluatedKey``); ``None`` after the last page."""


class ItemsTable:
    """The items table, read with the function's own (base) session."""

    def __init__(self, session: boto3.Session, table_name: str) -> None:
        self._client = dynamodb_client(session)
        self.table_name = table_name

    def get(self, item_id: str, fields: Sequence[str] | None = None) -> Item | None:
        """The item, or ``None`` when absent; ``fields`` limits the attributes read."""
        request: GetItemInputTypeDef = {
            "TableName": self.table_name,
            "Key": {KEY_ATTRIBUTE: {"S": item_id}},
        }
        if fields:
            wanted = dict.fromkeys([KEY_ATTRIBUTE, *fields])
            names = {f"#f{index}": name for index, name in enumerate(wanted)}
            request["ProjectionExpression"] = ", ".join(names)
            request["ExpressionAttributeNames"] = names
        try:
            response = self._client.get_item(**request)
        except AWS_ERRORS as error:
            raise DependencyError.wrap(self.table_name, "GetItem", error) from error
        raw = response.get("Item")
        return None if raw is None else _item(raw)

    def scan_pages(
        self, segment: int, total_segments: int, start_key: dict[str, Any] | None = None
    ) -> Iterator[ScanPage]:
        """One segment of a parallel scan, a page (up to 1 MB) at a time, from ``start_key``.

        Pages are yielded as they arrive, so a caller that stops early, or resumes later from a
        page's ``next_key``, never holds more than one page.
        """
        request: ScanInputTypeDef = {
            "TableName": self.table_name,
            "Segment": segment,
            "TotalSegments": total_segments,
        }
        next_key = start_key
        while True:
            if next_key:
                request["ExclusiveStartKey"] = next_key
            try:
                response = self._client.scan(**request)
            except AWS_ERRORS as error:
                raise DependencyError.wrap(self.table_name, "Scan", error) from error
            next_key = response.get("LastEvaluatedKey")
            yield ScanPage([_item(raw) for raw in response.get("Items", [])], next_key)
            if not next_key:
                return
