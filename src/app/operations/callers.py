"""Who asked: the caller API Gateway's JWT authorizer verified, read from the event's claims.

API Gateway checks the token (signature, issuer, audience, expiry, the route's scope) before the
function runs and passes its claims in ``requestContext.authorizer.jwt.claims``. The functions
trust those claims and nothing else: they never read the ``Authorization`` header, so the token
itself is neither parsed nor logged.

An event without claims did not come through the authorizer: a direct Invoke (which only IAM
principals with ``lambda:InvokeFunction`` can make), ``sam local``, or a queue message. Its caller
is :data:`UNVERIFIED`: logged and recorded as such, and never taken for anyone: an export one
verified caller made is not another's, nor an unverified caller's (a retry with its
``Idempotency-Key`` from anyone else is a 409). The claims widen nothing; their absence grants
nothing either, since what a route allows is API Gateway's decision, made before any function.

Everything read from the event is type-checked and bounded here: a direct Invoke may put any
JSON, nested without bound, where API Gateway puts strings.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from app.operations.errors import InvalidRequestError, UnidentifiedCallerError

MAX_CLAIM_CHARS = 255
"""What is logged or recorded of a subject or client id (OpenID Connect caps ``sub`` at 255 ASCII
characters). Comparisons use the whole value: see :meth:`Caller.identity`."""
MAX_SCOPES_LOGGED = 20
_MAX_SCOPE_CLAIM_CHARS = 4096
UNRECORDED = "-"
"""What ``requested-by``/``requested-client`` hold when no verified token named them."""
_METADATA_SAFE = "!#$&'()*+,/:;=?@[]^`{|}"
"""Printable ASCII kept as is in S3 metadata; anything else (and ``%``) is percent-encoded."""
MAX_METADATA_VALUE_CHARS = 900
"""What one recorded value may take of S3's 2 KB of user metadata (keys and values, counted in
UTF-8 bytes): two of these, their keys and the request fingerprint stay under it. A character
percent-encodes to up to 12 ASCII characters, so the bound is on the encoded value, not the
claim's characters: 255 non-ASCII characters would take 3 KB."""

REQUESTED_BY = "requested-by"
REQUESTED_CLIENT = "requested-client"

# Claims read, in order of preference: Cognito access tokens carry client_id; Auth0, Okta and
# Entra ID name the client in azp; Entra ID puts scopes in scp.
_CLIENT_CLAIMS = ("client_id", "azp")
_SCOPE_CLAIMS = ("scope", "scp")


@dataclass(frozen=True)
class Caller:
    """A verified caller (a subject, a client, or both) or the unverified one."""

    verified: bool
    subject: str | None = None
    client_id: str | None = None
    scopes: tuple[str, ...] = ()

    def identity(self) -> Mapping[str, str | None] | None:
        """What makes two requests the same caller's, whole (None: unverified, no one's)."""
        if not self.verified:
            return None
        return {"subject": self.subject, "client_id": self.client_id}

    def log_fields(self) -> dict[str, Any]:
        """Subject, client id and scopes, bounded: no other claim (no e-mail, no name)."""
        return {
            "caller_verified": self.verified,
            "caller_subject": _bounded(self.subject),
            "caller_client_id": _bounded(self.client_id),
            "caller_scopes": list(self.scopes),
        }

    def recorded(self) -> dict[str, str]:
        """S3 user metadata naming who asked: ASCII, percent-encoded, within S3's 2 KB."""
        return {
            REQUESTED_BY: _metadata_value(self.subject),
            REQUESTED_CLIENT: _metadata_value(self.client_id),
        }


UNVERIFIED = Caller(verified=False)


def _bounded(value: str | None) -> str | None:
    return None if value is None else value[:MAX_CLAIM_CHARS]


def _metadata_value(value: str | None) -> str:
    """Percent-encoded UTF-8, cut between whole characters to fit its share of the 2 KB.

    A lone surrogate (valid in a JSON string, not in UTF-8) is recorded as its backslash escape
    rather than failing the export.
    """
    if not value:
        return UNRECORDED
    encoded: list[str] = []
    size = 0
    for character in value[:MAX_CLAIM_CHARS]:
        piece = quote(character, safe=_METADATA_SAFE, errors="backslashreplace")
        size += len(piece)
        if size > MAX_METADATA_VALUE_CHARS:
            break
        encoded.append(piece)
    return "".join(encoded)


def _object(value: object, name: str) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequestError(f"{name} must be an object")
    return value


def _claim(claims: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = claims.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidRequestError(f"the authorizer's claim {name} must be a string")
        if value:
            return value
    return None


def caller_from_api(request_context: Mapping[str, Any]) -> Caller:
    """The caller of an HTTP API event; :data:`UNVERIFIED` when no JWT authorizer ran.

    Raises :class:`InvalidRequestError` for claims API Gateway would never send (not strings),
    and :class:`UnidentifiedCallerError` for a verified token that names neither a subject nor
    a client: there would be no one to record, and no one to tell apart from another caller.
    """
    authorizer = _object(request_context.get("authorizer"), "requestContext.authorizer")
    jwt = None if authorizer is None else _object(authorizer.get("jwt"), "authorizer.jwt")
    claims = None if jwt is None else _object(jwt.get("claims"), "authorizer.jwt.claims")
    if claims is None:
        return UNVERIFIED
    subject = _claim(claims, ("sub",))
    client_id = _claim(claims, _CLIENT_CLAIMS)
    if subject is None and client_id is None:
        raise UnidentifiedCallerError
    scope = _claim(claims, _SCOPE_CLAIMS) or ""
    scopes = tuple(name[:MAX_CLAIM_CHARS] for name in scope[:_MAX_SCOPE_CLAIM_CHARS].split())
    return Caller(
        verified=True, subject=subject, client_id=client_id, scopes=scopes[:MAX_SCOPES_LOGGED]
    )
