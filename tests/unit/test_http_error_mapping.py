"""The HTTP error mapping, exactly: each failure's status, message and metric (mutation survivors).

``app.handlers.http.new_resolver`` runs once per handler module, at import, so the suite's
handler tests never saw a mutant of it; these build a fresh resolver and raise each mapped error
from a route of their own.
"""

import binascii
import copy
import json
from typing import Any

import pytest

from app.handlers import http
from app.observability import metrics
from app.operations import ItemNotFoundError
from app.operations.requests import InvalidRequestError
from app.services.errors import DependencyError, IdempotencyConflictError
from tests.conftest import EVENTS
from tools.emulator.lambda_context import LambdaContext

pytestmark = pytest.mark.usefixtures("fresh_metrics")

EVENT = json.loads((EVENTS / "GetItemFunction" / "found.json").read_text())


def _counts() -> dict[str, tuple[str, list[float]]]:
    return {name: (m["Unit"], m["Value"]) for name, m in metrics.metric_set.items()}


def _raising(error: Exception, path: str = "/boom") -> dict[str, Any]:
    resolver = http.new_resolver()

    @resolver.get("/boom")
    def boom() -> None:
        raise error

    event = copy.deepcopy(EVENT)
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    return http.resolve(resolver, event, LambdaContext(function_name="items-test-GetItemFunction"))


@pytest.mark.parametrize(
    ("error", "status", "message", "metric"),
    [
        (
            InvalidRequestError("fields must be a list"),
            400,
            "fields must be a list",
            "RequestsRejected",
        ),
        (binascii.Error("bad"), 400, "the body is marked base64 but is not", "RequestsRejected"),
        (
            UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
            400,
            "the body must be UTF-8 text (JSON)",
            "RequestsRejected",
        ),
        (ItemNotFoundError("42"), 404, "item '42' not found", "ItemsNotFound"),
        (
            IdempotencyConflictError("export-1"),
            409,
            "this Idempotency-Key was already used for a different request (other fields, or "
            "another caller); send a new key for a new request",
            "IdempotencyConflicts",
        ),
    ],
)
def test_each_mapped_error_is_its_status_message_and_one_metric(
    error: Exception, status: int, message: str, metric: str
) -> None:
    response = _raising(error)

    assert response["statusCode"] == status
    assert json.loads(response["body"]) == {"message": message}
    assert _counts() == {metric: ("Count", [1.0])}


def test_a_path_with_no_route_is_404_no_such_route() -> None:
    response = _raising(RuntimeError("never raised"), path="/nowhere")

    assert response["statusCode"] == 404
    assert json.loads(response["body"]) == {"message": "no such route"}
    assert _counts() == {"RoutesNotFound": ("Count", [1.0])}


@pytest.mark.parametrize(
    ("retryable", "status", "metric"),
    [(True, 503, "DependencyFailures"), (False, 500, "DependencyMisconfigured")],
)
def test_a_failed_dependency_is_one_log_line_and_one_metric_of_its_kind(
    retryable: bool, status: int, metric: str, caplog: pytest.LogCaptureFixture
) -> None:
    error = DependencyError(
        "items-table", "GetItem", "SomeCode", "check the table", retryable=retryable
    )

    response = _raising(error)

    assert response["statusCode"] == status
    assert _counts() == {metric: ("Count", [1.0])}
    [logged] = [record for record in caplog.records if record.levelname == "ERROR"]
    assert logged.getMessage() == "dependency failed"
    assert {key: getattr(logged, key) for key in error.log_fields()} == error.log_fields()


def _without_claims(event: dict[str, Any]) -> dict[str, Any]:
    event["requestContext"]["authorizer"]["jwt"]["claims"] = {}
    return event


@pytest.mark.parametrize(
    ("reshape", "status"),
    [
        (lambda event: {k: v for k, v in event.items() if k != "requestContext"}, 400),
        (_without_claims, 403),
    ],
    ids=["no-request-context", "token-names-no-one"],
)
def test_an_event_refused_before_routing_is_a_plain_json_answer_and_one_metric(
    reshape: Any, status: int
) -> None:
    event = reshape(copy.deepcopy(EVENT))

    response = http.resolve(
        http.new_resolver(), event, LambdaContext(function_name="items-test-GetItemFunction")
    )

    assert {key: response[key] for key in ("statusCode", "headers", "isBase64Encoded")} == {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "isBase64Encoded": False,
    }
    assert set(response) == {"statusCode", "headers", "body", "isBase64Encoded"}
    assert json.loads(response["body"])["message"]
    assert _counts() == {"RequestsRejected": ("Count", [1.0])}


