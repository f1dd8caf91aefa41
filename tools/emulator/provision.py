"""Provision template.yaml's resources in the embedded AWS, and read each function's settings back.

One CloudFormation stack per template (and stack name): created on first use, reused while the
template and parameters are unchanged, updated when they change. Physical names come from the
stack only, so nothing here knows what the template calls its table or bucket.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tools.emulator import local_template, sam_template
from tools.emulator.embedded_aws import EmbeddedAws
from tools.emulator.invoke_inputs import DEFAULT_STACK_NAME, InputError
from tools.emulator.local_template import DirectResource, FromOutput, LocalTemplate

_CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
_WAIT_SECONDS = 60.0
_POLL_SECONDS = 0.1
_LAMBDA_DEFAULTS = {"Timeout": "3", "MemorySize": "128"}
"""What Lambda uses when a function does not say."""


class ProvisionError(InputError):
    """The template (or its parameters) cannot be provisioned; one line says why."""


@dataclass(frozen=True)
class Function:
    """One function as it would be deployed from this stack: everything the runner needs."""

    logical_id: str
    name: str
    handler: str
    runtime: str
    timeout_seconds: int
    memory_mb: int
    role_arn: str
    code_uri: Path
    environment: dict[str, str]
    log_format: str | None = None
    log_level: str | None = None
    log_group: str | None = None
    layers: bool = False


@dataclass(frozen=True)
class Deployment:
    """A provisioned stack: its physical resources and its functions' settings."""

    stack_name: str
    template_path: Path
    resources: dict[str, str]
    """Physical id by logical id (a table's name, a queue's URL, a role's name)."""
    resource_types: dict[str, str]
    functions: dict[str, Function]
    not_created: dict[str, str]
    warnings: tuple[str, ...] = ()
    created_directly: dict[str, str] = field(default_factory=dict)
    """Physical name by logical id of what the embedded AWS created through the service's own API
    because moto's CloudFormation cannot (alarms); also in ``resources``."""


Customize = Callable[[dict[str, Any]], None]
"""Changes the translated template before it is provisioned (tests remove a policy statement)."""


def function_ids(template_path: Path) -> list[str]:
    """The template's function logical ids, without translating or provisioning anything."""
    return sorted(sam_template.functions(_load(template_path)))


def _load(template_path: Path) -> dict[str, Any]:
    try:
        return sam_template.load(template_path)
    except OSError as error:
        raise ProvisionError(f"cannot read template {template_path}: {error.strerror}") from None
    except Exception as error:  # noqa: BLE001 - YAML and shape errors: report, do not trace
        raise ProvisionError(f"template {template_path}: {_one_line(error)}") from None


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _translate(template: dict[str, Any], parameters: dict[str, str], region: str) -> dict[str, Any]:
    declared = set(template.get("Parameters", {}))
    unknown = sorted(set(parameters) - declared)
    if unknown:
        raise ProvisionError(
            f"--parameter-overrides: the template has no parameter {', '.join(unknown)} "
            f"(it has: {', '.join(sorted(declared)) or 'none'})"
        )
    for name, value in parameters.items():
        _check_parameter(name, template["Parameters"][name], value)
    try:
        return sam_template.translate(template, parameters, region)
    except Exception as error:  # noqa: BLE001 - the SAM translator's many error types
        raise ProvisionError(
            f"the SAM transform rejects the template: {_one_line(error)}"
        ) from None


def _check_parameter(name: str, spec: dict[str, Any], value: str) -> None:
    """Reject what CloudFormation would (moto accepts anything), so a typo fails here too."""
    problem = None
    allowed = [str(v) for v in spec.get("AllowedValues", [])]
    if allowed and value not in allowed:
        problem = f"must be one of {', '.join(allowed)}"
    elif "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
        problem = f"must match {spec['AllowedPattern']}"
    elif spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            problem = "must be a number"
        else:
            if "MinValue" in spec and number < float(spec["MinValue"]):
                problem = f"must be at least {spec['MinValue']}"
            elif "MaxValue" in spec and number > float(spec["MaxValue"]):
                problem = f"must be at most {spec['MaxValue']}"
    elif "MinLength" in spec and len(value) < int(spec["MinLength"]):
        problem = f"must be at least {spec['MinLength']} characters"
    elif "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        problem = f"must be at most {spec['MaxLength']} characters"
    if problem:
        raise ProvisionError(f"--parameter-overrides: {name}={value!r} {problem}")


def _moto_types() -> set[str]:
    """Resource types moto's CloudFormation can create (its model registry, an internal API)."""
    from moto.cloudformation.parsing import NULL_MODELS, get_model_map

    return set(get_model_map()) | set(NULL_MODELS)


