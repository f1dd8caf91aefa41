"""``app.handlers.routing`` answers every event as Powertools' ``APIGatewayHttpResolver`` does.

The API functions route with a small router of their own (its import is ~45 ms cheaper at each
cold start: README "Performance"). Here the same routes, exception handlers and serializer are
registered on both, generated events (methods, paths with every character class a path parameter
may or may not hold, stages, headers in any case, bodies plain and base64) go through both, and
the responses must be equal, exception for exception, except where ours is stricter on purpose
(``_as_powertools_should``: the stage taken off only where the path starts with it, a path matched
whole).
"""

import base64
import binascii
import json
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler import Response as PowertoolsResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from app.handlers import routing
from app.services.exact_json import dumps


class RefusedError(ValueError):
    """Mapped to 400 by a handler registered for its base class: the MRO is searched."""


class UnmappedError(LookupError):
    """No handler: it propagates from both."""


def _answer(item_id: str, body: str | None, key: str | None) -> tuple[int, dict[str, Any]]:
    if item_id.startswith("refused"):
        raise RefusedError(item_id)
    if item_id.startswith("unmapped"):
        raise UnmappedError(item_id)
    return 200, {"item_id": item_id, "body": body, "key": key, "number": 1}


def _powertools() -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(serializer=dumps)

    @app.get("/items/<item_id>")
    def read(item_id: str) -> PowertoolsResponse[Any]:
        status, body = _answer(item_id, None, None)
        return PowertoolsResponse(status_code=status, content_type="application/json", body=body)

    @app.post("/items/<item_id>/exports")
    def export(item_id: str) -> PowertoolsResponse[Any]:
        event = app.current_event
        status, body = _answer(item_id, event.decoded_body, event.headers.get("Idempotency-Key"))
        response = PowertoolsResponse(
            status_code=status + 1, content_type="application/json", body=body
        )
        response.headers["Retry-After"] = "5"
        return response

    @app.get("/items/<item_id>/text")
    def text(item_id: str) -> PowertoolsResponse[Any]:
        return PowertoolsResponse(status_code=200, content_type="text/plain", body=f"[{item_id}]")

    @app.exception_handler(ValueError)
    def refused(error: ValueError) -> PowertoolsResponse[Any]:
        return PowertoolsResponse(
            status_code=400, content_type="application/json", body={"message": str(error)}
        )

    @app.not_found
    def nowhere(_error: Exception) -> PowertoolsResponse[Any]:
        return PowertoolsResponse(
            status_code=404, content_type="application/json", body={"message": "no such route"}
        )

    return app


def _ours() -> routing.Router:
    router = routing.Router(serializer=dumps)

    @router.get("/items/<item_id>")
    def read(item_id: str) -> routing.Response:
        status, body = _answer(item_id, None, None)
        return routing.Response(status_code=status, body=body)

    @router.post("/items/<item_id>/exports")
    def export(item_id: str) -> routing.Response:
        event = router.current_event
        status, body = _answer(item_id, event.decoded_body, event.header("Idempotency-Key"))
        return routing.Response(status_code=status + 1, body=body, headers={"Retry-After": "5"})

    @router.get("/items/<item_id>/text")
    def text(item_id: str) -> routing.Response:
        """A string body goes out as it is, not serialized (as JSON it would gain quotes)."""
        return routing.Response(status_code=200, body=f"[{item_id}]", content_type="text/plain")

    @router.exception_handler(ValueError)
    def refused(error: ValueError) -> routing.Response:
        return routing.Response(status_code=400, body={"message": str(error)})

    @router.not_found
    def nowhere(_error: Exception) -> routing.Response:
        return routing.Response(status_code=404, body={"message": "no such route"})

    return router


POWERTOOLS, OURS = _powertools(), _ours()

_SEGMENT = st.text(
    st.sampled_from([*"azAZ09-._~()'!*:@,;=+&$%<> []{}|^\\\"#?/é\n", "\N{SNOWMAN}"]), max_size=8
)
_PREFIXES = st.sampled_from(["refused", "unmapped", "", "42"])


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    stage = draw(st.sampled_from(["$default", "prod", "v1", ""]))
    item_id = draw(_PREFIXES) + draw(_SEGMENT)
    tail = draw(st.sampled_from(["", "/exports", "/exports/", "/text", "/other", "/"]))
    path = draw(st.sampled_from(["/items/", "/item/", "/items", "/"])) + item_id + tail
    if stage != "$default" and draw(st.booleans()):
        path = f"/{stage}{path}"
    body = draw(st.one_of(st.none(), st.text(max_size=20)))
    encoded = draw(st.booleans())
    if encoded and body is not None:
        body = base64.b64encode(body.encode()).decode()
    header = draw(st.sampled_from(["Idempotency-Key", "idempotency-key", "IDEMPOTENCY-KEY", "x"]))
    return {
        "version": "2.0",
        "rawPath": path,
        "headers": {header: draw(st.text(max_size=5)), "accept": "application/json"},
        "requestContext": {
            "requestId": "request-1",
            "stage": stage,
            "http": {"method": draw(st.sampled_from(["GET", "POST", "get", "post", "PUT"]))},
        },
        "body": body,
        "isBase64Encoded": encoded,
    }


def _outcome(resolve: Any, event: dict[str, Any]) -> object:
    try:
        return resolve(json.loads(json.dumps(event)))
    except Exception as error:  # noqa: BLE001 - the outcome compared may be an exception
        return (type(error), str(error))


NO_SUCH_ROUTE = {
    "statusCode": 404,
    "body": '{"message":"no such route"}',
    "isBase64Encoded": False,
    "headers": {"Content-Type": "application/json"},
    "cookies": [],
}