def _with(path: tuple[str, ...], value: object) -> Any:
    def reshape(event: dict[str, Any]) -> dict[str, Any]:
        target = event
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return event

    return reshape


NOT_HTTP = "not an HTTP API event: requestContext.requestId, http.method and rawPath are required"
REFUSALS: list[tuple[str, Any, str]] = [
    ("a-list", lambda _event: [], "not an HTTP API event: it must be a JSON object"),
    ("no-request-id", _with(("requestContext", "requestId"), None), NOT_HTTP),
    ("method-not-a-string", _with(("requestContext", "http", "method"), 7), NOT_HTTP),
    ("no-raw-path", _with(("rawPath",), None), NOT_HTTP),
    ("body-a-number", _with(("body",), 5), "the body must be a string"),
    *(
        (
            f"base64-flag-{flag!r}",
            _with(("isBase64Encoded",), flag),
            "isBase64Encoded must be true or false",
        )
        for flag in ("false", 0, None)
    ),
    (
        "stage-a-list",
        _with(("requestContext", "stage"), ["$default"]),
        ("requestContext.stage must be a string"),
    ),
    ("headers-a-string", _with(("headers",), "accept"), "headers must be an object of strings"),
    ("header-a-number", _with(("headers",), {"accept": 1}), "headers must be an object of strings"),
    (
        "path-parameter-a-number",
        _with(("pathParameters",), {"item_id": 42}),
        ("pathParameters must be an object of strings"),
    ),
    (
        "query-a-list",
        _with(("queryStringParameters",), {"q": ["a"]}),
        ("queryStringParameters must be an object of strings"),
    ),
    (
        "stage-variable-null",
        _with(("stageVariables",), {"v": None}),
        ("stageVariables must be an object of strings"),
    ),
    ("cookies-a-string", _with(("cookies",), "a=b"), "cookies must be a list of strings"),
    ("cookie-a-number", _with(("cookies",), ["a=b", 1]), "cookies must be a list of strings"),
    (
        "authorizer-not-an-object",
        _with(("requestContext", "authorizer"), "x"),
        "requestContext.authorizer must be an object",
    ),
    (
        "jwt-not-an-object",
        _with(("requestContext", "authorizer", "jwt"), ["x"]),
        "authorizer.jwt must be an object",
    ),
    (
        "subject-a-number",
        _with(("requestContext", "authorizer", "jwt", "claims", "sub"), 5),
        "the authorizer's claim sub must be a string",
    ),
    (
        "claims-not-an-object",
        _with(("requestContext", "authorizer", "jwt", "claims"), "x"),
        ("authorizer.jwt.claims must be an object"),
    ),
    (
        "token-names-no-one",
        _without_claims,
        ("the token names neither a subject (sub) nor a client (client_id, azp)"),
    ),
]


@pytest.mark.parametrize(
    ("reshape", "message"),
    [(reshape, message) for _, reshape, message in REFUSALS],
    ids=[name for name, _, _ in REFUSALS],
)
def test_each_refusal_before_routing_says_exactly_what_is_wrong(reshape: Any, message: str) -> None:
    event = reshape(copy.deepcopy(EVENT))

    response = http.resolve(
        http.new_resolver(), event, LambdaContext(function_name="items-test-GetItemFunction")
    )

    assert response["statusCode"] == (403 if reshape is _without_claims else 400)
    assert json.loads(response["body"]) == {"message": message}


@pytest.mark.parametrize(
    "reshape",
    [
        _with(("cookies",), ["a=b", "c=d"]),
        _with(("pathParameters",), {"item_id": "42"}),
        _with(("stageVariables",), None),
        _with(("requestContext", "stage"), None),
    ],
    ids=["cookies", "path-parameters", "no-stage-variables", "no-stage"],
)
def test_what_api_gateway_sends_is_not_refused(reshape: Any) -> None:
    event = reshape(copy.deepcopy(EVENT))
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/nowhere"

    response = http.resolve(
        http.new_resolver(), event, LambdaContext(function_name="items-test-GetItemFunction")
    )

    assert response["statusCode"] == 404  # routed: no route matches


def test_the_answer_s_log_line_names_the_method_and_status(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO")
    _raising(ItemNotFoundError("42"))

    [answered] = [r for r in caplog.records if r.getMessage() == "request answered"]
    assert (answered.method, answered.status) == ("GET", 404)  # type: ignore[attr-defined]
