"""One module per AWS resource. Each takes a session, builds its client once, and speaks in the
service's own terms (items, exports), translating AWS failures into :class:`DependencyError`."""

from app.services.errors import DependencyError
from app.services.exports import ExportResult, ExportsBucket
from app.services.items import Item, ItemsTable

__all__ = ["DependencyError", "ExportResult", "ExportsBucket", "Item", "ItemsTable"]
