"""What the service does, whoever asked: the API and the queue run the same export path."""

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from app.operations.callers import Caller
from app.operations.errors import ItemNotFoundError

# Types only: app.operations imports this module at once, for every function's init.
if TYPE_CHECKING:
    from app.operations.requests import ExportRequest
    from app.services import ExportResult, ExportsBucket, ItemsTable


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
