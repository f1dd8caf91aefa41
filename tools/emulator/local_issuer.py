"""The local token issuer: ``make token SCOPES="items/read items/export"``.

An RSA key kept in ``.aws-local/issuer/`` (made on first use, readable by its owner only) signs
RS256 access tokens shaped like a Cognito machine-to-machine token (``client_id``, ``scope``,
``token_use``) plus an ``aud``; ``make api`` serves the public half as a JWKS and verifies tokens
with it, under this issuer and audience in place of the template's (which name the deployed
issuer). The key never leaves this machine and proves nothing anywhere else.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tools.emulator import command_line, sam_template

PROGRAM = "token"
KEY_DIRECTORY = sam_template.ROOT / ".aws-local" / "issuer"
ISSUER = "https://local-issuer.items-service.invalid"
"""Never resolvable (``.invalid`` is reserved): a local token can only mean this machine."""
AUDIENCE = "items-service-local"
CLIENT_ID = "local-client"
DEFAULT_LIFETIME_SECONDS = 3600
ALGORITHM = "RS256"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class LocalIssuer:
    """A signing key and the issuer and audience its tokens carry."""

    private_key: rsa.RSAPrivateKey
    issuer: str = ISSUER
    audience: str = AUDIENCE

    @classmethod
    def load(cls, directory: Path = KEY_DIRECTORY) -> LocalIssuer:
        """The issuer whose key is in ``directory``; a new key there if there is none."""
        path = directory / "private-key.pem"
        if not path.exists():
            directory.mkdir(parents=True, exist_ok=True)
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(pem)
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise TypeError(f"{path} does not hold an RSA private key")
        return cls(loaded)

    @property
    def public_jwk(self) -> dict[str, str]:
        jwk: dict[str, str] = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        # RFC 7638 thumbprint: the key's id changes only when the key does.
        canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"))
        kid = _b64url(hashlib.sha256(canonical.encode()).digest())
        return {**jwk, "kid": kid, "use": "sig", "alg": ALGORITHM}

    @property
    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [self.public_jwk]}

    def token(
        self,
        scopes: list[str],
        *,
        lifetime_seconds: int = DEFAULT_LIFETIME_SECONDS,
        subject: str = CLIENT_ID,
        now: float | None = None,
        **claims: Any,  # noqa: ANN401 - any JSON claim, to override (tests make bad tokens)
    ) -> str:
        """An access token for ``scopes``; ``claims`` add to or replace the standard ones."""
        issued = int(time.time() if now is None else now)
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.audience,
            "client_id": subject,
            "token_use": "access",
            "scope": " ".join(scopes),
            "iat": issued,
            "nbf": issued,
            "exp": issued + lifetime_seconds,
            "jti": str(uuid.uuid4()),
        }
        payload.update(claims)
        payload = {name: value for name, value in payload.items() if value is not None}
        return jwt.encode(
            payload, self.private_key, algorithm=ALGORITHM, headers={"kid": self.public_jwk["kid"]}
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__.split("\n\n")[0])
    parser.add_argument("--scopes", default="", help='space-separated, e.g. "items/read"')
    parser.add_argument("--lifetime", type=int, default=DEFAULT_LIFETIME_SECONDS, metavar="S")
    parser.add_argument("--subject", default=CLIENT_ID, help="sub and client_id claims")
    parser.add_argument("--key-directory", type=Path, default=KEY_DIRECTORY)
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)

    def run() -> int:
        issuer = LocalIssuer.load(arguments.key_directory)
        scopes = arguments.scopes.split()
        print(issuer.token(scopes, lifetime_seconds=arguments.lifetime, subject=arguments.subject))
        command_line.say(
            PROGRAM,
            f"scopes {scopes or 'none'}, valid {arguments.lifetime} s, for `make api` only "
            f"(issuer {issuer.issuer})",
        )
        return 0

    return command_line.run_command(PROGRAM, run)


if __name__ == "__main__":
    sys.exit(main())
