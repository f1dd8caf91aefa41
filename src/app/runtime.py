"""The execution environment's sessions and services, built once, at init.

Handler modules call these functions at import time, which Lambda runs once per execution
environment; ``functools.cache`` makes every later call (and every warm invocation) reuse the same
objects. Each function builds only what it uses: ``GetItemFunction`` never builds the writer
session, so it needs neither the role's ARN nor permission to assume it.

Nothing here reaches AWS: the writer session fetches credentials when a client first signs.
"""

import os
from functools import cache

import boto3

from app.services import ExportsBucket, ItemsTable
from app.sessions import RoleSpec, assumed_role_session, base_session, role_session_name


class ConfigurationError(RuntimeError):
    """A variable the template should set is missing: fail the init, loudly, not a request."""


def _require(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"environment variable {name} is not set; the template sets it")
    return value


def _environment_id() -> str:
    """A short id of this execution environment: its log stream name ends ``[$LATEST]<hex>``."""
    return os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "").rpartition("]")[2][:12]


@cache
def base() -> boto3.Session:
    return base_session(_require("AWS_REGION"))


@cache
def writer() -> boto3.Session:
    role = RoleSpec(
        role_arn=_require("WRITER_ROLE_ARN"),
        session_name=role_session_name(_require("AWS_LAMBDA_FUNCTION_NAME"), _environment_id()),
        duration_seconds=int(os.environ.get("WRITER_SESSION_SECONDS", "3600")),
        external_id=os.environ.get("WRITER_EXTERNAL_ID") or None,
    )
    return assumed_role_session(base(), role)


@cache
def items_table() -> ItemsTable:
    return ItemsTable(base(), _require("TABLE_NAME"))


@cache
def exports_bucket() -> ExportsBucket:
    return ExportsBucket(writer(), _require("BUCKET_NAME"), _require("EXPORT_PREFIX"))
