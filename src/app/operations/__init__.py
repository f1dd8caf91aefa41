"""One module per use case: what the service does, whoever asked (the API, a queue, a schedule,
an operator's script). Operations take validated requests and services; they build nothing.

* :mod:`~app.operations.get_item`: one item, read with the function's own session;
* :mod:`~app.operations.export_item`: one item to S3, written with the writer session;
* :mod:`~app.operations.export_table`: the whole table to S3, in resumable segments;
* :mod:`~app.operations.pre_traffic`: new versions probed before CodeDeploy shifts traffic;
* :mod:`~app.operations.requests`: the requests they accept, validated before any AWS call;
* :mod:`~app.operations.callers`: who asked, from the claims API Gateway verified;
* :mod:`~app.operations.errors`: what they refuse.

Names are exported lazily (PEP 562): importing one handler imports only the operations it uses,
so an API function's init never loads the table export or the pre-traffic hook. ``get_item`` and
``export_item`` are bound at once: they share their modules' names, and a submodule imported
first would otherwise shadow its function here.
"""

from importlib import import_module
from typing import TYPE_CHECKING

from app.operations.export_item import export_item
from app.operations.get_item import get_item

if TYPE_CHECKING:
    from app.operations.callers import UNVERIFIED, Caller, caller_from_api
    from app.operations.errors import (
        InvalidRequestError,
        ItemNotFoundError,
        UnidentifiedCallerError,
    )
    from app.operations.export_table import TableExporter, TableExportOutcome
    from app.operations.pre_traffic import HookVerdict, ProbeResult, run_pre_traffic_hook
    from app.operations.requests import (
        ExportRequest,
        export_id_for,
        export_request_from_api,
        export_request_from_message,
        parse_item_id,
        parse_json_object,
        refuse_unknown_fields,
    )

_LAZY = {
    "UNVERIFIED": "callers",
    "Caller": "callers",
    "caller_from_api": "callers",
    "InvalidRequestError": "errors",
    "ItemNotFoundError": "errors",
    "UnidentifiedCallerError": "errors",
    "TableExporter": "export_table",
    "TableExportOutcome": "export_table",
    "HookVerdict": "pre_traffic",
    "ProbeResult": "pre_traffic",
    "run_pre_traffic_hook": "pre_traffic",
    "ExportRequest": "requests",
    "export_id_for": "requests",
    "export_request_from_api": "requests",
    "export_request_from_message": "requests",
    "parse_item_id": "requests",
    "parse_json_object": "requests",
    "refuse_unknown_fields": "requests",
}
__all__ = [
    "UNVERIFIED",
    "Caller",
    "ExportRequest",
    "HookVerdict",
    "InvalidRequestError",
    "ItemNotFoundError",
    "ProbeResult",
    "TableExportOutcome",
    "TableExporter",
    "UnidentifiedCallerError",
    "caller_from_api",
    "export_id_for",
    "export_item",
    "export_request_from_api",
    "export_request_from_message",
    "get_item",
    "parse_item_id",
    "parse_json_object",
    "refuse_unknown_fields",
    "run_pre_traffic_hook",
]


def __getattr__(name: str) -> object:
    """Import the submodule that defines ``name`` on first use, then keep it here (PEP 562)."""
    submodule = _LAZY.get(name)
    if submodule is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{submodule}"), name)
    globals()[name] = value
    return value
