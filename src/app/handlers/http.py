"""What the two HTTP API functions share: one error shape, failures mapped to status codes, and
one log line per request naming its caller (``app.operations.callers``)."""

import binascii
import json
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from app.handlers.routing import APPLICATION_JSON, Response, Router
from app.observability import logger, metrics
from app.operations import (
    Caller,
    InvalidRequestError,
    ItemNotFoundError,
    UnidentifiedCallerError,
    caller_from_api,
)
from app.services import DependencyError, IdempotencyConflictError
from app.services.exact_json import dumps

ErrorResponse = Response


def error_response(status: HTTPStatus, message: str) -> ErrorResponse:
    return Response(status_code=status.value, body={"message": message})


def _invalid_request(error: InvalidRequestError) -> ErrorResponse:
    metrics.add_metric(name="RequestsRejected", unit="Count", value=1)
    return error_response(HTTPStatus.BAD_REQUEST, str(error))


def _undecodable_body(_error: binascii.Error) -> ErrorResponse:
    metrics.add_metric(name="RequestsRejected", unit="Count", value=1)
    return error_response(HTTPStatus.BAD_REQUEST, "the body is marked base64 but is not")


def _body_not_utf8(_error: UnicodeDecodeError) -> ErrorResponse:
    metrics.add_metric(name="RequestsRejected", unit="Count", value=1)
    return error_response(HTTPStatus.BAD_REQUEST, "the body must be UTF-8 text (JSON)")


def _item_not_found(error: ItemNotFoundError) -> ErrorResponse:
    metrics.add_metric(name="ItemsNotFound", unit="Count", value=1)
    return error_response(HTTPStatus.NOT_FOUND, str(error))


def _key_reused(_error: IdempotencyConflictError) -> ErrorResponse:
    metrics.add_metric(name="IdempotencyConflicts", unit="Count", value=1)
    return error_response(
        HTTPStatus.CONFLICT,
        "this Idempotency-Key was already used for a different request (other fields, or "
        "another caller); "
        "send a new key for a new request",
    )


def _no_route(_error: Exception) -> ErrorResponse:
    metrics.add_metric(name="RoutesNotFound", unit="Count", value=1)
    return error_response(HTTPStatus.NOT_FOUND, "no such route")


RETRY_AFTER_SECONDS = 5
"""What a 503 asks the caller to wait: no less than the writer session's cooldown after a failed
AssumeRole (``sessions.assumed_role.FAILURE_COOLDOWN_SECONDS``), within which a retry would only
meet the same failure again."""


def _dependency_failed(error: DependencyError) -> ErrorResponse:
    """One structured line for operators (what failed, whether it is retryable, what to check).

    The caller hears only whether to retry: a 503 with ``Retry-After`` when time may fix it
    (throttling, timeouts, AWS 5xx), a 500 when it will not (denied, invalid, misconfigured).
    """
    logger.error("dependency failed", extra=error.log_fields())
    if error.retryable:
        metrics.add_metric(name="DependencyFailures", unit="Count", value=1)
        response = error_response(
            HTTPStatus.SERVICE_UNAVAILABLE, "temporarily unavailable, retry later"
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    metrics.add_metric(name="DependencyMisconfigured", unit="Count", value=1)
    return error_response(
        HTTPStatus.INTERNAL_SERVER_ERROR,
        "the service cannot complete this request; retrying will not help until it is fixed",
    )


def new_resolver() -> Router:
    """A resolver whose failures are always a JSON ``{"message": ...}``, never a bare 500.

    Bodies are written by ``services.exact_json.dumps``, which writes a Decimal as the number it
    is (Powertools' default serializer would write it as a JSON string).
    """
    resolver = Router(serializer=dumps)
    resolver.exception_handler(InvalidRequestError)(_invalid_request)
    resolver.exception_handler(binascii.Error)(_undecodable_body)
    resolver.exception_handler(UnicodeDecodeError)(_body_not_utf8)
    resolver.exception_handler(ItemNotFoundError)(_item_not_found)
    resolver.exception_handler(IdempotencyConflictError)(_key_reused)
    resolver.exception_handler(DependencyError)(_dependency_failed)
    resolver.not_found(_no_route)
    return resolver


def _envelope_problem(event: dict[str, Any]) -> str | None:
    """What makes ``event`` something API Gateway would never send (a direct Invoke can)."""
    if not isinstance(event, dict):  # any JSON at all: a list, a string, null
        return "not an HTTP API event: it must be a JSON object"
    request_context = event.get("requestContext")
    if not (
        isinstance(request_context, dict)
        and isinstance(request_context.get("requestId"), str)
        and isinstance(request_context.get("http"), dict)
        and isinstance(request_context["http"].get("method"), str)
        and isinstance(event.get("rawPath"), str)
    ):
        return (
            "not an HTTP API event: requestContext.requestId, http.method and rawPath are required"
        )
    if not isinstance(event.get("body"), str | None):
        return "the body must be a string"
    if not isinstance(event.get("isBase64Encoded", False), bool):  # "false" would decode the body
        return "isBase64Encoded must be true or false"
    return _strings_problem(event)


def _strings_problem(event: dict[str, Any]) -> str | None:
    """What API Gateway always sends as strings but is not: a direct Invoke may send anything
    there, nested without bound, and Powertools or the handler would trip on it."""
    if not isinstance(event["requestContext"].get("stage"), str | None):
        return "requestContext.stage must be a string"
    for name in ("headers", "pathParameters", "queryStringParameters", "stageVariables"):
        value = event.get(name)
        if not (value is None or (isinstance(value, dict) and _strings(value.values()))):
            return f"{name} must be an object of strings"
    cookies = event.get("cookies")
    if not (cookies is None or (isinstance(cookies, list) and _strings(cookies))):
        return "cookies must be a list of strings"
    return None


def _strings(values: Iterable[object]) -> bool:
    return all(isinstance(value, str) for value in values)


def _refused(status: HTTPStatus, message: str) -> dict[str, Any]:
    metrics.add_metric(name="RequestsRejected", unit="Count", value=1)
    return {
        "statusCode": status.value,
        "headers": {"Content-Type": APPLICATION_JSON},
        "body": json.dumps({"message": message}),
        "isBase64Encoded": False,
    }


def caller_of(event: dict[str, Any]) -> Caller:
    """The caller of an event :func:`resolve` admitted (its claims were checked there)."""
    return caller_from_api(event["requestContext"])


MAX_LOGGED_METHOD = 16


def resolve(
    resolver: Router,
    event: dict[str, Any],
    context: LambdaContext,
) -> dict[str, Any]:
    """Route ``event``; a malformed envelope is a 400 like any other.

    Every line logged while it runs, and the one line that says how it ended, carry the caller:
    subject, client id and scopes, nothing else of the token.
    """
    problem = _envelope_problem(event)
    if problem is not None:
        return _refused(HTTPStatus.BAD_REQUEST, problem)
    try:
        caller = caller_of(event)
    except InvalidRequestError as error:
        return _refused(HTTPStatus.BAD_REQUEST, str(error))
    except UnidentifiedCallerError as error:
        return _refused(HTTPStatus.FORBIDDEN, str(error))
    fields = caller.log_fields()
    logger.append_keys(**fields)
    try:
        response = resolver.resolve(event)
        method = event["requestContext"]["http"]["method"][:MAX_LOGGED_METHOD]
        logger.info("request answered", extra={"method": method, "status": response["statusCode"]})
    finally:
        logger.remove_keys(list(fields))
    return response
