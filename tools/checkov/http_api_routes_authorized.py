"""checkov check CKV_ITEMS_1: every route of an HTTP API needs a token and a scope.

checkov's own check for API Gateway v2 routes (CKV_AWS_309) exists for Terraform only, and SAM
does not emit ``AWS::ApiGatewayV2::Route`` resources anyway: an ``AWS::Serverless::HttpApi``
becomes one ``AWS::ApiGatewayV2::Api`` whose OpenAPI ``Body`` holds the routes. This check reads
that body (and any explicit Route resources): each operation must require a JWT authorizer the
body defines, with at least one scope. ``make scan`` and tests/infra/test_scanners.py load it with
``--external-checks-dir tools/checkov``; it runs in checkov's own venv.
"""

from __future__ import annotations

from typing import Any

from checkov.cloudformation.checks.resource.base_resource_check import BaseResourceCheck
from checkov.common.models.enums import CheckCategories, CheckResult

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
ANY_METHOD = "x-amazon-apigateway-any-method"


def _keys(node: dict[str, Any]) -> dict[str, Any]:
    """``node`` without the ``__startline__``-style keys checkov's parser adds to every object."""
    return {key: value for key, value in node.items() if not key.startswith("__")}


def _jwt_authorizers(body: dict[str, Any]) -> set[str]:
    schemes = body.get("components", {}).get("securitySchemes", {})
    if not isinstance(schemes, dict):
        return set()
    return {
        name
        for name, scheme in _keys(schemes).items()
        if isinstance(scheme, dict)
        and isinstance(scheme.get("x-amazon-apigateway-authorizer"), dict)
        and scheme["x-amazon-apigateway-authorizer"].get("type") == "jwt"
    }


def _operation_is_authorized(operation: Any, authorizers: set[str]) -> bool:  # noqa: ANN401
    requirements = operation.get("security") if isinstance(operation, dict) else None
    if not isinstance(requirements, list) or not requirements:
        return False
    # Any one requirement admits a request: every one of them must need a token and a scope.
    return all(
        isinstance(requirement, dict)
        and _keys(requirement)
        and all(
            name in authorizers and isinstance(scopes, list) and scopes
            for name, scopes in _keys(requirement).items()
        )
        for requirement in requirements
    )


def unauthorized_routes(body: dict[str, Any]) -> list[str]:
    """The ``METHOD /path`` operations of an OpenAPI body that a request without a token reaches."""
    authorizers = _jwt_authorizers(body)
    paths = body.get("paths", {})
    found = []
    for path, operations in paths.items() if isinstance(paths, dict) else []:
        if not isinstance(operations, dict):
            continue
        for method, operation in operations.items():
            routed = method in METHODS or method == ANY_METHOD
            if routed and not _operation_is_authorized(operation, authorizers):
                found.append(f"{method.upper()} {path}")
    return found


class HttpApiRoutesAuthorized(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure every HTTP API route requires a JWT authorizer and a scope",
            id="CKV_ITEMS_1",
            categories=(CheckCategories.IAM,),
            supported_resources=("AWS::ApiGatewayV2::Api", "AWS::ApiGatewayV2::Route"),
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        properties = conf.get("Properties", {})
        if not isinstance(properties, dict):
            return CheckResult.UNKNOWN
        if conf.get("Type") == "AWS::ApiGatewayV2::Route":
            self.evaluated_keys = ["Properties/AuthorizationType", "Properties/AuthorizationScopes"]
            authorized = properties.get("AuthorizationType") == "JWT" and properties.get(
                "AuthorizationScopes"
            )
            return CheckResult.PASSED if authorized else CheckResult.FAILED
        if "Target" in properties:  # "quick create": a $default route that no authorizer guards
            self.evaluated_keys = ["Properties/Target"]
            return CheckResult.FAILED
        body = properties.get("Body")
        if not isinstance(body, dict):
            # No inline OpenAPI: its routes, if any, are Route resources, checked on their own.
            return CheckResult.UNKNOWN if "BodyS3Location" in properties else CheckResult.PASSED
        self.evaluated_keys = ["Properties/Body/paths"]
        return CheckResult.FAILED if unauthorized_routes(body) else CheckResult.PASSED


check = HttpApiRoutesAuthorized()
