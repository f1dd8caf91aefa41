"""Reads of the items DynamoDB table."""

import base64
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import boto3

from app.services.errors import AWS_ERRORS, DependencyError
from app.sessions import dynamodb_client

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import GetItemInputTypeDef, ScanInputTypeDef

JsonValue: TypeAlias = "bool | Decimal | str | list[JsonValue] | dict[str, JsonValue] | None"
"""An item in JSON terms; its numbers are exact Decimals, which ``exact_json.dumps`` writes."""
Item: TypeAlias = dict[str, JsonValue]

KEY_ATTRIBUTE = "item_id"
_ITEMS_AS_SENT = "ItemsAsSent"


def _to_json(attribute: Mapping[str, Any]) -> JsonValue:
    """A DynamoDB attribute value (``{"N": "1.50"}``...) in JSON terms.

    Numbers become Decimals, exactly what DynamoDB stored (a float would keep about 16 of its 38
    digits), binary stays base64 text (as DynamoDB sends it; botocore's parsed responses hold
    bytes, which are encoded back), and sets become lists: numbers in numeric order, the others
    sorted by ``repr``. One pass, straight from the wire format: boto3's TypeDeserializer would
    build sets and Binary objects only for them to be converted again.
    """
    ((kind, value),) = attribute.items()
    try:
        convert = _CONVERTERS[kind]
    except KeyError:
        raise ValueError(f"unknown DynamoDB type {kind!r}") from None
    return convert(value)


def _base64(value: str | bytes) -> str:
    return value if isinstance(value, str) else base64.b64encode(value).decode()


_CONVERTERS: dict[str, Callable[[Any], JsonValue]] = {
    "S": lambda value: value,
    "BOOL": lambda value: value,
    "N": Decimal,
    "NULL": lambda _: None,
    "M": lambda value: {name: _to_json(member) for name, member in value.items()},
    "L": lambda value: [_to_json(member) for member in value],
    "B": _base64,
    "SS": lambda value: sorted(value, key=repr),
    "NS": lambda value: cast("list[JsonValue]", sorted(map(Decimal, value))),
    "BS": lambda value: sorted(map(_base64, value), key=repr),
}


def _item(raw: Mapping[str, Any]) -> Item:
    return {name: _to_json(value) for name, value in raw.items()}


def _keep_items_as_sent(
    response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: object
) -> None:
    """botocore's ``before-parse`` hook for Scan: the items skip its model-driven parser.

    That parser rebuilds every attribute of every item against the service model: about 75 µs
    an item, most of a table export's CPU and a second copy of each page in memory. The items
    are already plain JSON of a known shape, so they are taken as sent; the rest of the body
    (counts, ``LastEvaluatedKey``) and every error response are parsed as usual.
    """
    if response_dict["status_code"] != 200:
        return
    try:
        body = json.loads(response_dict["body"])
    except ValueError:  # not DynamoDB's JSON (a proxy's page?): botocore's parser reports it
        return
    if not isinstance(body, dict):
        return
    customized_response_dict[_ITEMS_AS_SENT] = body.pop("Items", [])
    # What is left holds no item numbers: keys' numbers are {"N": "..."} text, and the counts and
    # capacity units (parsed as floats by botocore anyway) come back from repr unchanged.
    response_dict["body"] = json.dumps(body).encode()


@dataclass(frozen=True)
class ScanPage:
    items: list[Item]
    next_key: dict[str, Any] | None
    """Where the next page starts (``LastEvaluatedKey``); ``None`` after the last page."""
    read_units: float = 0.0
    """The read capacity the page consumed, as DynamoDB counted it (what a read limit spends)."""


class ItemsTable:
    """The items table, read with the function's own (base) session."""

    def __init__(self, session: boto3.Session, table_name: str) -> None:
        self._client = dynamodb_client(session)
        self._client.meta.events.register("before-parse.dynamodb.Scan", _keep_items_as_sent)
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
        self,
        segment: int,
        total_segments: int,
        start_key: dict[str, Any] | None = None,
        page_items: int | None = None,
    ) -> Iterator[ScanPage]:
        """One segment of a parallel scan, a page at a time, from ``start_key``.

        A page holds at most ``page_items`` items (and DynamoDB's 1 MB), and only one page is
        alive at a time: the previous one is let go before the next is read, so a caller that
        drops each page before asking for the next holds one page, however large the table.
        """
        request: ScanInputTypeDef = {
            "TableName": self.table_name,
            "Segment": segment,
            "TotalSegments": total_segments,
            "ReturnConsumedCapacity": "TOTAL",
        }
        if page_items is not None:
            request["Limit"] = page_items
        if start_key:
            request["ExclusiveStartKey"] = start_key
        while True:
            page = self._scan_page(request)
            if page.next_key is None:
                yield page
                return
            request["ExclusiveStartKey"] = page.next_key
            yield page
            del page  # before the next page arrives

    def _scan_page(self, request: "ScanInputTypeDef") -> ScanPage:
        """One page; botocore's parsed response is garbage once this returns."""
        try:
            response = self._client.scan(**request)
        except AWS_ERRORS as error:
            raise DependencyError.wrap(self.table_name, "Scan", error) from error
        # As sent, unless the hook left the body to botocore: both forms convert alike.
        raw_items: list[Mapping[str, Any]] = cast(Mapping[str, Any], response).get(
            _ITEMS_AS_SENT, response.get("Items", [])
        )
        return ScanPage(
            [_item(raw) for raw in raw_items],
            response.get("LastEvaluatedKey"),
            float(response.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0)),
        )
