"""The only place that builds credentials, sessions and clients.

Everything here is cheap to call at init: no function makes a network call when it runs; the
assumed-role session fetches its credentials from STS when a client first signs a request.

Names are exported lazily (PEP 562): a function that assumes no role never imports the
assumed-role machinery.
"""

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
    from app.sessions.config import (
        CLIENT_CONFIG,
        worst_case_call_seconds,
        worst_case_invoke_seconds,
    )
    from app.sessions.errors import AssumeRoleError, InvocationDeadlineError, is_retryable

_LAZY = {
    "RoleSpec": "assumed_role",
    "assumed_role_chain": "assumed_role",
    "assumed_role_session": "assumed_role",
    "role_session_name": "assumed_role",
    "base_session": "base",
    "codedeploy_client": "clients",
    "dynamodb_client": "clients",
    "lambda_client": "clients",
    "s3_client": "clients",
    "sqs_client": "clients",
    "sts_client": "clients",
    "CLIENT_CONFIG": "config",
    "worst_case_call_seconds": "config",
    "worst_case_invoke_seconds": "config",
    "AssumeRoleError": "errors",
    "InvocationDeadlineError": "errors",
    "is_retryable": "errors",
}
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


def __getattr__(name: str) -> object:
    """Import the submodule that defines ``name`` on first use, then keep it here (PEP 562)."""
    submodule = _LAZY.get(name)
    if submodule is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{submodule}"), name)
    globals()[name] = value
    return value
