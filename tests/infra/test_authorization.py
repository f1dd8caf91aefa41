"""No route of the deployed API is reachable without a token: proven on the translated template.

What CloudFormation deploys is the SAM transform's output, one ``AWS::ApiGatewayV2::Api`` whose
OpenAPI body holds every route. For each way the stack can be configured (its own issuer, another
issuer, CORS on), every operation of that body must require the JWT authorizer with the scope its
function's event names; the authorizer must read the Authorization header and check an issuer and
an audience; nothing may add a route beside the body (an ``AWS::ApiGatewayV2::Route``, a quick
create ``$default``). The stack's own issuer must be able to grant exactly the scopes the routes
require, to a machine client the authorizer accepts.
"""

import json
import re
from typing import Any

import pytest

from tests.infra.test_scanners import PARAMETER_SETS as SCANNED
from tools.emulator import sam_template

EXTERNAL = SCANNED["external-issuer"]
CONFIGURATIONS = {
    "own-issuer": {},
    "own-issuer-prod": {"Stage": "prod"},
    "own-issuer-cors": {"CorsAllowOrigins": "https://app.example.com"},
    "external-issuer": EXTERNAL,
}
ROUTE_SCOPES = {
    ("get", "/items/{item_id}"): ["items/read"],
    ("post", "/items/{item_id}/exports"): ["items/export"],
}
"""What each route requires: the contract README "Authentication" documents."""
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture(scope="module", params=CONFIGURATIONS, ids=list(CONFIGURATIONS))
def translated(request: pytest.FixtureRequest, template: dict[str, Any]) -> dict[str, Any]:
    return sam_template.translate(template, CONFIGURATIONS[request.param])


def _api(translated: dict[str, Any]) -> dict[str, Any]:
    apis = {k: r for k, r in translated["Resources"].items() if r["Type"].startswith("AWS::ApiG")}
    assert set(apis) == {"ItemsApi", "ItemsApiApiGatewayDefaultStage"}, "no route beside the body"
    properties: dict[str, Any] = apis["ItemsApi"]["Properties"]
    assert not {"Target", "RouteKey", "BodyS3Location"} & set(properties)
    return properties


def _operations(body: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, operations in body["paths"].items()
        for method, operation in operations.items()
        if method in HTTP_METHODS or method == "x-amazon-apigateway-any-method"
    }


def test_every_route_needs_the_authorizer_and_its_scope(translated: dict[str, Any]) -> None:
    body = _api(translated)["Body"]
    operations = _operations(body)
    assert set(operations) == set(ROUTE_SCOPES), "no route the contract does not name"
    for route, operation in operations.items():
        assert operation["security"] == [{"ItemsJwt": ROUTE_SCOPES[route]}], route
    assert "security" not in body, "no API-wide requirement another route could fall back to"


def test_the_authorizer_checks_a_bearer_token_an_issuer_and_an_audience(
    translated: dict[str, Any],
) -> None:
    schemes = _api(translated)["Body"]["components"]["securitySchemes"]
    assert set(schemes) == {"ItemsJwt"}
    authorizer = schemes["ItemsJwt"]["x-amazon-apigateway-authorizer"]
    assert authorizer["type"] == "jwt"
    assert authorizer["identitySource"] == "$request.header.Authorization"
    configuration = authorizer["jwtConfiguration"]
    issuer, audience = configuration["issuer"], configuration["audience"]
    assert issuer == {
        "Fn::If": [
            "UseOwnIssuer",
            {"Fn::Sub": "https://cognito-idp.${AWS::Region}.${AWS::URLSuffix}/${ItemsUserPool}"},
            {"Ref": "JwtIssuer"},
        ]
    }
    assert audience == [
        {"Fn::If": ["UseOwnIssuer", {"Ref": "MachineClient"}, {"Ref": "JwtAudience"}]}
    ]


def test_an_external_issuer_needs_an_audience_and_https(template: dict[str, Any]) -> None:
    """Without an audience the API would accept any token that issuer signs, for any app."""
    rule = template["Rules"]["ExternalIssuerNeedsAudience"]
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "JwtIssuer"}, ""]}]}
    assert rule["Assertions"][0]["Assert"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "JwtAudience"}, ""]}]
    }
    assert template["Parameters"]["JwtIssuer"]["AllowedPattern"] == "^(https://[^\\s]+)?$"


