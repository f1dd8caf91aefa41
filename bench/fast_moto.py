"""A DynamoDB Scan for the benchmark's embedded AWS that returns moto's pages, only faster.

moto 5.2 makes a table export of 100k items unmeasurable, for two reasons of its own:

1. ``Table.scan`` sorts the whole table and walks it from the first item for every page, so a scan
   costs O(pages x items);
2. its model-driven response serializer walks every attribute of every item against the service
   model: about 5 ms an item (a 1 MB page of 2,500 items takes 13 s to serialize).

:func:`fast_scan` replaces both, inside the process that runs the embedded server and only while
it is active: pages start at the exclusive start key by bisection in an order cached per table
(rebuilt whenever its keys change), and a page's items, which are already in DynamoDB's JSON wire
format, are encoded with :func:`json.dumps`. Everything else (the page size limit, segments,
``Limit``, ``LastEvaluatedKey``, ``Count``/``ScannedCount``, filter and projection expressions)
keeps moto's own code, and anything else falls back to it: indexes, tables with a range key,
legacy ``ScanFilter`` conditions, binary values. ``tests/e2e/test_bench_smoke.py`` checks that both
return the same pages.
"""

from __future__ import annotations

import bisect
import copy
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

_PLAIN_KEY_TYPES = frozenset({"S", "N"})


_Keys = tuple[list[Any], list[Any]]
"""Hash keys in moto's scan order, and their values (what ``ExclusiveStartKey`` is bisected on)."""


@dataclass
class _Order:
    fingerprint: tuple[Any, ...]
    keys: _Keys
    segments: dict[tuple[int, int], _Keys] = field(default_factory=dict)


_Cache = dict[int, _Order]
_SORTING = threading.Lock()


def _sorted_keys(table: Any, cache: _Cache, segments: tuple[Any, Any]) -> _Keys:  # noqa: ANN401
    """The keys a scan of ``segments`` walks, in moto's order; cached until the keys change.

    One thread sorts while the others wait (parallel scan segments ask at once): sorting 100k
    keys takes a while, and four threads doing it under the GIL took longer than the clients'
    read timeout. A segment's keys are picked once too: moto would walk the whole table for each
    segment's every page, where DynamoDB reads only the segment.
    """
    items = table.items
    fingerprint = (id(items), len(items), next(reversed(items), None))
    with _SORTING:
        order = cache.get(id(table))
        if order is None or order.fingerprint != fingerprint:
            keyed = sorted(((key.cast_value, key) for key in items), key=lambda pair: pair[0])
            order = _Order(fingerprint, ([key for _, key in keyed], [value for value, _ in keyed]))
            cache[id(table)] = order
        if segments == (None, None):
            return order.keys
        if segments not in order.segments:
            keys, values = order.keys
            inside = [n for n, key in enumerate(keys) if items[key].is_within_segment(segments)]
            order.segments[segments] = ([keys[n] for n in inside], [values[n] for n in inside])
        return order.segments[segments]


@contextmanager
def fast_scan() -> Iterator[None]:
    """Speed up moto's DynamoDB Scan in this process until exit; moto is restored afterwards."""
    from moto.core.responses import ActionResult
    from moto.dynamodb.models import table as table_module
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.responses import DynamoHandler

    table_class = table_module.Table
    original_scan = table_class.scan
    original_handler_scan = DynamoHandler.scan
    cache: _Cache = {}

    def scan(  # noqa: PLR0917 - moto's signature: its backend passes arguments by position
        self: Any,  # noqa: ANN401
        filters: dict[str, Any],
        limit: int,
        exclusive_start_key: dict[str, Any],
        filter_expression: Any = None,  # noqa: ANN401
        index_name: str | None = None,
        consistent_read: bool = False,
        projection_expression: list[list[str]] | None = None,
        segments: tuple[None, None] | tuple[int, int] = (None, None),
    ) -> tuple[list[Any], int, dict[str, Any] | None]:
        start = exclusive_start_key.get(self.hash_key_attr) if exclusive_start_key else None
        first = next(iter(self.items), None)
        if (
            index_name
            or filters
            or self.range_key_attr
            or (exclusive_start_key and (len(exclusive_start_key) != 1 or start is None))
            or (first is not None and first.type not in _PLAIN_KEY_TYPES)
        ):
            return original_scan(
                self,
                filters,
                limit,
                exclusive_start_key,
                filter_expression,
                index_name,
                consistent_read,
                projection_expression,
                segments,
            )
        keys, values = _sorted_keys(self, cache, segments)
        position = 0 if start is None else bisect.bisect_right(values, DynamoType(start).cast_value)
        results: list[Any] = []
        result_size = 0
        scanned_count = 0
        last_evaluated_key = None
        for key in keys[position:]:
            item = self.items[key]
            size = item.size()
            if len(results) == limit or result_size + size > table_module.RESULT_SIZE_LIMIT:
                last_evaluated_key = self._get_last_evaluated_key(results[-1], index_name)
                break
            # moto copies every item; of what follows, only a projection could change one
            results.append(copy.deepcopy(item) if projection_expression else item)
            result_size += size
            scanned_count += 1
        if filter_expression is not None:
            results = [item for item in results if filter_expression.expr(item)]
        if projection_expression:
            results = [item.project(projection_expression) for item in results]
        return results, scanned_count, last_evaluated_key

    class PlainJsonItems(ActionResult):
        """A Scan result whose items are encoded by ``json.dumps``, the envelope by moto."""

        def execute_result(self, context: Any) -> Any:  # noqa: ANN401
            body: dict[str, Any] = self.result  # type: ignore[assignment]
            envelope = {name: value for name, value in body.items() if name != "Items"}
            status, headers, encoded = ActionResult(envelope).execute_result(context)
            if "Items" in body:
                document = json.loads(encoded)
                document["Items"] = body["Items"]
                try:
                    encoded = json.dumps(document)
                except TypeError:  # bytes: moto's serializer base64-encodes binary values
                    return ActionResult(body).execute_result(context)
            return status, headers, encoded

    def handler_scan(self: Any) -> Any:  # noqa: ANN401
        return PlainJsonItems(original_handler_scan(self).result)

    handler_scan.__name__ = "scan"
    table_class.scan = scan  # type: ignore[method-assign]
    DynamoHandler.scan = handler_scan  # type: ignore[method-assign]
    try:
        yield
    finally:
        table_class.scan = original_scan  # type: ignore[method-assign]
        DynamoHandler.scan = original_handler_scan  # type: ignore[method-assign]
