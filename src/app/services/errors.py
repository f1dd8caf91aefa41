"""Failures of AWS dependencies, in a form handlers can answer and operators can act on."""

from botocore.exceptions import BotoCoreError, ClientError

from app.sessions import AssumeRoleError, InvocationDeadlineError, is_retryable

_CLIENT_FAULT_HINTS = {
    "AccessDenied": "check the policy of the role that made the call for this action and resource",
    "AccessDeniedException": "check the function role's policy for this action and resource",
    "ResourceNotFoundException": "check the table name the template passes to the function",
    "NoSuchBucket": "check the bucket name the template passes to the function",
    "403": "AccessDenied (a HEAD answer has no body to name it): check the role's policy",
    "ExpiredToken": "the session expired before it refreshed: check the clock and session duration",
}
AWS_ERRORS = (ClientError, BotoCoreError, AssumeRoleError)
"""What a service call can raise that means "AWS failed", as opposed to a bug in our code."""


class DependencyError(Exception):
    """An AWS call failed after botocore's retries: for a while (``retryable``: throttling,
    timeouts, AWS 5xx) or until someone fixes something (access denied, validation, a missing
    resource)."""

    def __init__(
        self,
        resource: str,
        operation: str,
        code: str,
        hint: str,
        role_session: str = "",
        *,
        retryable: bool,
    ) -> None:
        super().__init__(f"{operation} on {resource} failed ({code}): {hint}")
        self.resource = resource
        self.operation = operation
        self.code = code
        self.hint = hint
        self.role_session = role_session
        self.retryable = retryable

    def log_fields(self) -> dict[str, str | bool]:
        """What an operator needs in the log line: what failed, whether time will fix it, and
        what to check."""
        fields: dict[str, str | bool] = {
            "resource": self.resource,
            "operation": self.operation,
            "error_code": self.code,
            "retryable": self.retryable,
            "hint": self.hint,
        }
        if self.role_session:
            fields["role_session_name"] = self.role_session
        return fields

    @classmethod
    def wrap(cls, resource: str, operation: str, error: Exception) -> "DependencyError":
        """Describe ``error`` without its message: AWS messages can echo request data."""
        retryable = is_retryable(error)
        if isinstance(error, AssumeRoleError):
            # The call never left: its credentials could not be obtained. Point at the role.
            return cls(
                error.role_arn,
                "AssumeRole",
                error.code,
                error.hint,
                error.session_name,
                retryable=retryable,
            )
        if isinstance(error, ClientError):
            code = str(error.response.get("Error", {}).get("Code", "Unknown"))
            hint = _CLIENT_FAULT_HINTS.get(
                code,
                "AWS failed the call after retries"
                if retryable
                else "AWS refused the call: check the request and the function's configuration",
            )
        elif isinstance(error, InvocationDeadlineError):
            code = "InvocationDeadline"
            hint = "the invocation ran out of time for AWS calls: a dependency is slow or failing"
        elif isinstance(error, BotoCoreError):
            code = type(error).__name__
            hint = (
                "AWS could not be reached or did not answer in time after retries"
                if retryable
                else "botocore could not make the call: check the function's configuration"
            )
        else:  # pragma: no cover - callers only pass AWS_ERRORS
            code = type(error).__name__
            hint = "unexpected failure"
        return cls(resource, operation, code, hint, retryable=retryable)


class UploadGoneError(DependencyError):
    """S3 no longer knows the multipart upload: aborted (the bucket's lifecycle rule), or, at
    completion, possibly completed long ago. Its parts are gone; the caller starts again."""


class IdempotencyConflictError(Exception):
    """The export id names an export of a different request: the client reused its key."""

    def __init__(self, export_id: str) -> None:
        super().__init__(f"export {export_id!r} was made for a different request")
        self.export_id = export_id


class LeaseLostError(Exception):
    """Another invocation took over this run (ours outlived its lease): stop without writing."""


class UnknownSegmentError(LookupError):
    """A segment message names no segment of a fanned-out run (gone by TTL, or never one)."""
