"""Published versions of this stack's functions, invoked synchronously before they get traffic.

The pre-traffic hook's role may invoke exactly the versions the template names (their ARNs), so
an ARN is all a caller passes: never an alias, which would reach the version serving traffic.
"""

import json
from dataclasses import dataclass
from typing import Any

import boto3

from app.services.errors import AWS_ERRORS, DependencyError
from app.sessions import lambda_client


@dataclass(frozen=True)
class Invocation:
    """What a version answered: its payload (JSON), or the error Lambda reports for it."""

    payload: Any
    function_error: str | None = None
    """``Unhandled`` when the function raised or timed out; the payload is then Lambda's error."""


class FunctionVersions:
    def __init__(self, session: boto3.Session) -> None:
        self._client = lambda_client(session)

    def invoke(self, version_arn: str, event: dict[str, Any]) -> Invocation:
        try:
            response = self._client.invoke(
                FunctionName=version_arn,
                InvocationType="RequestResponse",
                Payload=json.dumps(event).encode(),
            )
        except AWS_ERRORS as error:
            raise DependencyError.wrap(version_arn, "Invoke", error) from error
        raw = response["Payload"].read()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode(errors="replace")
        return Invocation(payload=payload, function_error=response.get("FunctionError"))
