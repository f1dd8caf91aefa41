"""``GET /items/{item_id}``: the item as JSON, read with the base session."""

from typing import Any, cast

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from app import runtime
from app.handlers.http import new_resolver, resolve
from app.invocation import within_remaining_time
from app.models import parse_item_id
from app.observability import logger, metrics
from app.operations import ItemNotFoundError
from app.services import Item, ItemsTable

resolver = new_resolver()


@resolver.get("/items/<item_id>")
def _get_item(item_id: str) -> Response[Item]:
    items = cast(ItemsTable, resolver.context["items"])
    item = items.get(parse_item_id(item_id))
    if item is None:
        raise ItemNotFoundError(item_id)
    metrics.add_metric(name="ItemsRead", unit="Count", value=1)
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=item)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@within_remaining_time
def handle(event: dict[str, Any], context: LambdaContext, *, items: ItemsTable) -> dict[str, Any]:
    return resolve(resolver, event, context, items=items)


runtime.at_init(runtime.items_table)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response: dict[str, Any] = handle(event, context, items=runtime.items_table())
    return response
