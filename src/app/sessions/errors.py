"""Why a role could not be assumed, in words an operator can act on.

botocore reports a failed ``AssumeRole`` from deep inside request signing, as the failure of
whatever call needed the credentials (a ``PutObject``, say). That sends people to the wrong
policy. :class:`AssumeRoleError` names the role, the session and what to check instead.
"""

from types import SimpleNamespace

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)
from botocore.retries import standard


class InvocationDeadlineError(BotoCoreError):
    """Not enough of the invocation is left for another AWS call attempt."""

    fmt = "no time left in this invocation for another AWS call attempt"


# A 429 with no known code counts as throttling only in recent botocore; Lambda's may be older.
_THROTTLING_STATUS = getattr(standard, "ThrottlingStatusCodeChecker", None)
_BOTOCORE_RETRYABLE = standard.OrRetryChecker(
    [
        standard.TransientRetryableChecker(),
        standard.ThrottledRetryableChecker(),
        *([_THROTTLING_STATUS()] if _THROTTLING_STATUS else []),
    ]
)
"""botocore's own standard-mode judgement of one failed attempt: throttling codes, 429, 5xx,
timeouts and connection errors. (Its modeled-retryable check needs the operation's model; none of
the operations this service calls models a retryable error, global tables' replicated write
conflicts aside.)"""
_ALSO_RETRYABLE_CODES = frozenset({"ConditionalRequestConflict"})
"""Retryable by AWS's documentation though botocore does not retry it: S3 answers a conditional
write that raced another with 409 ConditionalRequestConflict, and a retry resolves it."""


def is_retryable(error: Exception) -> bool:
    """Whether a later attempt may succeed where ``error`` failed, after botocore's retries.

    True for throttling, timeouts, AWS 5xx and running out of invocation time; False for what no
    retry fixes: access denied, validation, a missing table or bucket, no credentials.
    """
    if isinstance(error, AssumeRoleError):
        return error.retryable
    if isinstance(error, InvocationDeadlineError):
        return True  # this invocation ran out of time; the next one has its own
    if isinstance(error, ClientError):
        if error.response.get("Error", {}).get("Code") in _ALSO_RETRYABLE_CODES:
            return True
        metadata = error.response.get("ResponseMetadata", {})
        context = standard.RetryContext(
            attempt_number=1,
            parsed_response=error.response,
            http_response=SimpleNamespace(
                status_code=metadata.get("HTTPStatusCode"),
                headers=metadata.get("HTTPHeaders", {}),
            ),
        )
    else:
        context = standard.RetryContext(attempt_number=1, caught_exception=error)
    return bool(_BOTOCORE_RETRYABLE.is_retryable(context))


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

    def __init__(
        self, role_arn: str, session_name: str, code: str, hint: str, *, retryable: bool
    ) -> None:
        super().__init__(f"AssumeRole {role_arn} as {session_name} failed ({code}): {hint}")
        self.role_arn = role_arn
        self.session_name = session_name
        self.code = code
        self.hint = hint
        self.retryable = retryable
        """Whether STS may grant it later (throttled, unreachable) or never will (denied)."""

    @classmethod
    def explain(cls, role_arn: str, session_name: str, error: Exception) -> "AssumeRoleError":
        if isinstance(error, AssumeRoleError):
            return error  # an earlier link of a role chain failed: that is the role to look at
        return cls(role_arn, session_name, *_describe(error), retryable=is_retryable(error))
