"""The only place that builds credentials, sessions and clients.

Everything here is cheap to call at init: no function makes a network call when it runs; the
assumed-role session fetches its credentials from STS when a client first signs a request.
"""

from app.sessions.assumed_role import (
    RoleSpec,
    assumed_role_chain,
    assumed_role_session,
    role_session_name,
)
from app.sessions.base import base_session
from app.sessions.clients import (
    codedeploy_client,
    dynamodb_client,
    lambda_client,
    s3_client,
    sqs_client,
    sts_client,
)
from app.sessions.config import CLIENT_CONFIG, worst_case_call_seconds, worst_case_invoke_seconds
from app.sessions.errors import AssumeRoleError, InvocationDeadlineError, is_retryable

__all__ = [
    "CLIENT_CONFIG",
    "AssumeRoleError",
    "InvocationDeadlineError",
    "RoleSpec",
    "assumed_role_chain",
    "assumed_role_session",
    "base_session",
    "codedeploy_client",
    "dynamodb_client",
    "is_retryable",
    "lambda_client",
    "role_session_name",
    "s3_client",
    "sqs_client",
    "sts_client",
    "worst_case_call_seconds",
    "worst_case_invoke_seconds",
]