def _code_uri(template: dict[str, Any], logical_id: str, template_path: Path) -> Path:
    properties = template["Resources"][logical_id].get("Properties", {})
    code_uri = properties.get("CodeUri") or template.get("Globals", {}).get("Function", {}).get(
        "CodeUri"
    )
    if not isinstance(code_uri, str):
        raise ProvisionError(f"{logical_id} has no local CodeUri to run")
    return (template_path.parent / code_uri).resolve()


def _stack_parameters(template: dict[str, Any], overrides: dict[str, str]) -> list[dict[str, str]]:
    """Every parameter's value, spelled out: an update then never keeps an earlier override."""
    values = {
        name: overrides.get(name, local_template.literal(spec["Default"]))
        for name, spec in template.get("Parameters", {}).items()
        if name in overrides or "Default" in spec
    }
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(values.items())]


def _with_fingerprint(local: dict[str, Any], parameters: list[dict[str, str]]) -> str:
    """The body to provision, carrying a digest of the parameters it is provisioned with.

    The stack is reused while this body is unchanged: comparing bodies alone then also notices
    new parameter values, without reading back NoEcho ones.
    """
    digest = hashlib.sha256(json.dumps(parameters, sort_keys=True).encode()).hexdigest()
    marked = {**local, "Metadata": {**local.get("Metadata", {}), "LocalInvokeParameters": digest}}
    return json.dumps(marked, sort_keys=True)


def _wait(aws: EmbeddedAws, stack_name: str) -> dict[str, Any]:
    """The stack once it settles; a bounded poll (moto is synchronous, AWS is not)."""
    cloudformation = aws.client("cloudformation")
    deadline = time.monotonic() + _WAIT_SECONDS
    while True:
        stack: dict[str, Any] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        status = stack["StackStatus"]
        if status.endswith("_COMPLETE") and "ROLLBACK" not in status:
            return stack
        if status.endswith(("_FAILED", "ROLLBACK_COMPLETE")):
            events = cloudformation.describe_stack_events(StackName=stack_name)["StackEvents"]
            reasons = [
                e.get("ResourceStatusReason", "")
                for e in events
                if "FAILED" in e.get("ResourceStatus", "")
            ]
            raise ProvisionError(
                f"stack {stack_name} is {status}: {reasons[0] if reasons else 'no reason given'}"
            )
        if time.monotonic() > deadline:
            raise ProvisionError(f"stack {stack_name} still {status} after {_WAIT_SECONDS:.0f} s")
        time.sleep(_POLL_SECONDS)


def _create_or_update(
    aws: EmbeddedAws, stack_name: str, body: str, parameters: list[dict[str, str]]
) -> dict[str, Any]:
    cloudformation = aws.client("cloudformation")
    arguments = {
        "StackName": stack_name,
        "TemplateBody": body,
        "Parameters": parameters,
        "Capabilities": _CAPABILITIES,
    }
    try:
        existing = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    except ClientError:
        existing = None
    if existing is None or existing["StackStatus"] == "DELETE_COMPLETE":
        cloudformation.create_stack(**arguments)
    else:
        current = cloudformation.get_template(StackName=stack_name)["TemplateBody"]
        current_body = current if isinstance(current, str) else json.dumps(current, sort_keys=True)
        if current_body != body:
            cloudformation.update_stack(**arguments)
    return _wait(aws, stack_name)


def _resolve(value: local_template.Setting, outputs: dict[str, str]) -> str | None:
    if isinstance(value, FromOutput):
        return outputs.get(value.output_key)
    return value


def _function(
    settings: local_template.FunctionSettings,
    outputs: dict[str, str],
    stack_name: str,
    code_uri: Path,
) -> Function | None:
    """The function's resolved settings; None when its Condition keeps it out of the stack."""
    if settings.created_output and settings.created_output not in outputs:
        return None
    resolved = {name: _resolve(value, outputs) for name, value in settings.settings.items()}
    environment = {
        name: value
        for name, setting in settings.environment.items()
        if (value := _resolve(setting, outputs)) is not None
    }
    return Function(
        logical_id=settings.logical_id,
        name=resolved.get("FunctionName")
        or local_template.physical_function_name(stack_name, settings.logical_id),
        handler=resolved.get("Handler") or "",
        runtime=resolved.get("Runtime") or "",
        timeout_seconds=int(resolved.get("Timeout") or _LAMBDA_DEFAULTS["Timeout"]),
        memory_mb=int(resolved.get("MemorySize") or _LAMBDA_DEFAULTS["MemorySize"]),
        role_arn=resolved.get("Role") or "",
        code_uri=code_uri,
        environment=environment,
        log_format=resolved.get("LogFormat"),
        log_level=resolved.get("ApplicationLogLevel"),
        log_group=resolved.get("LogGroup"),
        layers=settings.layers,
    )


