"""Make moto's DynamoDB writes to one item atomic, as DynamoDB's are.

DynamoDB applies the writes to one item one at a time: an ``UpdateItem`` that adds to a set sees
every earlier one's addition, and its condition is checked against the item it then changes. moto
5.2's backend reads, checks and writes an item with nothing holding other threads off, so two
concurrent updates can both read the same item and one addition is lost (and a table's or an
item's dict may change under a reader: a 500 "dictionary changed size during iteration"). The
fanned-out table export's "the last segment to finish writes the manifest" rests on DynamoDB's
guarantee, so the embedded AWS and the tests' in-process moto must keep it too.

:func:`install` serializes every DynamoDB request the process answers, reads included (a
coarser lock than DynamoDB's per-item one: slower under contention, never less atomic; under
the GIL moto's requests hardly ran in parallel anyway); it is idempotent and stays for the life of
the process.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb.responses import DynamoHandler

_request_lock = threading.RLock()


def _serialized(answer: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(answer)
    def serialized_answer(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        with _request_lock:
            return answer(*args, **kwargs)

    serialized_answer.atomic = True  # type: ignore[attr-defined]
    return serialized_answer


def install() -> None:
    answer = DynamoHandler.call_action
    if not getattr(answer, "atomic", False):
        DynamoHandler.call_action = _serialized(answer)  # type: ignore[method-assign]
