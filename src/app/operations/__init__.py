"""One module per use case: what the service does, whoever asked (the API, a queue, a schedule,
an operator's script). Operations take validated requests and services; they build nothing.

* :mod:`~app.operations.get_item`: one item, read with the function's own session;
* :mod:`~app.operations.export_item`: one item to S3, written with the writer session;
* :mod:`~app.operations.export_table`: the whole table to S3, in resumable segments;
* :mod:`~app.operations.requests`: the requests they accept, validated before any AWS call;
* :mod:`~app.operations.callers`: who asked, from the claims API Gateway verified;
* :mod:`~app.operations.errors`: what they refuse.
"""

from app.operations.callers import UNVERIFIED, Caller, caller_from_api
from app.operations.errors import InvalidRequestError, ItemNotFoundError, UnidentifiedCallerError
from app.operations.export_item import export_item
from app.operations.export_table import TableExporter, TableExportOutcome
from app.operations.get_item import get_item
from app.operations.requests import (
    ExportRequest,
    export_id_for,
    export_request_from_api,
    export_request_from_message,
    parse_item_id,
    parse_json_object,
)

__all__ = [
    "UNVERIFIED",
    "Caller",
    "ExportRequest",
    "InvalidRequestError",
    "ItemNotFoundError",
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
]
