"""What the service does, whoever asked: the API and the queue run the same export path."""

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from app.operations.callers import Caller
from app.operations.errors import InvalidRequestError, ItemNotFoundError

# Types only: app.operations imports this module at once, for every function's init.
if TYPE_CHECKING:
    from app.operations.requests import ExportRequest
    from app.services import ExportResult, ExportsBucket, ItemsTable

EXPORT_ID_PATTERN = re.compile(r"[A-Za-z0-9+/=_-]{1,128}")
"""What may name an export's object: API Gateway's request ids (base64 text), SQS message ids
(UUIDs) and ``client-`` plus an ``Idempotency-Key``. A direct Invoke sends any string there, and an
empty one, ``..``, a NUL or a lone surrogate (which botocore cannot even encode) would otherwise
reach S3 as part of a key."""


def export_item(
    request: "ExportRequest",
    export_id: str,
    *,
    items: "ItemsTable",
    exports: "ExportsBucket",
    caller: Caller,
) -> "ExportResult":
    """Read the item with the base session and write it with the writer session.

    ``export_id`` names the object, so a retried request (a redelivered message) finds its earlier
    object instead of writing a second one; reused for a different request, or by another
    ``caller``, it is refused (:class:`~app.services.exports.IdempotencyConflictError`). The
    object's metadata records who asked (``Caller.recorded``). ``caller`` has no default: each
    entry point says who it serves, so none is taken for an unverified one by omission.
    """
    if not EXPORT_ID_PATTERN.fullmatch(export_id):
        raise InvalidRequestError(
            "the request's id (requestId, messageId) names its export and must be 1-128 "
            "letters, digits, '+', '/', '=', '_' or '-'"
        )
    item = items.get(request.item_id, request.fields)
    if item is None:
        raise ItemNotFoundError(request.item_id)
    document = {
        "export_id": export_id,
        "exported_at": datetime.now(UTC).isoformat(),
        "item": item,
        "item_id": request.item_id,
    }
    fingerprint = request.fingerprint(caller.identity())
    return exports.write(
        request.item_id, export_id, document, fingerprint, recorded=caller.recorded()
    )
