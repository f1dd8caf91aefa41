"""The local API's rules, without a server: routes, the authorizer's checks, payload 2.0 mapping.

tests/e2e/test_local_api.py drives them through HTTP; here each rule's edges, where a clock can be
moved and a template written in a few lines.
"""

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tools.emulator import http_api, http_payload
from tools.emulator.invoke_inputs import InputError
from tools.emulator.jwt_authorizer import DeniedError, JwtVerifier, flattened, token_scopes
from tools.emulator.local_issuer import AUDIENCE, LocalIssuer

NOW = 1_800_000_000.0


def _template(events: dict[str, dict[str, Any]], auth: dict[str, Any] | None = None) -> Any:
    return {
        "Resources": {
            "Api": {"Type": "AWS::Serverless::HttpApi", "Properties": {"Auth": auth or {}}},
            **{
                name: {
                    "Type": "AWS::Serverless::Function",
                    "Properties": {
                        "Events": {
                            "E": {"Type": "HttpApi", "Properties": {"ApiId": {"Ref": "Api"}, **e}}
                        }
                    },
                }
                for name, e in events.items()
            },
        }
    }


JWT_AUTH = {
    "DefaultAuthorizer": "Jwt",
    "Authorizers": {
        "Jwt": {
            "IdentitySource": "$request.header.X-Token",
            "JwtConfiguration": {"issuer": {"Ref": "Issuer"}, "audience": ["a"]},
            "AuthorizationScopes": ["default/scope"],
        }
    },
}


# --- Routes --------------------------------------------------------------------------------------


@pytest.fixture
def api() -> http_api.HttpApi:
    return http_api.the_api(
        _template(
            {
                "Literal": {"Method": "GET", "Path": "/items/special"},
                "Variable": {"Method": "GET", "Path": "/items/{id}"},
                "AnyVariable": {"Method": "ANY", "Path": "/items/{id}"},
                "Greedy": {"Method": "GET", "Path": "/items/{rest+}"},
                "Default": {},
            }
        )
    )


@pytest.mark.parametrize(
    ("method", "path", "function", "parameters"),
    [
        ("GET", "/items/special", "Literal", {}),
        ("GET", "/items/42", "Variable", {"id": "42"}),
        ("POST", "/items/42", "AnyVariable", {"id": "42"}),
        ("GET", "/items/a%2Fb", "Variable", {"id": "a/b"}),
        ("GET", "/items/4/2", "Greedy", {"rest": "4/2"}),
        ("GET", "/other", "Default", {}),
        ("DELETE", "/items/4/2", "Default", {}),
    ],
)
def test_the_most_specific_route_wins(
    api: http_api.HttpApi, method: str, path: str, function: str, parameters: dict[str, str]
) -> None:
    matched = api.match(method, path)
    assert matched is not None
    route, found = matched
    assert (route.function_id, found) == (function, parameters)


def test_without_a_default_route_nothing_else_matches() -> None:
    api = http_api.the_api(_template({"F": {"Method": "GET", "Path": "/items/{id}"}}))
    assert api.match("GET", "/items") is None
    assert api.match("GET", "/items/") is None
    assert api.match("POST", "/items/1") is None
    assert api.match("GET", "/items/1/more") is None


def test_routes_take_the_default_authorizer_its_scopes_or_their_own() -> None:
    api = http_api.the_api(
        _template(
            {
                "Defaulted": {"Method": "GET", "Path": "/a"},
                "Scoped": {"Method": "GET", "Path": "/b", "Auth": {"AuthorizationScopes": ["b"]}},
                "Open": {"Method": "GET", "Path": "/c", "Auth": {"Authorizer": "NONE"}},
            },
            JWT_AUTH,
        )
    )
    routes = {route.function_id: route for route in api.routes}
    assert routes["Defaulted"].scopes == ("default/scope",)
    assert routes["Scoped"].scopes == ("b",)
    assert routes["Open"].authorizer is None
    assert routes["Defaulted"].authorizer is not None
    assert routes["Defaulted"].authorizer.header == "x-token"