def _as_powertools_should(event: dict[str, Any]) -> object:
    """Powertools' answer where it routes right; where it does not, what it should answer."""
    stage = event["requestContext"]["stage"]
    path = event["rawPath"]
    if stage not in ("$default", "") and (path == f"/{stage}" or path.startswith(f"/{stage}/")):
        path = path[len(f"/{stage}") :]
    else:  # Powertools would cut the stage's length off a path that does not start with it
        event = {**event, "requestContext": {**event["requestContext"], "stage": "$default"}}
    if path.endswith("\n"):  # Powertools' ^...$ matches before a final newline
        return NO_SUCH_ROUTE
    return _outcome(lambda copy: POWERTOOLS.resolve(copy, None), event)


@settings(max_examples=400, derandomize=True, deadline=None)
@given(events())
def test_every_event_gets_the_response_powertools_gives(event: dict[str, Any]) -> None:
    assert _outcome(OURS.resolve, event) == _as_powertools_should(event)


def _get(path: str, stage: str = "$default") -> dict[str, Any]:
    return {
        "rawPath": path,
        "requestContext": {"requestId": "r", "stage": stage, "http": {"method": "GET"}},
    }


@pytest.mark.parametrize(
    ("path", "stage"),
    [("/items/42\n", "$default"), ("/items/42/text\n", "$default"), ("/prod/items/42\n", "prod")],
)
def test_a_path_with_a_final_newline_is_no_route(path: str, stage: str) -> None:
    """Powertools routes ``/items/42\\n`` to item 42 (``$`` matches before a final newline)."""
    assert OURS.resolve(_get(path, stage)) == NO_SUCH_ROUTE
    assert POWERTOOLS.resolve(_get(path, stage), None)["statusCode"] == 200


@pytest.mark.parametrize(
    ("path", "stage"),
    [
        ("/prod/items/42", "prod"),  # the API's own endpoint, a named stage
        ("/items/42", "prod"),  # a custom domain's API mapping: no stage in the path
        ("/items/42", "items"),  # a stage named like the path's first segment: /items is cut
        ("/$default/items/42", "$default"),  # the default stage is never in the path
    ],
)
def test_the_stage_is_cut_only_where_the_path_starts_with_it(path: str, stage: str) -> None:
    answer = OURS.resolve(_get(path, stage))
    expected = 404 if stage in ("items", "$default") else 200
    assert answer["statusCode"] == expected, answer
    if expected == 200:
        assert json.loads(answer["body"])["item_id"] == "42"


def test_a_stage_that_is_only_a_prefix_of_the_first_segment_stays_in_the_path() -> None:
    """Stage ``it``: ``/items/42`` does not start with ``/it/``; Powertools routes ``ems/42``."""
    assert OURS.resolve(_get("/items/42", "it"))["statusCode"] == 200
    assert POWERTOOLS.resolve(_get("/items/42", "it"), None)["statusCode"] == 404


@pytest.mark.parametrize("body", ["e30=\ud800", "e30=\u00e9", "\N{SNOWMAN}"])
def test_a_base64_body_with_a_character_base64_has_not_is_refused(body: str) -> None:
    """Powertools encodes it to UTF-8 (a lone surrogate raises there) and decodes what is left."""
    event = {**_get("/items/42/exports"), "body": body, "isBase64Encoded": True}
    event["requestContext"]["http"]["method"] = "POST"

    @OURS.exception_handler(binascii.Error)
    def undecodable(error: binascii.Error) -> routing.Response:
        return routing.Response(status_code=400, body={"message": str(error)})

    try:
        answer = OURS.resolve(event)
    finally:
        del OURS._error_handlers[binascii.Error]
    assert answer["statusCode"] == 400
    assert json.loads(answer["body"]) == {"message": "a base64 body holds only ASCII characters"}


@pytest.mark.parametrize(
    ("path", "status"),
    [("/items/42", 200), ("/items/refused-1", 400), ("/items/a/b", 404), ("/nowhere", 404)],
)
def test_a_few_answers_spelled_out(path: str, status: int) -> None:
    event = {
        "rawPath": path,
        "requestContext": {"requestId": "r", "stage": "$default", "http": {"method": "GET"}},
    }
    response = OURS.resolve(event)
    assert response["statusCode"] == status
    assert response["headers"] == {"Content-Type": "application/json"}
    assert response["cookies"] == []
    assert response["isBase64Encoded"] is False


def test_a_text_body_goes_out_unserialized() -> None:
    event = {
        "rawPath": "/items/42/text",
        "requestContext": {"requestId": "r", "stage": "$default", "http": {"method": "GET"}},
    }
    response = OURS.resolve(event)
    assert (response["body"], response["headers"]) == ("[42]", {"Content-Type": "text/plain"})


def test_a_route_s_exception_without_a_handler_propagates() -> None:
    event = {
        "rawPath": "/items/unmapped",
        "requestContext": {"requestId": "r", "stage": "$default", "http": {"method": "GET"}},
    }
    with pytest.raises(UnmappedError):
        OURS.resolve(event)
    with pytest.raises(RuntimeError, match="no request is being routed"):
        _ = OURS.current_event


def test_an_event_without_a_stage_is_routed_as_the_default_stage() -> None:
    """Where the two differ on purpose: Powertools fails on it (API Gateway always sends one)."""
    context = {"requestId": "r", "http": {"method": "GET"}}
    event = {"rawPath": "/items/42", "requestContext": context}
    assert OURS.resolve(event)["statusCode"] == 200
    with pytest.raises(KeyError):
        POWERTOOLS.resolve(event, None)
