"""One module per AWS resource. Each takes a session, builds its client once, and speaks in the
service's own terms (items, exports), translating AWS failures into :class:`DependencyError`."""

from app.services.continuations import ContinuationQueue
from app.services.deployments import Deployments
from app.services.errors import (
    DependencyError,
    IdempotencyConflictError,
    LeaseLostError,
    UploadGoneError,
)
from app.services.export_runs import ExportRun, ExportRunsTable, SegmentProgress
from app.services.exports import ExportResult, ExportsBucket
from app.services.function_versions import FunctionVersions, Invocation
from app.services.items import Item, ItemsTable, ScanPage

__all__ = [
    "ContinuationQueue",
    "DependencyError",
    "Deployments",
    "ExportResult",
    "ExportRun",
    "ExportRunsTable",
    "ExportsBucket",
    "FunctionVersions",
    "IdempotencyConflictError",
    "Invocation",
    "Item",
    "ItemsTable",
    "LeaseLostError",
    "ScanPage",
    "SegmentProgress",
    "UploadGoneError",
]
