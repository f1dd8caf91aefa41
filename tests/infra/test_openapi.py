"""api/openapi.yaml is the API's contract: kept equal to template.yaml and to the handlers.

Routes, path parameters and scopes come from the template (as ``make api`` reads them); the
statuses from the handlers' code (every ``HTTPStatus`` and ``status_code=`` they answer with),
events/expected.json and API Gateway's own answers. A route, scope or status added on one side
only fails here. tests/e2e/test_api_contract.py checks the bodies against a running API.
"""

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate

from tests.e2e.local_api import ROUTE_SCOPES
from tools.emulator import http_api, sam_template

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = ROOT / "api" / "openapi.yaml"
HANDLERS = ROOT / "src" / "app" / "handlers"
GATEWAY_STATUSES = {401, 403, 413, 500}
"""What API Gateway answers by itself: no or a bad token, a missing scope, a payload over its
quota, a function that failed, timed out or answered something it cannot map."""
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(OPENAPI.read_text())
    return loaded


@pytest.fixture(scope="module")
def api() -> http_api.HttpApi:
    return http_api.the_api(sam_template.load())


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def test_the_document_is_valid_openapi_3(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.")


def test_it_documents_exactly_the_templates_routes(
    document: dict[str, Any], api: http_api.HttpApi
) -> None:
    assert set(_operations(document)) == {(route.method, route.path) for route in api.routes}


def test_path_parameters_are_the_routes_variables(
    document: dict[str, Any], api: http_api.HttpApi
) -> None:
    parameters = document["components"]["parameters"]
    for route in api.routes:
        operation = _operations(document)[(route.method, route.path)]
        resolved = [
            parameters[p["$ref"].rsplit("/", 1)[-1]] if "$ref" in p else p
            for p in operation.get("parameters", [])
        ]
        in_path = {p["name"] for p in resolved if p["in"] == "path"}
        assert in_path == set(re.findall(r"\{([^}+]+)\+?\}", route.path)), route.key


def test_each_operation_requires_the_scopes_its_route_does(
    document: dict[str, Any], api: http_api.HttpApi
) -> None:
    """Until template.yaml declares its authorizer, the scopes are the ones its routes are
    served with in tests/e2e (ROUTE_SCOPES); once it does, the template's own."""
    for route in api.routes:
        operation = _operations(document)[(route.method, route.path)]
        required = {s for requirement in operation["security"] for s in requirement["ItemsJwt"]}
        expected = (
            set(route.scopes) if route.authorizer else {ROUTE_SCOPES[(route.method, route.path)]}
        )
        assert required == expected, route.key
    declared = document["components"]["securitySchemes"]["ItemsJwt"]["flows"]
    assert set(declared["clientCredentials"]["scopes"]) == set(ROUTE_SCOPES.values())


def _statuses_in(module: Path) -> set[int]:
    """Every status ``module`` answers with: ``HTTPStatus.X`` and ``status_code=<int>``."""
    from http import HTTPStatus

    statuses: set[int] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "HTTPStatus"
        ):
            statuses.add(HTTPStatus[node.attr].value)
        if (
            isinstance(node, ast.keyword)
            and node.arg == "status_code"
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, int)
        ):
            statuses.add(node.value.value)
    return statuses


def _handler_module(function_id: str) -> Path:
    handler = sam_template.functions(sam_template.load())[function_id]["Properties"]["Handler"]
    module = handler.rsplit(".", 1)[0]
    return ROOT / "src" / Path(*module.split(".")).with_suffix(".py")


def test_every_status_a_handler_gives_is_documented_and_nothing_else(
    document: dict[str, Any], api: http_api.HttpApi
) -> None:
    shared = _statuses_in(HANDLERS / "http.py")
    expected = json.loads((ROOT / "events" / "expected.json").read_text())["responses"]
    for route in api.routes:
        documented = {
            int(s) for s in _operations(document)[(route.method, route.path)]["responses"]
        }
        own = _statuses_in(_handler_module(route.function_id))
        seen = {
            r["statusCode"]
            for name, r in expected.items()
            if name.startswith(f"{route.function_id}/") and "statusCode" in r
        }
        assert own | seen | GATEWAY_STATUSES <= documented, route.key
        assert documented <= own | shared | GATEWAY_STATUSES, route.key


def test_error_answers_are_a_message_object(document: dict[str, Any]) -> None:
    """The handlers' ``error_response`` and API Gateway's own answers: ``{"message": ...}``."""
    for (method, path), operation in _operations(document).items():
        for status, answer in operation["responses"].items():
            if int(status) < 400:
                continue
            reference = answer.get("$ref", "")
            response = (
                document["components"]["responses"][reference.rsplit("/", 1)[-1]]
                if reference
                else answer
            )
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Message"}, (method, path, status)