@pytest.mark.parametrize(
    "auth",
    [
        {"DefaultAuthorizer": "L", "Authorizers": {"L": {"FunctionArn": "arn"}}},
        {"DefaultAuthorizer": "Missing", "Authorizers": {}},
    ],
)
def test_an_authorizer_the_local_api_cannot_enforce_is_refused(auth: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        http_api.the_api(_template({"F": {"Method": "GET", "Path": "/a"}}, auth))


# --- The JWT authorizer ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def issuer() -> LocalIssuer:
    return LocalIssuer(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def _verifier(issuer: LocalIssuer, audiences: tuple[str, ...] = (AUDIENCE,)) -> Any:
    public = issuer.private_key.public_key()
    return JwtVerifier("authorization", issuer.issuer, audiences, lambda _kid: public)


def _authorize(issuer: LocalIssuer, token: str, scopes: tuple[str, ...] = ()) -> Any:
    headers = {"authorization": f"Bearer {token}"}
    return _verifier(issuer).authorize(headers, scopes, NOW)


@pytest.mark.parametrize(
    ("claims", "allowed"),
    [
        ({"exp": int(NOW) + 1}, True),
        ({"exp": int(NOW)}, False),  # expired at this very second
        ({"iat": int(NOW) + 1}, False),
        ({"nbf": int(NOW) + 1}, False),
        ({"nbf": int(NOW)}, True),
        ({"exp": "tomorrow"}, False),
        ({"aud": ["other", AUDIENCE]}, True),
        ({"aud": None, "client_id": AUDIENCE}, True),
        ({"aud": "other", "client_id": AUDIENCE}, False),  # aud wins when present
        ({"aud": None, "client_id": None}, False),
        ({"iss": None}, False),
    ],
)
def test_the_tokens_claims_are_checked_against_the_clock_and_the_audience(
    issuer: LocalIssuer, claims: dict[str, Any], allowed: bool
) -> None:
    token = issuer.token(["s"], now=NOW - 10, **claims)
    if allowed:
        assert _authorize(issuer, token)["jwt"]["claims"]["sub"] == "local-client"
    else:
        with pytest.raises(DeniedError) as denied:
            _authorize(issuer, token)
        assert (denied.value.status, denied.value.message) == (401, "Unauthorized")


def test_one_of_the_routes_scopes_is_enough_and_none_is_403(issuer: LocalIssuer) -> None:
    token = issuer.token(["b", "c"], now=NOW - 10)
    assert _authorize(issuer, token, ("a", "b"))["jwt"]["scopes"] == ["b", "c"]
    with pytest.raises(DeniedError) as denied:
        _authorize(issuer, token, ("a",))
    assert (denied.value.status, denied.value.message) == (403, "Forbidden")


@pytest.mark.parametrize(
    ("claims", "scopes"),
    [
        ({"scope": "a b"}, ["a", "b"]),
        ({"scp": ["a"]}, ["a"]),
        ({"scp": "a b"}, ["a", "b"]),
        ({}, []),
    ],
)
def test_scopes_come_from_scope_or_scp(claims: dict[str, Any], scopes: list[str]) -> None:
    assert token_scopes(claims) == scopes


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("s", "s"),
        (12, "12"),
        (1.5, "1.5"),
        (True, "true"),
        (["a", "b"], "[a b]"),
        ({"k": 1}, '{"k":1}'),
    ],
)
def test_claims_reach_the_function_as_strings(value: Any, text: str) -> None:
    assert flattened(value) == text


# --- Payload 2.0 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "text"),
    [
        ("text/csv", True),
        ("APPLICATION/JSON", True),
        ("application/problem+json", False),
        ("multipart/form-data; boundary=x", False),
        ("", False),
        (None, False),
    ],
)
def test_only_text_types_arrive_as_text(content_type: str | None, text: bool) -> None:
    assert http_payload.is_text(content_type) is text


@pytest.mark.parametrize(
    "response",
    [
        {"statusCode": "200"},
        {"statusCode": True},
        {"statusCode": 99},
        {"statusCode": 600},
        {"statusCode": 200, "headers": ["a"]},
        {"statusCode": 200, "headers": {"a": {"nested": 1}}},
        {"statusCode": 200, "cookies": "a=1"},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "isBase64Encoded": "yes", "body": ""},
        {"statusCode": 200, "isBase64Encoded": True, "body": "not base64!"},
    ],
)
def test_a_response_api_gateway_cannot_map_is_refused(response: dict[str, Any]) -> None:
    with pytest.raises(http_payload.UnmappableResponseError):
        http_payload.map_response(response)


@pytest.mark.parametrize(
    ("response", "body"),
    [({"a": 1}, b'{"a": 1}'), ([1, 2], b"[1, 2]"), ("text", b"text"), (None, b"null"), (3, b"3")],
)
def test_anything_without_a_status_code_is_a_200_json_body(response: Any, body: bytes) -> None:
    mapped = http_payload.map_response(response)
    assert (mapped.status, mapped.body) == (200, body)
    assert mapped.headers == [("Content-Type", "application/json")]


def test_a_full_response_is_mapped() -> None:
    mapped = http_payload.map_response(
        {
            "statusCode": 204,
            "headers": {"X-A": "1", "X-Count": 2},
            "multiValueHeaders": {"X-B": ["ignored"]},
            "cookies": ["a=1", "b=2"],
            "isBase64Encoded": True,
            "body": base64.b64encode(b"\x00\xff").decode(),
        }
    )
    assert mapped.status == 204
    assert mapped.headers == [
        ("X-A", "1"),
        ("X-Count", "2"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
    ]
    assert mapped.body == b"\x00\xff"


def test_request_ids_look_like_api_gateways() -> None:
    ids = {http_payload.request_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 15 and i.endswith("=") and i[:-1].isalnum() for i in ids)
