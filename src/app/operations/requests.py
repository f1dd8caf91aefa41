"""Requests the functions accept, validated before any AWS call.

Validation lives here, not in the handlers, so the API and the queue reject the same inputs with
the same messages. Limits are deliberately tight: an id ends up in an S3 key and a log line.
"""

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.operations.errors import InvalidRequestError

ITEM_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
IDEMPOTENCY_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
FIELD_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_FIELDS = 20
MAX_BODY_BYTES = 16 * 1024
MAX_JSON_DEPTH = 32
MAX_NAMED_UNKNOWN = 5
"""A refusal names at most this many unknown fields, each cut to a field name's 64 characters:
the refusal echoes what the caller sent, and an event may hold megabytes of names."""
"""Arrays and objects nested in a body (DynamoDB's own limit for a document). Checked before
parsing: ``json.loads`` recurses once a level and, past the interpreter's recursion limit (which
differs between Python versions), raises RecursionError instead of an error about the body."""
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")


def parse_item_id(raw: object) -> str:
    if not isinstance(raw, str) or not ITEM_ID_PATTERN.fullmatch(raw):
        raise InvalidRequestError(
            "item_id must be 1-64 characters of letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return raw


def export_id_for(request_id: str, idempotency_key: str | None) -> str:
    """The id that names an export's object: the client's ``Idempotency-Key`` when it sends one.

    A client that retries with the same key (after a timeout, say) reaches the same object, which
    the conditional write will not replace, and gets the same key back: one export, however many
    retries. Without a key every request is its own export. The ``client-`` prefix keeps
    client-chosen ids apart from AWS request ids.
    """
    if idempotency_key is None:
        return request_id
    if not IDEMPOTENCY_KEY_PATTERN.fullmatch(idempotency_key):
        raise InvalidRequestError(
            "Idempotency-Key must be 1-64 letters, digits, '_' or '-' (a UUID works)"
        )
    return f"client-{idempotency_key}"


@dataclass(frozen=True)
class ExportRequest:
    """Export one item, optionally only some of its attributes."""

    item_id: str
    fields: tuple[str, ...] | None = None

    def fingerprint(self, caller: Mapping[str, str | None] | None = None) -> str:
        """A SHA-256 of the request's canonical form, stored with its export, so a retry that
        reuses the export's id for another request is told so instead of answered with the first
        export. The fields are sorted: their order does not change the export.

        ``caller`` is a verified caller's whole identity (``Caller.identity()``): the same key
        from another caller is another request. An unverified request (a queue message, a direct
        Invoke) has none, and its fingerprint is the request's alone, as it always was.
        """
        canonical: dict[str, Any] = {
            "item_id": self.item_id,
            "fields": None if self.fields is None else sorted(self.fields),
        }
        if caller is not None:
            canonical["caller"] = dict(caller)
        text = json.dumps(canonical, separators=(",", ":"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def _parse_fields(raw: object) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw or len(raw) > MAX_FIELDS:
        raise InvalidRequestError(f"fields must be a list of 1-{MAX_FIELDS} attribute names")
    for name in raw:
        if not isinstance(name, str) or not FIELD_NAME_PATTERN.fullmatch(name):
            raise InvalidRequestError(
                "each field must be an attribute name: letters, digits and '_', up to 64 characters"
            )
    if len(set(raw)) != len(raw):
        raise InvalidRequestError("fields must not repeat a name")
    return tuple(raw)


def nests_deeper_than(text: str, limit: int) -> bool:
    """Whether ``text`` nests arrays and objects more than ``limit`` deep, found without parsing
    it, in linear time.

    Brackets inside strings do not count. For text that is not JSON the count may be too high
    (an unterminated string's brackets count), never too low, so no deep document gets past it.
    """
    depth = 0
    for char in _NOT_A_BRACKET.sub("", _JSON_STRING.sub("", text)):
        depth += 1 if char in "[{" else -1
        if depth > limit:
            return True
    return False


def parse_json_object(body: object, *, allowed: frozenset[str]) -> Mapping[str, Any]:
    """The body as a JSON object holding only ``allowed`` keys (a typo is an error, not a no-op).

    ``body`` is whatever the event held: SQS and API Gateway send text or nothing, a direct Invoke
    any JSON value."""
    if body is not None and not isinstance(body, str):
        raise InvalidRequestError("the body must be text holding a JSON object, not JSON itself")
    if body is None or not body.strip():
        raise InvalidRequestError("the body must be a JSON object, e.g. {} for the defaults")
    try:
        size = len(body.encode())
    except UnicodeEncodeError:  # a lone surrogate, from an escaped \ud800 in the event
        raise InvalidRequestError("the body is not valid UTF-8 text") from None
    if size > MAX_BODY_BYTES:
        raise InvalidRequestError(f"the body must be at most {MAX_BODY_BYTES} bytes")
    if nests_deeper_than(body, MAX_JSON_DEPTH):
        raise InvalidRequestError(
            f"the body nests arrays or objects more than {MAX_JSON_DEPTH} levels deep"
        )
    try:
        document = json.loads(body)
    except ValueError:
        raise InvalidRequestError("the body is not valid JSON") from None
    if not isinstance(document, dict):
        raise InvalidRequestError("the body must be a JSON object")
    refuse_unknown_fields(document, allowed, f"allowed: {', '.join(sorted(allowed))}")
    return document


def refuse_unknown_fields(document: Mapping[str, Any], allowed: frozenset[str], hint: str) -> None:
    """Refuse ``document`` if it holds a key outside ``allowed`` (a typo is an error, not a
    no-op), naming the first few and ending with ``hint``: what the caller may send instead."""
    unknown = sorted(set(document) - allowed)
    if unknown:
        named = ", ".join(repr(name[:64]) for name in unknown[:MAX_NAMED_UNKNOWN])
        raise InvalidRequestError(f"unknown field(s) {named}; {hint}")


def export_request_from_api(item_id: object, body: str | None) -> ExportRequest:
    """``POST /items/{item_id}/exports`` with a body such as ``{"fields": ["name"]}`` or ``{}``."""
    document = parse_json_object(body, allowed=frozenset({"fields"}))
    return ExportRequest(parse_item_id(item_id), _parse_fields(document.get("fields")))


def export_request_from_message(body: object) -> ExportRequest:
    """A queue message such as ``{"item_id": "42", "fields": ["name"]}``."""
    document = parse_json_object(body, allowed=frozenset({"item_id", "fields"}))
    if "item_id" not in document:
        raise InvalidRequestError("item_id is required")
    return ExportRequest(parse_item_id(document["item_id"]), _parse_fields(document.get("fields")))
