"""HTTP API's Lambda payload format 2.0: the event a request becomes, and how a response maps back.

The request side: header names lower-cased, repeated headers joined with commas, the ``Cookie``
header moved to ``cookies``, repeated query parameters joined with commas, path parameters
decoded, and the body as text only for text types (``text/*``, ``application/json``,
``application/xml``, ``application/javascript``): anything else, a form post or no content type
included, arrives base64-encoded, as API Gateway sends it.

The response side: a JSON object with ``statusCode`` is a response (``headers``, ``cookies`` as
``Set-Cookie`` headers, ``body``, ``isBase64Encoded``; ``multiValueHeaders`` belongs to format
1.0 and is ignored); anything else the function returns is a 200 ``application/json`` whose body is
that JSON (a string as itself). A response that breaks these rules is API Gateway's 500.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import string
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

TEXT_TYPES = ("application/json", "application/xml", "application/javascript")
ACCOUNT_ID = "123456789012"
_ID_ALPHABET = string.ascii_letters + string.digits


class UnmappableResponseError(ValueError):
    """The function answered something API Gateway cannot turn into an HTTP response."""


@dataclass(frozen=True)
class Request:
    """An HTTP request as it reached the API."""

    method: str
    target: str
    """Path and query, as sent (percent-encoding kept)."""
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str
    protocol: str = "HTTP/1.1"

    @property
    def raw_path(self) -> str:
        return self.target.split("?", 1)[0] or "/"

    @property
    def raw_query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    def combined_headers(self) -> dict[str, str]:
        """Names lower-cased, repeats joined with commas; cookies apart (``cookies``)."""
        combined: dict[str, str] = {}
        for name, value in self.headers:
            lower = name.lower()
            if lower == "cookie":
                continue
            combined[lower] = f"{combined[lower]},{value}" if lower in combined else value
        return combined

    def cookies(self) -> list[str]:
        return [
            cookie.strip()
            for name, value in self.headers
            if name.lower() == "cookie"
            for cookie in value.split(";")
            if cookie.strip()
        ]


def is_text(content_type: str | None) -> bool:
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type.startswith("text/") or media_type in TEXT_TYPES


def _query_parameters(raw_query: str) -> dict[str, str]:
    parameters: dict[str, str] = {}
    for name, value in urllib.parse.parse_qsl(raw_query, keep_blank_values=True):
        parameters[name] = f"{parameters[name]},{value}" if name in parameters else value
    return parameters


def request_id() -> str:
    """An id shaped like API Gateway's ``apigw-requestid``: 14 letters and digits, then ``=``."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(14)) + "="


def trace_id(now: float) -> str:
    return f"Root=1-{int(now):08x}-{secrets.token_hex(12)}"


@dataclass(frozen=True)
class EventContext:
    """What API Gateway knows about a request besides the request itself."""

    route_key: str
    path_parameters: dict[str, str]
    authorizer: dict[str, Any] | None
    api_id: str
    domain_name: str
    port: int
    request_id: str = field(default_factory=request_id)
    now: float = field(default_factory=time.time)


def request_event(request: Request, context: EventContext) -> dict[str, Any]:
    """The payload-2.0 event for ``request`` on its route."""
    headers = request.combined_headers()
    headers.setdefault("x-forwarded-for", request.source_ip)
    headers.setdefault("x-forwarded-port", str(context.port))
    headers.setdefault("x-forwarded-proto", "http")
    headers.setdefault("x-amzn-trace-id", trace_id(context.now))
    if request.body:
        headers["content-length"] = str(len(request.body))
    stamp = datetime.fromtimestamp(context.now, UTC)
    request_context: dict[str, Any] = {
        "accountId": ACCOUNT_ID,
        "apiId": context.api_id,
        "domainName": context.domain_name,
        "domainPrefix": context.domain_name.split(".", 1)[0],
        "http": {
            "method": request.method,
            "path": urllib.parse.unquote(request.raw_path),
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": context.request_id,
        "routeKey": context.route_key,
        "stage": "$default",
        "time": stamp.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(context.now * 1000),
    }
    if context.authorizer is not None:
        request_context["authorizer"] = context.authorizer
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": context.route_key,
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
    }
    cookies = request.cookies()
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    query = _query_parameters(request.raw_query)
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = request_context
    if request.body:
        text = is_text(headers.get("content-type"))
        try:
            event["body"] = request.body.decode() if text else None
        except UnicodeDecodeError:
            text = False
        if not text:
            event["body"] = base64.b64encode(request.body).decode()
        event["isBase64Encoded"] = not text
    else:
        event["isBase64Encoded"] = False
    if context.path_parameters:
        event["pathParameters"] = context.path_parameters
    return event


@dataclass(frozen=True)
class Response:
    """What goes back to the client."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def message(status: int, text: str, headers: list[tuple[str, str]] | None = None) -> Response:
    """One of API Gateway's own answers: ``{"message": ...}`` as JSON."""
    body = json.dumps({"message": text}, separators=(",", ":")).encode()
    return Response(status, [("Content-Type", "application/json"), *(headers or [])], body)


def _header_value(name: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise UnmappableResponseError(f"header {name!r} is not a string")


def map_response(response: Any) -> Response:  # noqa: ANN401 - whatever the function returned
    """The HTTP response for a function's (successful) response, by payload 2.0's rules."""
    if not (isinstance(response, dict) and "statusCode" in response):
        body = response if isinstance(response, str) else json.dumps(response)
        return Response(200, [("Content-Type", "application/json")], body.encode())
    status = response["statusCode"]
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise UnmappableResponseError(f"statusCode {status!r} is not an HTTP status")
    headers = response.get("headers") or {}
    cookies = response.get("cookies") or []
    if not isinstance(headers, dict):
        raise UnmappableResponseError("headers is not an object")
    if not (isinstance(cookies, list) and all(isinstance(c, str) for c in cookies)):
        raise UnmappableResponseError("cookies is not a list of strings")
    mapped = [(str(name), _header_value(name, value)) for name, value in headers.items()]
    mapped += [("Set-Cookie", cookie) for cookie in cookies]
    body = response.get("body")
    encoded = response.get("isBase64Encoded", False)
    if not isinstance(encoded, bool):
        raise UnmappableResponseError("isBase64Encoded is not a boolean")
    if body is None:
        return Response(status, mapped, b"")
    if not isinstance(body, str):
        raise UnmappableResponseError("body is not a string")
    if not encoded:
        return Response(status, mapped, body.encode())
    try:
        return Response(status, mapped, base64.b64decode(body, validate=True))
    except binascii.Error:
        raise UnmappableResponseError("body is marked base64 but is not") from None
