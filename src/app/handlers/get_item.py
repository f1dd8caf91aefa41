"""``GET /items/{item_id}``: the item as JSON, read with the base session."""

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from app import runtime
from app.handlers.http import new_resolver, resolve
from app.handlers.invocation import within_remaining_time
from app.handlers.routing import Response, Router
from app.observability import logger, metrics
from app.operations import get_item, parse_item_id
from app.services import ItemsTable


@lru_cache(maxsize=1)
def routes(items: ItemsTable) -> Router:
    """The route over these services, built once per execution environment (whose services are
    built once); the route holds them as typed arguments, not in an untyped context."""
    resolver = new_resolver()

    @resolver.get("/items/<item_id>")
    def read(item_id: str) -> Response:
        item = get_item(parse_item_id(item_id), items=items)
        metrics.add_metric(name="ItemsRead", unit="Count", value=1)
        return Response(status_code=200, body=item)

    return resolver


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@within_remaining_time
def handle(event: dict[str, Any], context: LambdaContext, *, items: ItemsTable) -> dict[str, Any]:
    return resolve(routes(items), event, context)


runtime.at_init(runtime.items_table)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response: dict[str, Any] = handle(event, context, items=runtime.items_table())
    return response
