"""What an end-to-end scenario may do to a stack, whichever stack it is.

The scenarios in ``tests/e2e/test_stack.py`` are written once against :class:`Target`. Two
implementations carry them out: :mod:`tools.e2e.local` (the embedded AWS, offline, in ``make
test``) and :mod:`tools.e2e.deployed` (a deployed stack's outputs and your credentials, ``make
e2e ENV=dev``). A scenario only ever uses the stack's front doors (the HTTP API, the export queue,
an on-demand table export) and then reads what landed in the bucket.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import requests

T = TypeVar("T")


class TargetError(Exception):
    """The target cannot do what a scenario asked (a missing output, a failed invocation...)."""


class NotYetError(TargetError):
    """What a scenario waits for did not happen within its bound."""


@dataclass(frozen=True)
class HttpResponse:
    """An HTTP answer as a client sees it (header names lower-cased)."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:  # noqa: ANN401 - any JSON document
        """The body as JSON, every number exact (``Decimal``), as the service wrote it."""
        return json.loads(self.body, parse_float=Decimal, parse_int=Decimal)


@dataclass(frozen=True)
class StoredObject:
    """An object read back from the exports bucket."""

    key: str
    body: bytes
    content_type: str
    metadata: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:  # noqa: ANN401 - any JSON document
        return json.loads(self.body, parse_float=Decimal, parse_int=Decimal)


class Target(Protocol):
    """A running stack, seen from outside."""

    name: str
    """Says which stack, in test output."""
    api_url: str
    """The HTTP API's base URL, ending in ``/``."""
    client_id: str
    """The client the target's tokens name: what an export records as who asked."""

    def token(self, scopes: Sequence[str]) -> str:
        """An access token the API's authorizer accepts, carrying exactly ``scopes``."""
        ...

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """One HTTP request to the API (``path`` relative to :attr:`api_url`)."""
        ...

    def put_item(self, item: Mapping[str, Any]) -> None:
        """Put a test item into the items table (ids start with ``e2e-``)."""
        ...

    def delete_item(self, item_id: str) -> None: ...

    def send_export_request(self, body: str) -> str:
        """Queue an export request on the export queue; its message id (its export id)."""
        ...

    def start_table_export(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Invoke the table export directly, as an operator would; the function's response."""
        ...

    def keys(self, prefix: str) -> list[str]:
        """The keys in the exports bucket under ``prefix``."""
        ...

    def read(self, key: str) -> StoredObject | None:
        """The object at ``key``; None when there is none (yet)."""
        ...

    def eventually(self, check: Callable[[], T | None], what: str) -> T:
        """``check()`` once it returns something other than None, within the target's bound;
        :class:`NotYetError` naming ``what`` otherwise."""
        ...


def send(
    http: requests.Session,
    url: str,
    method: str,
    *,
    token: str | None,
    body: bytes | None,
    headers: Mapping[str, str] | None,
    timeout: tuple[float, float],
) -> HttpResponse:
    """One request as both targets make it: a bearer token, no redirect followed, and the
    response's headers lower-cased, as HTTP API's mapping gives them to any client."""
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    response = http.request(
        method, url, data=body, headers=sent, timeout=timeout, allow_redirects=False
    )
    lowered = {name.lower(): value for name, value in response.headers.items()}
    return HttpResponse(response.status_code, lowered, response.content)
