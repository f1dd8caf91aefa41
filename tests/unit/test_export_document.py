"""The exported document, whole: what a consumer of the bucket reads, key for key."""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine

from app.operations import UNVERIFIED, ExportRequest
from app.operations.export_item import export_item
from app.services import ExportResult

pytestmark = pytest.mark.unit


class _Items:
    def get(self, item_id: str, fields: tuple[str, ...] | None) -> dict[str, Any]:
        return {"item_id": item_id, "fields": list(fields or ())}


class _Exports:
    def __init__(self) -> None:
        self.written: list[tuple[str, str, dict[str, Any], str, Mapping[str, str] | None]] = []

    def write(
        self,
        item_id: str,
        export_id: str,
        document: dict[str, Any],
        fingerprint: str,
        recorded: Mapping[str, str] | None = None,
    ) -> ExportResult:
        self.written.append((item_id, export_id, document, fingerprint, recorded))
        return ExportResult(key=f"exports/{item_id}/{export_id}.json", created=True)


@time_machine.travel(datetime(2026, 12, 3, 7, 0, 1, 250000, tzinfo=UTC), tick=False)
def test_the_document_holds_the_item_its_ids_and_when_in_utc() -> None:
    exports = _Exports()
    request = ExportRequest("42", ("name",))

    export_item(request, "e-1", items=_Items(), exports=exports, caller=UNVERIFIED)  # type: ignore[arg-type]

    [(item_id, export_id, document, fingerprint, recorded)] = exports.written
    assert (item_id, export_id, fingerprint) == ("42", "e-1", request.fingerprint())
    assert document == {
        "export_id": "e-1",
        "exported_at": "2026-12-03T07:00:01.250000+00:00",  # an offset, whatever TZ the host has
        "item": {"item_id": "42", "fields": ["name"]},
        "item_id": "42",
    }
    assert recorded == UNVERIFIED.recorded()
