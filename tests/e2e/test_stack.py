"""The stack from outside, written once: offline in ``make test``, against AWS with ``make e2e``.

Each scenario goes through a front door a caller has (the HTTP API with a token, the export
queue, an on-demand table export) and then reads the bucket to check what it produced, value for
value. The smoke ones read only, so they may run against prod. ``tests/e2e/conftest.py`` picks the
target; ``tools/e2e/`` holds the two.
"""

import gzip
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import EVENTS
from tools.e2e.target import HttpResponse, StoredObject, Target

READ, EXPORT = "items/read", "items/export"
ITEM_TEMPLATE: dict[str, Any] = {
    "name": "End-to-end probe",
    "price": Decimal("12345678901234567.5"),  # more digits than a float keeps
    "stock": 3,
    "tags": ["e2e", "probe"],
    "dimensions": {"height_cm": Decimal("0.1"), "width_cm": 16},
    "discontinued": False,
    "supplier": None,
}


def _typed(value: Any) -> Any:
    """``value`` with each scalar tagged by its JSON type: ``False`` is not ``0`` here, while
    ``3`` and ``Decimal("3")`` are the same number, however the JSON was parsed."""
    if isinstance(value, dict):
        return {key: _typed(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_typed(inner) for inner in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | Decimal):
        return ("number", Decimal(value))
    return (type(value).__name__, value)


def _same(found: Any, expected: Any) -> bool:
    return bool(_typed(found) == _typed(expected))


@pytest.fixture
def item(target: Target) -> Iterator[dict[str, Any]]:
    """A test item of this run's own (``e2e-`` ids are the only ones the e2e role may write)."""
    probe = {"item_id": f"e2e-{uuid.uuid4().hex[:12]}", **ITEM_TEMPLATE}
    target.put_item(probe)
    yield probe
    target.delete_item(probe["item_id"])


def _message(response: Any) -> str:
    body = response.json()
    assert isinstance(body["message"], str)
    assert body["message"]
    return str(body["message"])


# --- smoke: read-only, safe against prod -----------------------------------------------------


@pytest.mark.smoke
def test_an_unknown_item_is_a_404_with_a_message(target: Target) -> None:
    response = target.request(
        "GET", f"items/e2e-absent-{uuid.uuid4().hex[:12]}", token=target.token([READ])
    )
    assert response.status == 404, response
    assert response.headers["content-type"].startswith("application/json")
    _message(response)


@pytest.mark.smoke
def test_a_route_the_api_lacks_is_a_404(target: Target) -> None:
    response = target.request("GET", "items", token=target.token([READ]))
    assert (response.status, response.json()) == (404, {"message": "Not Found"})


@pytest.mark.smoke
def test_a_request_without_a_token_is_unauthorized(target: Target) -> None:
    response = target.request("GET", "items/42")
    assert (response.status, response.json()) == (401, {"message": "Unauthorized"})


@pytest.mark.smoke
def test_a_token_without_the_routes_scope_is_forbidden(target: Target) -> None:
    response = target.request("GET", "items/42", token=target.token([EXPORT]))
    assert (response.status, response.json()) == (403, {"message": "Forbidden"})
    response = target.request("POST", "items/42/exports", token=target.token([READ]), body=b"{}")
    assert (response.status, response.json()) == (403, {"message": "Forbidden"})


# --- the whole path: writes, so dev only ------------------------------------------------------


def test_get_returns_the_item_exactly_as_stored(target: Target, item: dict[str, Any]) -> None:
    response = target.request("GET", f"items/{item['item_id']}", token=target.token([READ]))
    assert response.status == 200, response
    assert _same(response.json(), item), response.json()


def test_an_api_export_lands_in_the_bucket_once(target: Target, item: dict[str, Any]) -> None:
    key = f"e2e-{uuid.uuid4().hex[:16]}"
    token = target.token([EXPORT])
    body = json.dumps({"fields": ["name", "price"]}).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": key}

    def post() -> HttpResponse:
        path = f"items/{item['item_id']}/exports"
        return target.request("POST", path, token=token, body=body, headers=headers)

    created = post()
    assert created.status == 201, created
    export_id = f"client-{key}"  # the service keeps client-chosen ids apart from its own
    assert created.json() == {
        "export_id": export_id,
        "key": f"exports/{item['item_id']}/{export_id}.json",
    }

    stored = target.read(created.json()["key"])
    assert stored is not None
    document = stored.json()
    assert document["export_id"] == export_id
    assert document["item_id"] == item["item_id"]
    assert _same(document["item"], {key: item[key] for key in ("item_id", "name", "price")})
    assert stored.content_type == "application/json"
    assert len(stored.metadata["request-sha256"]) == 64
    assert stored.metadata["requested-by"] == target.client_id, "who asked: the token's subject"
    assert stored.metadata["requested-client"] == target.client_id

    repeated = post()
    assert (repeated.status, repeated.json()) == (200, created.json())
    assert target.read(created.json()["key"]) == stored, "a retry must not write again"


def test_a_queued_export_request_lands_in_the_bucket(target: Target, item: dict[str, Any]) -> None:
    message_id = target.send_export_request(
        json.dumps({"item_id": item["item_id"], "fields": ["stock", "tags"]})
    )
    key = f"exports/{item['item_id']}/{message_id}.json"
    stored: StoredObject = target.eventually(lambda: target.read(key), f"the export {key}")
    document = stored.json()
    assert document["export_id"] == message_id
    assert _same(document["item"], {key: item[key] for key in ("item_id", "stock", "tags")})
    assert stored.metadata["requested-by"] == stored.metadata["requested-client"] == "-", (
        "a message carries no verified caller"
    )


def test_an_on_demand_table_export_holds_the_item(target: Target, item: dict[str, Any]) -> None:
    event = json.loads((EVENTS / "ExportTableFunction" / "on_demand.json").read_text())
    outcome = target.start_table_export(event)
    assert outcome["status"] in {"complete", "continuing"}, outcome
    manifest_key = f"exports/table/{outcome['run_id']}/manifest.json"
    manifest = target.eventually(lambda: target.read(manifest_key), f"the manifest {manifest_key}")

    document = manifest.json()
    assert document["run_id"] == outcome["run_id"]
    lines = []
    for entry in document["objects"]:
        segment = target.read(entry["key"])
        assert segment is not None, entry
        assert segment.content_type == "application/gzip"
        found = gzip.decompress(segment.body).decode().splitlines()
        assert len(found) == entry["items"], entry
        lines += found
    assert len(lines) == document["items"]
    exported = [json.loads(line, parse_float=Decimal) for line in lines]
    mine = [found for found in exported if found["item_id"] == item["item_id"]]
    assert len(mine) == 1, mine
    assert _same(mine[0], item), mine[0]
