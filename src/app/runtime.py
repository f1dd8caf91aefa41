"""The execution environment's sessions, services and worker threads, built once, at init.

Handler modules call :func:`at_init` at import time, which Lambda runs once per execution
environment; ``functools.cache`` makes every later call (and every warm invocation) return the same
objects. Each function builds only what it uses: ``GetItemFunction`` never builds the writer
session, so it needs neither the role's ARN nor permission to assume it.

Nothing here reaches AWS: the writer session fetches credentials when a client first signs.

With SnapStart, Lambda snapshots the process after init and restores copies of it in many execution
environments. Credentials, connection pools and the environment id captured before the snapshot
must not be shared by all of them, so :func:`rebuild_after_restore` builds them again.

The packages export their names lazily and the builders reach them as attributes
(``services.ItemsTable``), only when called, so that a function's init imports only what it builds
(``tests/integration/test_import_budget.py``): the read function never loads the assumed-role
session, the bucket or the table export. The return types are quoted for the same reason.
"""

import os
import string
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import cache

import boto3

from app import cold_start, operations, services, sessions

try:  # Lambda's Python runtimes (3.12+) ship this module; vendoring it would break the hooks.
    from snapshot_restore_py import register_after_restore  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - only outside Lambda without the dev requirements

    def register_after_restore(func: Callable[[], None]) -> Callable[[], None]:
        return func


EXPORT_WORKERS = 4
"""Threads exporting an SQS batch, or scanning the table's segments, in parallel. They share the
clients (thread-safe) and never touch a session (not thread-safe); botocore's default connection
pool (10 per client) covers them."""


class ConfigurationError(RuntimeError):
    """A variable the template should set is missing: fail the init, loudly, not a request."""


def _require(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"environment variable {name} is not set; the template sets it")
    return value


def _environment_id() -> str:
    """A short id of this execution environment: Lambda names its log stream
    ``<date>/[<version>]<hex id>``. Any other name (``sam local invoke`` sets ``$LATEST``) gives no
    id, rather than a mangled version label posing as one."""
    _, bracket, tail = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "").rpartition("]")
    if not bracket:
        return ""
    return "".join(c for c in tail if c in string.ascii_letters + string.digits)[:12]


@cache
def base() -> boto3.Session:
    return sessions.base_session(_require("AWS_REGION"))


@cache
def writer() -> boto3.Session:
    """The writer role, assumed directly or through the hub role ``WRITER_VIA_ROLE_ARN`` names."""
    function_name = _require("AWS_LAMBDA_FUNCTION_NAME")
    session_name = sessions.role_session_name(function_name, _environment_id())
    duration = int(os.environ.get("WRITER_SESSION_SECONDS", "3600"))
    links = [
        sessions.RoleSpec(
            role_arn=role_arn,
            session_name=session_name,
            duration_seconds=duration,
            source_identity=sessions.role_session_name(function_name),
        )
        for role_arn in (
            os.environ.get("WRITER_VIA_ROLE_ARN", "").strip(),
            _require("WRITER_ROLE_ARN"),
        )
        if role_arn
    ]
    links[-1] = replace(links[-1], external_id=os.environ.get("WRITER_EXTERNAL_ID") or None)
    return sessions.assumed_role_chain(base(), *links)


@cache
def items_table() -> "services.ItemsTable":
    return services.ItemsTable(base(), _require("TABLE_NAME"))


@cache
def exports_bucket() -> "services.ExportsBucket":
    return services.ExportsBucket(writer(), _require("BUCKET_NAME"), _require("EXPORT_PREFIX"))


@cache
def export_workers() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=EXPORT_WORKERS, thread_name_prefix="export")


def _number(name: str, default: str) -> float:
    raw = os.environ.get(name, "").strip() or default
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(
            f"environment variable {name} must be a number, not {raw!r}"
        ) from None


@cache
def table_exporter() -> "operations.TableExporter":
    segments = _number("TABLE_EXPORT_SEGMENTS", "4")
    if not segments.is_integer() or not 1 <= segments <= 100:  # the template's MaxValue
        raise ConfigurationError("TABLE_EXPORT_SEGMENTS must be a whole number from 1 to 100")
    # Here, not at the top: only the table export's init needs it.
    from app.operations.read_limit import read_limit  # noqa: PLC0415

    return operations.TableExporter(
        items=items_table(),
        exports=exports_bucket(),
        runs=services.ExportRunsTable(base(), _require("RUNS_TABLE_NAME")),
        continuations=services.ContinuationQueue(base(), _require("CONTINUATION_QUEUE_URL")),
        workers=export_workers(),
        segments=int(segments),
        fan_out=os.environ.get("TABLE_EXPORT_FAN_OUT", "").strip().lower() == "true",
        read_limit=read_limit(_number("TABLE_EXPORT_READ_UNITS_PER_SEGMENT", "0")),
    )


PROBED_VERSIONS = {
    "GetItemFunction": "GET_ITEM_VERSION_ARN",
    "ExportItemFunction": "EXPORT_ITEM_VERSION_ARN",
    "ExportQueueFunction": "EXPORT_QUEUE_VERSION_ARN",
    "ExportTableFunction": "EXPORT_TABLE_VERSION_ARN",
}
"""The pre-traffic hook's targets: function logical id -> the variable holding its new version."""


@cache
def pre_traffic_targets() -> dict[str, str]:
    return {function: _require(variable) for function, variable in PROBED_VERSIONS.items()}


@cache
def function_versions() -> "services.FunctionVersions":
    return services.FunctionVersions(base())


@cache
def deployments() -> "services.Deployments":
    return services.Deployments(base())


_REBUILT_AFTER_RESTORE = (
    base,
    writer,
    items_table,
    exports_bucket,
    table_exporter,
    function_versions,
    deployments,
)
_built_at_init: list[Callable[[], object]] = []


def at_init(*builders: Callable[[], object]) -> None:
    """Build these now, during init (so inside a SnapStart snapshot), and again after a restore;
    then init is over: the garbage collector starts again (:mod:`app.cold_start`)."""
    for build in builders:
        build()
        if build not in _built_at_init:
            _built_at_init.append(build)
    cold_start.end_init()


def rebuild_after_restore() -> None:
    """Forget sessions, credentials and clients captured in the snapshot, and build fresh ones."""
    for built_once in _REBUILT_AFTER_RESTORE:
        built_once.cache_clear()
    for build in _built_at_init:
        build()


register_after_restore(rebuild_after_restore)
