"""Sessions for an assumed role whose credentials are fetched on first use and refresh themselves.

A one-shot ``sts.assume_role`` at init would either call STS on every cold start (even for
invocations that never use the role) or hand out credentials that silently expire in a long-lived
execution environment. botocore already solves both for profiles with ``role_arn``; this module
wires the same machinery to an explicit source session:

* ``AssumeRoleCredentialFetcher`` calls ``AssumeRole`` and caches the response until it is within
  its expiry window;
* ``DeferredRefreshableCredentials`` asks the fetcher only when a client signs a request, and again
  once the credentials enter their refresh window, under a lock, so concurrent threads make one
  STS call between them. The windows are scaled to the session's duration
  (:func:`refresh_windows`).

The source can itself be an assumed-role session: each link of a role chain refreshes on its own,
and :func:`assumed_role_chain` declares a whole chain in one call.
"""

import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.credentials import (
    AssumeRoleCredentialFetcher,
    CredentialProvider,
    CredentialResolver,
    Credentials,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import NoCredentialsError

from app.sessions.clients import sts_client
from app.sessions.errors import AssumeRoleError

if TYPE_CHECKING:
    from mypy_boto3_sts import STSClient

MAX_ROLE_SESSION_NAME_LENGTH = 64
MAX_CHAINED_SESSION_SECONDS = 3600
"""AWS caps a session assumed with another role's credentials at one hour. A Lambda function's
own credentials are role credentials, so inside Lambda every assumed role is a chained one."""
_OUTSIDE_STS_NAMES = re.compile(r"[^A-Za-z0-9_+=,.@-]+")
r"""What STS refuses in a RoleSessionName or SourceIdentity. Its documented pattern ``[\w+=,.@-]``
means ASCII letters and digits; Python's ``\w`` would let ``é`` or an Arabic-Indic digit through."""

_BOTOCORE_ADVISORY_REFRESH_SECONDS = 15 * 60
_BOTOCORE_MANDATORY_REFRESH_SECONDS = 10 * 60


def refresh_windows(duration_seconds: int) -> tuple[int, int]:
    """The advisory and mandatory refresh windows, in seconds before expiry, for this duration.

    botocore's windows are fixed: refresh 15 minutes before expiry (advisory: a failure keeps the
    current credentials), block for it 10 minutes before (mandatory), and the fetcher treats its
    cached response as expired 15 minutes early. That suits a one-hour session (one AssumeRole
    every 45 minutes) but covers the whole of a 15-minute one, which STS allows and the template
    accepts: every signed request would call AssumeRole again. The same fractions of the session
    (a quarter, a sixth) give exactly botocore's windows at one hour, and at the 900 s minimum a
    refresh after 675 s with a 150 s mandatory margin, far above one call's worst case
    (:func:`app.sessions.worst_case_call_seconds`). Longer sessions keep botocore's windows.
    """
    return (
        min(duration_seconds // 4, _BOTOCORE_ADVISORY_REFRESH_SECONDS),
        min(duration_seconds // 6, _BOTOCORE_MANDATORY_REFRESH_SECONDS),
    )


@dataclass(frozen=True)
class RoleSpec:
    """What to assume, and how the assumption is labelled in CloudTrail."""

    role_arn: str
    session_name: str
    duration_seconds: int = 3600
    external_id: str | None = None
    source_identity: str | None = None
    """Recorded by CloudTrail for every call of the session and of any role assumed from it; unlike
    the session name, a later link of a chain cannot change it. The role's trust policy must allow
    ``sts:SetSourceIdentity``."""

    def assume_role_arguments(self) -> dict[str, Any]:
        """Arguments for ``AssumeRole`` beyond the role ARN."""
        arguments: dict[str, Any] = {
            "RoleSessionName": self.session_name,
            "DurationSeconds": self.duration_seconds,
        }
        if self.external_id:
            arguments["ExternalId"] = self.external_id
        if self.source_identity:
            arguments["SourceIdentity"] = self.source_identity
        return arguments


def _sts_name_part(part: str) -> str:
    """``part`` in the characters STS accepts: accents dropped (``José`` -> ``Jose``), compatibility
    forms spelled out (``ﬁ`` -> ``fi``), each run of anything else one ``-``."""
    decomposed = unicodedata.normalize("NFKD", part)
    return _OUTSIDE_STS_NAMES.sub(
        "-", "".join(c for c in decomposed if not unicodedata.combining(c))
    )


def role_session_name(*parts: str) -> str:
    """A ``RoleSessionName`` or ``SourceIdentity`` STS accepts: ``parts`` joined by ``.``.

    STS wants 2-64 ASCII letters, digits and ``_+=,.@-`` (so never a SourceIdentity's reserved
    ``aws:`` prefix). CloudTrail shows the name for every call the assumed role makes, so it should
    say which function and which execution environment acted: when the name is too long, the first
    part (the function name) is shortened and the later ones (short ids) are kept whole.
    """
    cleaned = [_sts_name_part(part) for part in parts if part]
    qualifiers = "".join(f".{part}" for part in cleaned[1:])
    head = cleaned[0][: max(MAX_ROLE_SESSION_NAME_LENGTH - len(qualifiers), 0)] if cleaned else ""
    return (head + qualifiers)[:MAX_ROLE_SESSION_NAME_LENGTH].ljust(2, "-")


class _ScaledRefreshCredentials(DeferredRefreshableCredentials):
    """botocore's deferred credentials with the windows ``RefreshableCredentials`` takes as
    ``advisory_timeout``/``mandatory_timeout``, which the deferred subclass does not pass on."""

    def __init__(
        self, refresh_using: Callable[[], dict[str, Any]], method: str, windows: tuple[int, int]
    ) -> None:
        super().__init__(refresh_using=refresh_using, method=method)
        self._advisory_refresh_timeout, self._mandatory_refresh_timeout = windows


class _FixedCredentialsProvider(CredentialProvider):
    """Hands botocore's credential resolver one credentials object, without resolving anything."""

    METHOD = "assume-role"
    CANONICAL_NAME = "AssumeRole"

    def __init__(self, credentials: Credentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> Credentials:
        return self._credentials


def _reuse(client: "STSClient") -> Callable[..., "STSClient"]:
    """A ``client_creator`` that returns one prebuilt STS client instead of building one per fetch.

    The fetcher offers the source's frozen credentials as keyword arguments; the prebuilt client
    does not need them because it signs with the source session's own, possibly refreshing,
    credentials.
    """

    def create(_service_name: str, **_frozen_source_credentials: object) -> "STSClient":
        return client

    return create


FAILURE_COOLDOWN_SECONDS = 5.0
"""After a failed AssumeRole, callers get the same error at once for this long instead of each
retrying STS in turn under botocore's refresh lock (a batch of ten records would otherwise spend
ten times the retries, and hammer an STS that is already throttling)."""


class _FailFastFetch:
    """``refresh_using`` for botocore: fetch through the fetcher, explain and remember failures."""

    def __init__(self, fetcher: AssumeRoleCredentialFetcher, role: RoleSpec) -> None:
        self._fetcher = fetcher
        self._role = role
        self._failure: tuple[float, AssumeRoleError] | None = None

    def __call__(self) -> dict[str, Any]:
        if self._failure and time.monotonic() - self._failure[0] < FAILURE_COOLDOWN_SECONDS:
            raise self._failure[1]
        try:
            credentials = self._fetcher.fetch_credentials()
        except Exception as error:
            explained = AssumeRoleError.explain(self._role.role_arn, self._role.session_name, error)
            self._failure = (time.monotonic(), explained)
            raise explained from error
        self._failure = None
        return credentials


def assumed_role_session(source: boto3.Session, role: RoleSpec) -> boto3.Session:
    """A session for ``role`` assumed from ``source``; building it makes no network call."""
    source_credentials = source.get_credentials()
    if source_credentials is None:
        raise NoCredentialsError()
    windows = refresh_windows(role.duration_seconds)
    fetcher = AssumeRoleCredentialFetcher(
        client_creator=_reuse(sts_client(source)),
        source_credentials=source_credentials,
        role_arn=role.role_arn,
        extra_args=role.assume_role_arguments(),
        # As wide as the advisory window, so a refresh reaches STS instead of the cached response.
        expiry_window_seconds=windows[0],
    )
    credentials = _ScaledRefreshCredentials(
        _FailFastFetch(fetcher, role), _FixedCredentialsProvider.METHOD, windows
    )
    botocore_session = botocore.session.Session()
    botocore_session.register_component(
        "credential_provider", CredentialResolver([_FixedCredentialsProvider(credentials)])
    )
    # The source's loader, so that the service models, endpoints and partitions it has read (and
    # cached) are not read and parsed from botocore's JSON again: a new session's own loader made
    # each export function's init ~55 ms longer. The loader only reads files; nothing in it
    # depends on the credentials.
    botocore_session.register_component("data_loader", source._session.get_component("data_loader"))
    return boto3.Session(botocore_session=botocore_session, region_name=source.region_name)


def assumed_role_chain(source: boto3.Session, *roles: RoleSpec) -> boto3.Session:
    """``source`` -> ``roles[0]`` -> ``roles[1]`` ...: each link assumed with the previous link's
    credentials, and each refreshing on its own schedule. Building it makes no network call."""
    if not roles:
        raise ValueError("a role chain needs at least one role")
    session = source
    for position, role in enumerate(roles):
        if position and role.duration_seconds > MAX_CHAINED_SESSION_SECONDS:
            raise ValueError(
                f"{role.role_arn} is assumed through another role, so AWS caps its session at "
                f"{MAX_CHAINED_SESSION_SECONDS} s (asked for {role.duration_seconds} s)"
            )
        session = assumed_role_session(session, role)
    return session