_ALARM_NUMBERS = {
    "Threshold": float,
    "Period": int,
    "EvaluationPeriods": int,
    "DatapointsToAlarm": int,
}
"""Alarm properties that come back from a stack output as text."""


def _filled(node: Any, outputs: dict[str, str]) -> Any:  # noqa: ANN401 - template JSON
    if isinstance(node, FromOutput):
        return outputs[node.output_key]
    if isinstance(node, list):
        return [_filled(member, outputs) for member in node]
    if isinstance(node, dict):
        return {key: _filled(value, outputs) for key, value in node.items()}
    return node


def _alarm_arguments(properties: dict[str, Any], name: str) -> dict[str, Any]:
    """PutMetricAlarm's parameters: CloudFormation's alarm properties carry the same names."""
    arguments = {**properties, "AlarmName": properties.get("AlarmName", name)}
    for key, kind in _ALARM_NUMBERS.items():
        if key in arguments:
            arguments[key] = kind(float(arguments[key]))
    for query in arguments.get("Metrics", []):
        if "MetricStat" in query:
            query["MetricStat"]["Period"] = int(float(query["MetricStat"]["Period"]))
    return arguments


def _create_directly(
    aws: EmbeddedAws, stack_name: str, direct: dict[str, DirectResource], outputs: dict[str, str]
) -> dict[str, str]:
    """Put the stack's alarms with CloudWatch's own API (and delete those it no longer has)."""
    cloudwatch = aws.client("cloudwatch")
    created = {}
    for logical_id, resource in direct.items():
        if resource.created_output and resource.created_output not in outputs:
            continue  # its Condition is false
        name = local_template.physical_function_name(stack_name, logical_id)
        cloudwatch.put_metric_alarm(**_alarm_arguments(_filled(resource.properties, outputs), name))
        created[logical_id] = name
    # Names are "<stack>-<LogicalId>-<digest of both>": an alarm of this stack names itself.
    pages = cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=stack_name[:20])
    stale = [
        name
        for page in pages
        for alarm in page["MetricAlarms"]
        if (name := alarm["AlarmName"]) not in created.values()
        and len(parts := name.split("-")) > 2
        and local_template.physical_function_name(stack_name, parts[-2]) == name
    ]
    if stale:
        cloudwatch.delete_alarms(AlarmNames=stale)
    return created


def deploy(
    aws: EmbeddedAws,
    template_path: Path = sam_template.TEMPLATE,
    parameters: dict[str, str] | None = None,
    stack_name: str = DEFAULT_STACK_NAME,
    customize: Customize | None = None,
) -> Deployment:
    """Provision the template's non-Lambda resources in ``aws`` and resolve its functions."""
    parameters = dict(parameters or {})
    template = _load(template_path)
    translated = _translate(template, parameters, aws.region)
    if customize:
        customize(translated)
    local: LocalTemplate = local_template.build(translated, stack_name, _moto_types())
    stack_parameters = _stack_parameters(template, parameters)
    body = _with_fingerprint(local.template, stack_parameters)
    try:
        stack = _create_or_update(aws, stack_name, body, stack_parameters)
        described = aws.client("cloudformation").describe_stack_resources(StackName=stack_name)
        outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])}
        created_directly = _create_directly(aws, stack_name, local.direct, outputs)
    except (ClientError, BotoCoreError) as error:
        raise ProvisionError(f"provisioning stack {stack_name}: {_one_line(error)}") from None
    functions = {
        logical_id: _function(
            settings, outputs, stack_name, _code_uri(template, logical_id, template_path)
        )
        for logical_id, settings in local.functions.items()
    }
    not_created = dict(local.not_created)
    for logical_id, function in functions.items():
        if function is None:
            not_created[logical_id] = "its Condition is false with these parameters"
    return Deployment(
        stack_name=stack_name,
        template_path=template_path,
        resources={
            r["LogicalResourceId"]: r["PhysicalResourceId"] for r in described["StackResources"]
        }
        | created_directly,
        resource_types={k: r["Type"] for k, r in translated["Resources"].items()},
        functions={k: f for k, f in functions.items() if f is not None},
        not_created=not_created,
        warnings=tuple(local.stand_ins),
        created_directly=created_directly,
    )
