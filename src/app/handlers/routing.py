"""A router for HTTP API (payload 2.0) events: what the two API functions use of Powertools'
``APIGatewayHttpResolver``, and nothing else.

Importing ``aws_lambda_powertools.event_handler`` runs its package's ``__init__``, which imports
every resolver it has (AppSync and with it asyncio, Bedrock, VPC Lattice...) and every event data
class of ``utilities.data_classes``: about 45 ms of each cold start, measured without
instrumentation, more than the whole margin to the baseline (README "Performance"). The API
functions have one route each, and :func:`app.handlers.http.resolve` has already checked the
envelope, so what is left is small: match the method and path, call the route, map its exceptions
the way the resolver does (the nearest registered class in the exception's MRO), and build the
response the resolver builds. ``tests/unit/test_routing.py`` runs generated events through this
and through Powertools' resolver, and requires the same responses, except where this router is
stricter on purpose: a path matches a rule whole (Powertools' ``^...$`` also matches before a
final newline), a stage is taken off the path only when the path starts with it, and a base64 body
with a character no base64 text has is refused instead of encoded and partly decoded.
"""

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

APPLICATION_JSON = "application/json"
_PARAMETER = re.compile(r"<(\w+)>")
_PARAMETER_CHARACTERS = r"[-._~()'!*:@,;=+&$%<> \[\]{}|^\w]+"
"""What a ``<name>`` matches: Powertools' own class (RFC 3986's unreserved and sub-delimiters,
``%`` and a few unsafe characters; never ``/``)."""


@dataclass
class Response:
    """A route's answer: the body is serialized by the router's serializer."""

    status_code: int
    body: object
    content_type: str = APPLICATION_JSON
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    """What a route reads of the event being routed."""

    raw_event: dict[str, Any]

    @property
    def request_id(self) -> str:
        request_id: str = self.raw_event["requestContext"]["requestId"]
        return request_id

    def header(self, name: str) -> str | None:
        """A header's value, whatever the case of its name (HTTP API sends them lowercased)."""
        wanted = name.lower()
        headers: dict[str, str] = self.raw_event.get("headers") or {}
        return next((value for key, value in headers.items() if key.lower() == wanted), None)

    @property
    def decoded_body(self) -> str | None:
        """The body, base64-decoded when the event says so (``binascii.Error`` when it is not
        base64, ``UnicodeDecodeError`` when it is not UTF-8)."""
        body: str | None = self.raw_event.get("body")
        if self.raw_event.get("isBase64Encoded") and body:
            if not body.isascii():  # base64 text is ASCII; a lone surrogate cannot even be encoded
                raise binascii.Error("a base64 body holds only ASCII characters")
            return base64.b64decode(body.encode()).decode()
        return body


Route = Callable[..., Response]
ErrorHandler = Callable[[Any], Response]


class NotFoundError(Exception):
    """No route matches the request's method and path."""


class Router:
    """Routes by method and path; exceptions to handlers registered by class."""

    def __init__(self, serializer: Callable[[object], str]) -> None:
        self._serializer = serializer
        self._routes: list[tuple[str, re.Pattern[str], Route]] = []
        self._error_handlers: dict[type[Exception], ErrorHandler] = {}
        self._current: Request | None = None

    def route(self, method: str, rule: str) -> Callable[[Route], Route]:
        """Register ``route`` for ``method`` and ``rule`` (``/items/<item_id>``); the rule's
        parameters are passed to it as keyword arguments."""
        groups = _PARAMETER.sub(lambda name: f"(?P<{name[1]}>{_PARAMETER_CHARACTERS})", rule)
        pattern = re.compile(groups)

        def register(route: Route) -> Route:
            self._routes.append((method.upper(), pattern, route))
            return route

        return register

    def get(self, rule: str) -> Callable[[Route], Route]:
        return self.route("GET", rule)

    def post(self, rule: str) -> Callable[[Route], Route]:
        return self.route("POST", rule)

    def exception_handler(
        self, error_class: type[Exception]
    ) -> Callable[[ErrorHandler], ErrorHandler]:
        def register(handler: ErrorHandler) -> ErrorHandler:
            self._error_handlers[error_class] = handler
            return handler

        return register

    def not_found(self, handler: ErrorHandler) -> ErrorHandler:
        return self.exception_handler(NotFoundError)(handler)

    @property
    def current_event(self) -> Request:
        """The request being routed (only while :meth:`resolve` runs)."""
        if self._current is None:
            raise RuntimeError("no request is being routed")
        return self._current

    def resolve(self, event: dict[str, Any]) -> dict[str, Any]:
        """The response to ``event``; an exception no handler takes propagates."""
        self._current = Request(event)
        try:
            return self._build(self._answer(event))
        finally:
            self._current = None

    def _answer(self, event: dict[str, Any]) -> Response:
        method = event["requestContext"]["http"]["method"].upper()
        path = _path(event)
        try:
            for route_method, pattern, route in self._routes:
                match = pattern.fullmatch(path) if route_method == method else None
                if match:
                    return route(**match.groupdict())
            raise NotFoundError(path)
        except Exception as error:
            handler = next(
                (
                    self._error_handlers[cls]
                    for cls in type(error).__mro__
                    if cls in self._error_handlers
                ),
                None,
            )
            if handler is None:
                raise
            return handler(error)

    def _build(self, response: Response) -> dict[str, Any]:
        body = response.body
        return {
            "statusCode": response.status_code,
            "body": body if isinstance(body, str) else self._serializer(body),
            "isBase64Encoded": False,
            "headers": {"Content-Type": response.content_type, **response.headers},
            "cookies": [],
        }


def _path(event: dict[str, Any]) -> str:
    """The path routes match: ``rawPath`` without the stage it starts with, if any.

    A named stage reached through the API's own endpoint starts the path (``/prod/items/42``);
    through a custom domain's API mapping it does not (``/items/42``, stage ``prod``), and cutting
    the stage's length off regardless, as Powertools does, would route ``s/42``. ``$default`` (or
    no stage: API Gateway always sends one) is never in the path.
    """
    raw_path: str = event["rawPath"]
    stage = event["requestContext"].get("stage")
    if not stage or stage == "$default":
        return raw_path
    prefix = f"/{stage}"
    if raw_path == prefix or raw_path.startswith(prefix + "/"):
        return raw_path[len(prefix) :]
    return raw_path
