"""What the two HTTP API functions share: one error shape, and failures mapped to status codes."""

import binascii
from http import HTTPStatus

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types

from app.models import InvalidRequestError
from app.observability import logger, metrics
from app.operations import ItemNotFoundError
from app.services import DependencyError

ErrorResponse = Response[dict[str, str]]


def error_response(status: HTTPStatus, message: str) -> ErrorResponse:
    return Response(
        status_code=status.value,
        content_type=content_types.APPLICATION_JSON,
        body={"message": message},
    )


def _invalid_request(error: InvalidRequestError) -> ErrorResponse:
    metrics.add_metric(name="RequestsRejected", unit="Count", value=1)
    return error_response(HTTPStatus.BAD_REQUEST, str(error))


def _undecodable_body(_error: binascii.Error) -> ErrorResponse:
    return error_response(HTTPStatus.BAD_REQUEST, "the body is marked base64 but is not")


def _item_not_found(error: ItemNotFoundError) -> ErrorResponse:
    metrics.add_metric(name="ItemsNotFound", unit="Count", value=1)
    return error_response(HTTPStatus.NOT_FOUND, str(error))


def _no_route(_error: Exception) -> ErrorResponse:
    metrics.add_metric(name="RoutesNotFound", unit="Count", value=1)
    return error_response(HTTPStatus.NOT_FOUND, "no such route")


def _dependency_failed(error: DependencyError) -> ErrorResponse:
    """One structured line for operators (what failed, what to check); a 503 for the caller."""
    logger.error("dependency failed", extra=error.log_fields())
    metrics.add_metric(name="DependencyFailures", unit="Count", value=1)
    return error_response(HTTPStatus.SERVICE_UNAVAILABLE, "temporarily unavailable, retry later")


def new_resolver() -> APIGatewayHttpResolver:
    """A resolver whose failures are always a JSON ``{"message": ...}``, never a bare 500."""
    resolver = APIGatewayHttpResolver()
    resolver.exception_handler(InvalidRequestError)(_invalid_request)
    resolver.exception_handler(binascii.Error)(_undecodable_body)
    resolver.exception_handler(ItemNotFoundError)(_item_not_found)
    resolver.exception_handler(DependencyError)(_dependency_failed)
    resolver.not_found(_no_route)
    return resolver
