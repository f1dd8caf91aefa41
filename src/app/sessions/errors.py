"""Why a role could not be assumed, in words an operator can act on.

botocore reports a failed ``AssumeRole`` from deep inside request signing, as the failure of
whatever call needed the credentials (a ``PutObject``, say). That sends people to the wrong
policy. :class:`AssumeRoleError` names the role, the session and what to check instead.
"""

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)

from app.sessions.deadline import InvocationDeadlineError

_HINTS = {
    "AccessDenied": (
        "the role's trust policy must trust the function role, the function role must allow "
        "sts:AssumeRole on the role, and a cross-account role may require the right ExternalId"
    ),
    "ExpiredToken": "the function's own credentials expired; check the clock",
    "InvalidClientTokenId": "the function's own credentials are not valid in this partition",
    "RegionDisabledException": "STS is not activated in this region for the account",
    "Throttling": "STS throttled the account after retries; spread out cold starts or raise limits",
    "ValidationError": "the role ARN, session name or duration is invalid (chained: 1 hour max)",
}
_BOTOCORE_HINTS: tuple[tuple[type[Exception] | tuple[type[Exception], ...], str], ...] = (
    (
        (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError),
        "STS did not answer after retries; check the VPC's route to STS (NAT or endpoint)",
    ),
    (NoCredentialsError, "the source session has no credentials to assume the role with"),
    (NoRegionError, "the source session has no region"),
    (InvocationDeadlineError, "the invocation ran out of time before STS answered"),
    (BotoCoreError, "botocore failed to call STS"),
)


def _describe(error: Exception) -> tuple[str, str]:
    """An error code and what to check, never the error's message (it may echo request data)."""
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", "Unknown"))
        return code, _HINTS.get(code, "STS refused the request")
    for kinds, hint in _BOTOCORE_HINTS:
        if isinstance(error, kinds):
            return type(error).__name__, hint
    return type(error).__name__, "unexpected failure calling STS"


class AssumeRoleError(Exception):
    """Credentials for ``role_arn`` could not be obtained. Carries no credential material."""

    def __init__(self, role_arn: str, session_name: str, code: str, hint: str) -> None:
        super().__init__(f"AssumeRole {role_arn} as {session_name} failed ({code}): {hint}")
        self.role_arn = role_arn
        self.session_name = session_name
        self.code = code
        self.hint = hint

    @classmethod
    def explain(cls, role_arn: str, session_name: str, error: Exception) -> "AssumeRoleError":
        if isinstance(error, AssumeRoleError):
            return error  # an earlier link of a role chain failed: that is the role to look at
        return cls(role_arn, session_name, *_describe(error))
