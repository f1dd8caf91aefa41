"""An HTTP API JWT authorizer, as API Gateway documents its checks.

In order: the identity source (a header) holds the token, alone or after ``Bearer``; it decodes;
its header names a ``kid`` found in the issuer's JWKS, with an RSA algorithm; the signature
verifies; ``iss`` is the issuer; ``aud`` (or, only when there is no ``aud``, ``client_id``) is one
of the audiences; ``exp`` is in the future, ``nbf`` and ``iat`` are not. Any failure is 401
``{"message":"Unauthorized"}``. Then the route's scopes: the token's ``scope`` (or ``scp``) must
hold at least one of them, else 403 ``{"message":"Forbidden"}``. What passes reaches the function
as ``requestContext.authorizer.jwt``: every claim as a string (arrays as ``[a b]``, as API Gateway
flattens them) and the token's scopes.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

RSA_ALGORITHMS = ("RS256", "RS384", "RS512")
BEARER = "bearer "

KeyLookup = Callable[[str], Any]
"""The issuer's public key for a ``kid``; raises ``jwt.PyJWKClientError`` when it has none."""


class DeniedError(Exception):
    """The request is refused before the function runs; API Gateway's status and body."""

    def __init__(self, status: int, message: str, www_authenticate: str, description: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.www_authenticate = www_authenticate
        self.description = description
        """Why, for the access log (never the token)."""


def _unauthorized(description: str) -> DeniedError:
    return DeniedError(
        401,
        "Unauthorized",
        f'Bearer scope="" error="invalid_token" error_description="{description}"',
        description,
    )


@dataclass(frozen=True)
class JwtVerifier:
    """One authorizer's configuration: where its token is, whom it trusts."""

    header: str
    """Lower-cased, as API Gateway reads ``$request.header.X``."""
    issuer: str
    audiences: tuple[str, ...]
    keys: KeyLookup

    def authorize(
        self, headers: Mapping[str, str], route_scopes: tuple[str, ...], now: float
    ) -> dict[str, Any]:
        """``requestContext.authorizer`` for a request with these (lower-cased) headers."""
        token = self._token(headers)
        claims = self._verified(token, now)
        scopes = token_scopes(claims)
        if route_scopes and not set(route_scopes) & set(scopes):
            wanted = " ".join(route_scopes)
            description = "the token does not have the required scopes"
            raise DeniedError(
                403,
                "Forbidden",
                f'Bearer scope="{wanted}" error="insufficient_scope" '
                f'error_description="{description}"',
                description,
            )
        return {
            "jwt": {
                "claims": {name: flattened(value) for name, value in claims.items()},
                "scopes": scopes or None,
            }
        }

    def _token(self, headers: Mapping[str, str]) -> str:
        value = headers.get(self.header, "").strip()
        if value.lower().startswith(BEARER):
            value = value[len(BEARER) :].strip()
        if not value:
            raise _unauthorized("no token in the identity source")
        return value

    def _verified(self, token: str, now: float) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise _unauthorized("the token is not a JWT") from None
        if header.get("alg") not in RSA_ALGORITHMS:
            raise _unauthorized("the token's algorithm is not supported")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise _unauthorized("the token has no kid")
        try:
            key = self.keys(kid)
        except jwt.PyJWKClientError:
            raise _unauthorized("the token's kid is not in the issuer's keys") from None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(RSA_ALGORITHMS),
                issuer=self.issuer,
                options={
                    "require": ["exp", "iss"],
                    "verify_aud": False,  # aud or client_id: checked below, as API Gateway does
                    "verify_exp": False,  # the times: checked below against the caller's clock
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidIssuerError:
            raise _unauthorized("the token does not have a valid issuer") from None
        except jwt.InvalidTokenError:
            raise _unauthorized("the token is not valid") from None
        self._check_times(claims, now)
        self._check_audience(claims)
        return claims

    @staticmethod
    def _check_times(claims: dict[str, Any], now: float) -> None:
        """Against ``now`` (a clock tests can move), with no leeway, as API Gateway documents."""
        for name in ("exp", "nbf", "iat"):
            if name in claims and not isinstance(claims[name], int | float):
                raise _unauthorized(f"the token's {name} is not a time")
        if claims["exp"] <= now:
            raise _unauthorized("the token has expired")
        if claims.get("nbf", 0) > now or claims.get("iat", 0) > now:
            raise _unauthorized("the token is not valid yet")

    def _check_audience(self, claims: dict[str, Any]) -> None:
        audience = claims.get("aud", claims.get("client_id"))
        given = audience if isinstance(audience, list) else [audience]
        if not set(self.audiences) & {a for a in given if isinstance(a, str)}:
            raise _unauthorized("the token does not have a valid audience")


def token_scopes(claims: Mapping[str, Any]) -> list[str]:
    """The token's scopes: ``scope`` (space-separated) or ``scp`` (a list or a string)."""
    scope = claims.get("scope", claims.get("scp"))
    if isinstance(scope, str):
        return scope.split()
    if isinstance(scope, list):
        return [s for s in scope if isinstance(s, str)]
    return []


def flattened(value: Any) -> str:  # noqa: ANN401 - any JSON claim
    """A claim as API Gateway hands it to the function: always a string."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + " ".join(flattened(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return json.dumps(value)


def jwks_keys(jwks_url: str, timeout_seconds: float = 5.0) -> KeyLookup:
    """Keys fetched from the issuer's JWKS URL and cached, as API Gateway caches an issuer's keys;
    a ``kid`` not in the cache fetches the set again (the issuer may have rotated its key).

    Fetched without any proxy the environment names: the local issuer is this machine.
    """
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    cache: dict[str, Any] = {}
    lock = threading.Lock()

    def fetch() -> None:
        try:
            with opener.open(jwks_url, timeout=timeout_seconds) as response:
                keys = jwt.PyJWKSet.from_dict(json.loads(response.read()))
        except (OSError, ValueError, jwt.PyJWKSetError) as error:
            raise jwt.PyJWKClientError(f"cannot read the JWKS at {jwks_url}: {error}") from None
        cache.clear()
        cache.update({key.key_id: key.key for key in keys.keys if key.key_id})

    def key(kid: str) -> Any:  # noqa: ANN401 - a cryptography public key
        with lock:
            if kid not in cache:
                fetch()
            if kid not in cache:
                raise jwt.PyJWKClientError(f"no key {kid!r} in the issuer's JWKS")
            return cache[kid]

    return key
