"""template.yaml, the code and events/ agree, and CloudFormation would accept what SAM produces."""

import ast
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint

from app.sessions import worst_case_call_seconds
from tests.conftest import EVENTS, EXPECTED, REGION
from tools.emulator import sam_template

SRC = Path(__file__).resolve().parents[2] / "src"
LAMBDA_PROVIDED = {
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "_HANDLER",  # the function's Handler, as Lambda sets it: app.cold_start reads it
}
PARAMETER_SETS = {
    "dev": {},
    "prod": {"Stage": "prod", "LogRetentionDays": "365", "EnableSnapStart": "true"},
    "cross-account": {
        "WriterRoleArn": "arn:aws:iam::210987654321:role/exports-writer",
        "WriterExternalId": "shared-secret",
    },
    "role-chain": {
        "WriterViaRoleArn": "arn:aws:iam::111122223333:role/hub",
        "WriterRoleArn": "arn:aws:iam::210987654321:role/exports-writer",
    },
    "external-issuer-cors": {
        "JwtIssuer": "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0",
        "JwtAudience": "api://items",
        "CorsAllowOrigins": "https://app.example.com",
    },
}


def _errors(template_text: str) -> list[str]:
    matches = lint(template_text, regions=[REGION], config=ManualArgs(regions=[REGION]))
    return [f"{m.rule.id} {m.message} ({m.linenumber})" for m in matches]


@pytest.fixture(scope="module")
def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return sam_template.functions(template)


def test_template_is_lint_clean() -> None:
    assert _errors(sam_template.TEMPLATE.read_text()) == []


@pytest.mark.parametrize("parameters", PARAMETER_SETS.values(), ids=PARAMETER_SETS.keys())
def test_translated_template_is_lint_clean(
    template: dict[str, Any], parameters: dict[str, str]
) -> None:
    """Circular dependencies and other deploy-time failures only show after the SAM transform."""
    translated = sam_template.translate(template, parameters)
    assert _errors(json.dumps(translated)) == []


def test_every_handler_resolves_to_a_callable(functions: dict[str, dict[str, Any]]) -> None:
    for function_id, resource in functions.items():
        module_name, _, attribute = resource["Properties"]["Handler"].rpartition(".")
        assert callable(getattr(importlib.import_module(module_name), attribute)), function_id


def test_every_function_has_events_and_a_default(functions: dict[str, dict[str, Any]]) -> None:
    folders = {path.name for path in EVENTS.iterdir() if path.is_dir()}
    assert folders == set(functions)
    for function_id in functions:
        assert (EVENTS / function_id / f"{EXPECTED['defaults'][function_id]}.json").is_file()


def _environment(translated: dict[str, Any], function_id: str) -> dict[str, Any]:
    properties = translated["Resources"][function_id]["Properties"]
    return properties.get("Environment", {}).get("Variables", {})  # type: ignore[no-any-return]


NO_VALUE = {"Ref": "AWS::NoValue"}


