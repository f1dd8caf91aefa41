"""One module per AWS resource. Each takes a session, builds its client once, and speaks in the
service's own terms (items, exports), translating AWS failures into :class:`DependencyError`.
Names are exported lazily (PEP 562): a function's init imports only the services it builds.
"""

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.services.continuations import ContinuationQueue
    from app.services.deployments import Deployments
    from app.services.errors import (
        DependencyError,
        IdempotencyConflictError,
        LeaseLostError,
        UnknownSegmentError,
        UploadGoneError,
    )
    from app.services.export_runs import ExportRun, ExportRunsTable, SegmentProgress
    from app.services.exports import ExportResult, ExportsBucket
    from app.services.function_versions import FunctionVersions, Invocation
    from app.services.items import Item, ItemsTable, ScanPage

_LAZY = {
    "ContinuationQueue": "continuations",
    "Deployments": "deployments",
    "DependencyError": "errors",
    "IdempotencyConflictError": "errors",
    "LeaseLostError": "errors",
    "UnknownSegmentError": "errors",
    "UploadGoneError": "errors",
    "ExportRun": "export_runs",
    "ExportRunsTable": "export_runs",
    "SegmentProgress": "export_runs",
    "ExportResult": "exports",
    "ExportsBucket": "exports",
    "FunctionVersions": "function_versions",
    "Invocation": "function_versions",
    "Item": "items",
    "ItemsTable": "items",
    "ScanPage": "items",
}
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
    "UnknownSegmentError",
    "UploadGoneError",
]


def __getattr__(name: str) -> object:
    """Import the submodule that defines ``name`` on first use, then keep it here (PEP 562)."""
    submodule = _LAZY.get(name)
    if submodule is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{submodule}"), name)
    globals()[name] = value
    return value
