"""``POST /items/{item_id}/exports``: write the item to the exports bucket as the writer role.

201 with the new object's key; 200 with the same body when a request with the same
``Idempotency-Key`` header was already exported, so a client may always retry with its key; 409
when that key was used for a different request (other ``fields``, or another caller). The object's
metadata records who asked (README "Authentication").
"""

from functools import lru_cache
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from app import runtime
from app.handlers.http import caller_of, new_resolver, resolve
from app.handlers.invocation import within_remaining_time
from app.handlers.routing import Response, Router
from app.observability import logger, metrics
from app.operations import export_id_for, export_item, export_request_from_api
from app.services import ExportsBucket, ItemsTable


@lru_cache(maxsize=1)
def routes(items: ItemsTable, exports: ExportsBucket) -> Router:
    """The route over these services, built once per execution environment (whose services are
    built once); the route holds them as typed arguments, not in an untyped context."""
    resolver = new_resolver()

    @resolver.post("/items/<item_id>/exports")
    def export(item_id: str) -> Response:
        event = resolver.current_event
        request = export_request_from_api(item_id, event.decoded_body)
        export_id = export_id_for(event.request_id, event.header("Idempotency-Key"))
        result = export_item(
            request, export_id, items=items, exports=exports, caller=caller_of(event.raw_event)
        )
        metrics.add_metric(
            name="ExportsWritten" if result.created else "ExportsRepeated", unit="Count", value=1
        )
        return Response(
            status_code=(HTTPStatus.CREATED if result.created else HTTPStatus.OK).value,
            body={"export_id": export_id, "key": result.key},
        )

    return resolver


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@within_remaining_time
def handle(
    event: dict[str, Any], context: LambdaContext, *, items: ItemsTable, exports: ExportsBucket
) -> dict[str, Any]:
    return resolve(routes(items, exports), event, context)


runtime.at_init(runtime.items_table, runtime.exports_bucket)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response: dict[str, Any] = handle(
        event, context, items=runtime.items_table(), exports=runtime.exports_bucket()
    )
    return response