def test_cors_is_off_unless_origins_are_named(translated: dict[str, Any]) -> None:
    """Off: the whole x-amazon-apigateway-cors is NoValue. On: preflights are API Gateway's own,
    answered before the authorizer; still no OPTIONS route for a request to reach."""
    cors = _api(translated)["Body"]["x-amazon-apigateway-cors"]
    condition, enabled, disabled = cors["Fn::If"]
    assert (condition, disabled) == ("HasCors", {"Ref": "AWS::NoValue"})
    assert enabled["allowMethods"] == ["GET", "POST"]
    assert "authorization" in enabled["allowHeaders"]
    assert not enabled.get("allowCredentials")


def test_the_own_issuer_grants_the_route_scopes_to_a_machine_client(
    template: dict[str, Any],
) -> None:
    resources = template["Resources"]
    own = {k for k, r in resources.items() if r["Type"].startswith("AWS::Cognito::")}
    assert own == {"ItemsUserPool", "ItemsResourceServer", "ItemsUserPoolDomain", "MachineClient"}
    assert all(resources[k]["Condition"] == "UseOwnIssuer" for k in own)
    server = resources["ItemsResourceServer"]["Properties"]
    granted = {f"{server['Identifier']}/{scope['ScopeName']}" for scope in server["Scopes"]}
    required = {scope for scopes in ROUTE_SCOPES.values() for scope in scopes}
    assert granted == required
    client = resources["MachineClient"]["Properties"]
    assert client["AllowedOAuthFlows"] == ["client_credentials"]
    assert set(client["AllowedOAuthScopes"]) == required
    assert client["GenerateSecret"] is True
    assert client["ExplicitAuthFlows"] == ["ALLOW_REFRESH_TOKEN_AUTH"], "no user sign-in flow"
    pool = resources["ItemsUserPool"]["Properties"]
    assert pool["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": True}, "no sign-up"


def test_an_external_issuer_brings_none_of_the_stacks_own(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs["TokenEndpoint"]["Condition"] == "UseOwnIssuer"
    assert outputs["MachineClientId"]["Condition"] == "UseOwnIssuer"
    assert "Condition" not in outputs["TokenIssuer"]
    assert template["Conditions"]["UseOwnIssuer"] == {"Fn::Equals": [{"Ref": "JwtIssuer"}, ""]}


def test_the_lambda_permissions_admit_only_this_api(translated: dict[str, Any]) -> None:
    """The functions' only invoker besides IAM principals: API Gateway, for this API's routes.
    An event without claims can only come from an IAM principal (README "Authentication")."""
    permissions = [
        r["Properties"]
        for r in translated["Resources"].values()
        if r["Type"] == "AWS::Lambda::Permission" and r["Properties"]["Principal"].startswith("api")
    ]
    assert len(permissions) == len(ROUTE_SCOPES)
    for permission in permissions:
        assert permission["Principal"] == "apigateway.amazonaws.com"
        arn, variables = permission["SourceArn"]["Fn::Sub"]
        assert arn.startswith("arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}")
        assert variables["__ApiId__"] == {"Ref": "ItemsApi"}


def test_the_access_log_names_the_caller_never_the_token(template: dict[str, Any]) -> None:
    """Who called: the token's subject and client, as API Gateway verified them; why a request
    was refused: the authorizer's error. Never a header (the token is one), body or query."""
    log_format = template["Resources"]["ItemsApi"]["Properties"]["AccessLogSettings"]["Format"]
    fields = json.loads(log_format)
    assert fields["subject"] == "$context.authorizer.claims.sub"
    assert fields["clientId"] == "$context.authorizer.claims.client_id"
    assert fields["authorizerError"] == "$context.authorizer.error"
    assert not [
        v
        for v in fields.values()
        if re.search(r"header|body|querystring|claims\.(?!sub$|client_id$)", v, re.I)
    ]