def _placeholder(value: Any, parameter_defaults: dict[str, str]) -> str | None:
    """A literal as is, a parameter reference as its default, anything else as a stand-in.

    ``None`` for a variable that only exists when an optional parameter is set (an ``Fn::If``
    with an ``AWS::NoValue`` branch): with the defaults, the function does not get it.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in parameter_defaults:
        return parameter_defaults[value["Ref"]]
    if isinstance(value, dict) and NO_VALUE in value.get("Fn::If", []):
        return None
    return "resolved-by-cloudformation"


@pytest.mark.parametrize("function_id", sorted(sam_template.functions(sam_template.load())))
def test_init_succeeds_with_exactly_the_template_environment(
    template: dict[str, Any], function_id: str
) -> None:
    """Import the handler in a clean process that has only what the template and Lambda set."""
    translated = sam_template.translate(template)
    declared = _environment(translated, function_id)
    handler = translated["Resources"][function_id]["Properties"]["Handler"]
    defaults = {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}
    placeholders = {name: _placeholder(value, defaults) for name, value in declared.items()}
    environment = {name: value for name, value in placeholders.items() if value is not None}
    environment |= {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(SRC),
        "AWS_REGION": REGION,
        "AWS_LAMBDA_FUNCTION_NAME": f"items-dev-{function_id}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    module_name, _, attribute = handler.rpartition(".")
    probe = f"import {module_name} as m; assert callable(m.{attribute})"
    result = subprocess.run(
        [sys.executable, "-c", probe], env=environment, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def _variables_read_by_code() -> set[str]:
    """Names passed to os.environ.get/_require anywhere in src/."""
    names: set[str] = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and ast.unparse(node.func) in {"os.environ.get", "_require", "os.getenv"}
            ):
                names.add(node.args[0].value)
    return names


def test_every_variable_the_code_reads_is_set_by_the_template(template: dict[str, Any]) -> None:
    translated = sam_template.translate(template)
    declared = {
        name
        for function_id in sam_template.functions(template)
        for name in _environment(translated, function_id)
    }
    assert _variables_read_by_code() - LAMBDA_PROVIDED <= declared


def test_worst_case_call_fits_in_every_function_timeout(template: dict[str, Any]) -> None:
    translated = sam_template.translate(template)
    for function_id in sam_template.functions(template):
        timeout = translated["Resources"][function_id]["Properties"]["Timeout"]
        assert worst_case_call_seconds() < timeout, function_id


def test_api_events_match_the_routes_the_template_declares(
    functions: dict[str, dict[str, Any]],
) -> None:
    for function_id, resource in functions.items():
        routes = {
            f"{event['Properties']['Method']} {event['Properties']['Path']}"
            for event in resource["Properties"].get("Events", {}).values()
            if event["Type"] == "HttpApi"
        }
        for path in (EVENTS / function_id).glob("*.json"):
            event = json.loads(path.read_text())
            if "routeKey" in event:
                assert event["routeKey"] in routes, path


def test_queue_outlives_retries_and_reports_partial_failures(template: dict[str, Any]) -> None:
    translated = sam_template.translate(template)
    queue = translated["Resources"]["ExportQueue"]["Properties"]
    function = translated["Resources"]["ExportQueueFunction"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 2
    mapping = translated["Resources"]["ExportQueueFunctionExportRequests"]["Properties"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_deployed_functions_never_get_an_endpoint_override(template: dict[str, Any]) -> None:
    """AWS_ENDPOINT_URL exists only for sam local invoke against make aws."""
    assert template["Parameters"]["LocalEndpointUrl"]["Default"] == ""
    assert "LocalEndpointUrl" not in (sam_template.ROOT / "samconfig.toml").read_text()
    translated = sam_template.translate(template)
    for function_id in sam_template.functions(template):
        variable = _environment(translated, function_id)["AWS_ENDPOINT_URL"]
        assert variable == {"Fn::If": ["HasLocalEndpoint", {"Ref": "LocalEndpointUrl"}, NO_VALUE]}


def test_table_export_keeps_time_to_scan_after_its_reserve(template: dict[str, Any]) -> None:
    """A reserve as long as the timeout would queue continuation after continuation, forever."""
    translated = sam_template.translate(template)
    properties = translated["Resources"]["ExportTableFunction"]["Properties"]
    reserve = float(properties["Environment"]["Variables"]["TABLE_EXPORT_RESERVE_SECONDS"])
    assert properties["Timeout"] >= 4 * reserve


def _references(node: Any) -> set[str]:
    """Every name a ``Ref`` or an ``Fn::Sub`` inside ``node`` points at."""
    if isinstance(node, list):
        return set().union(*map(_references, node))
    if not isinstance(node, dict):
        return set()
    found = {node["Ref"]} if isinstance(node.get("Ref"), str) else set()
    substituted = node.get("Fn::Sub")
    text = substituted[0] if isinstance(substituted, list) else substituted
    if isinstance(text, str):
        found |= {name.split(".")[0] for name in re.findall(r"\$\{(?!!)([^}]+)\}", text)}
    return found.union(*map(_references, node.values()))


def test_no_echo_parameters_never_reach_a_readable_place(template: dict[str, Any]) -> None:
    """NoEcho hides a value from DescribeStacks; anyone who can read a function's configuration or
    the stack's outputs would see it there anyway. (The ExternalId is not NoEcho: AWS does not
    treat it as a secret, and the functions need it in their environment.)"""
    hidden = {name for name, spec in template["Parameters"].items() if spec.get("NoEcho")}
    translated = sam_template.translate(template, PARAMETER_SETS["cross-account"])
    readable = [translated.get("Outputs", {})] + [
        _environment(translated, logical_id)
        for logical_id, resource in translated["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    ]
    assert _references(readable)  # the walk finds references at all
    assert not hidden & _references(readable)
