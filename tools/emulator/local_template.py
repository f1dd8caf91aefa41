"""The copy of the translated template that the embedded AWS provisions, and what to read back.

The copy keeps every resource moto can create and the functions need (tables, buckets, queues,
roles) and drops the rest: the Lambda resources themselves (the runner plays Lambda), types moto's
CloudFormation cannot create, and whatever only exists for those (a function's log group). Nothing
is renamed or written down a second time: physical names come from the stack.

The functions' settings (environment variables, role, handler...) are often intrinsics
(``!Ref``, ``!Sub``, ``!If``, ``!GetAtt``). Rather than re-implement CloudFormation, the copy
declares each such value as an extra stack output, and moto resolves it.
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

FUNCTION_TYPE = "AWS::Lambda::Function"
VERSION_TYPE = "AWS::Lambda::Version"
ALARM_TYPE = "AWS::CloudWatch::Alarm"
"""moto's CloudFormation cannot create alarms, but moto's CloudWatch can: the embedded AWS puts
them itself, with their values resolved by the stack (:class:`DirectResource`)."""
_INTRINSICS = {"Ref", "Fn::GetAtt", "Fn::Sub", "Fn::If", "Fn::FindInMap", "Fn::Join", "Fn::Select"}
NOT_PROVISIONED_PREFIXES = ("AWS::Lambda::",)
"""The runner plays Lambda; moto would also need the code uploaded as a zip."""

_SUB_REFERENCE = re.compile(r"\$\{(?!!)([A-Za-z0-9]+)(?:\.([A-Za-z0-9.]+))?\}")
_SETTINGS = {
    "FunctionName": ("FunctionName",),
    "Handler": ("Handler",),
    "Runtime": ("Runtime",),
    "Timeout": ("Timeout",),
    "MemorySize": ("MemorySize",),
    "Role": ("Role",),
    "LogFormat": ("LoggingConfig", "LogFormat"),
    "ApplicationLogLevel": ("LoggingConfig", "ApplicationLogLevel"),
    "LogGroup": ("LoggingConfig", "LogGroup"),
}
"""Function settings the runner needs, by name, and where they sit in the properties."""


@dataclass(frozen=True)
class FromOutput:
    """A value CloudFormation resolves: read it from the stack's output of this name."""

    output_key: str


Setting = str | FromOutput


@dataclass(frozen=True)
class FunctionSettings:
    """What the runner needs of one function, each value literal or resolved by the stack."""

    logical_id: str
    settings: dict[str, Setting]
    environment: dict[str, Setting]
    layers: bool = False
    created_output: str | None = None
    """For a function with a ``Condition``: an output that exists only when the condition holds."""


Resolved = Any
"""Template JSON whose intrinsics are :class:`FromOutput` leaves."""


@dataclass(frozen=True)
class DirectResource:
    """A resource moto's CloudFormation cannot create that the embedded AWS creates through the
    service's own API, once the stack's outputs give its values."""

    logical_id: str
    kind: str
    properties: Resolved
    created_output: str | None = None
    """For a resource with a ``Condition``: an output that exists only when the condition holds."""


@dataclass
class LocalTemplate:
    template: dict[str, Any]
    functions: dict[str, FunctionSettings]
    not_created: dict[str, str] = field(default_factory=dict)
    """Logical id -> why the embedded AWS does not create it."""
    stand_ins: list[str] = field(default_factory=list)
    """Warnings: function settings that name a resource the embedded AWS does not create."""
    direct: dict[str, DirectResource] = field(default_factory=dict)
    """Resources to create through their service's API, after the stack (alarms)."""


def references(node: Any) -> set[str]:  # noqa: ANN401 - template JSON
    """Logical ids (and pseudo parameters) that ``Ref``, ``Fn::GetAtt`` and ``Fn::Sub`` name."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(_get_att_parts(value)[0])
            elif key == "Fn::Sub":
                text, variables = (value[0], value[1]) if isinstance(value, list) else (value, {})
                found |= {m[1] for m in _SUB_REFERENCE.finditer(text)} - set(variables)
                found |= references(variables)
            else:
                found |= references(value)
    elif isinstance(node, list):
        for member in node:
            found |= references(member)
    return found


def physical_function_name(stack_name: str, logical_id: str) -> str:
    """A name shaped like CloudFormation's (``stack-LogicalId-SUFFIX``), stable for a stack: for
    the functions the runner plays and the alarms the embedded AWS puts itself."""
    suffix = hashlib.sha256(f"{stack_name}/{logical_id}".encode()).hexdigest()[:12].upper()
    return f"{stack_name[:20]}-{logical_id[:30]}-{suffix}"


class _StandIns:
    """Values for references to resources the embedded AWS does not create."""

    def __init__(self, template: dict[str, Any], stack_name: str, dropped: set[str]) -> None:
        self._types = {k: r["Type"] for k, r in template["Resources"].items()}
        self._functions_of_versions = {
            k: r["Properties"]["FunctionName"]["Ref"]
            for k, r in template["Resources"].items()
            if r["Type"] == VERSION_TYPE
        }
        self._stack_name = stack_name
        self.dropped = dropped

    def ref(self, logical_id: str) -> Any:  # noqa: ANN401 - template JSON
        if self._types[logical_id] == FUNCTION_TYPE:
            return physical_function_name(self._stack_name, logical_id)
        if self._types[logical_id] == ALARM_TYPE:  # created by the embedded AWS, so named
            return physical_function_name(self._stack_name, logical_id)
        if self._types[logical_id] == VERSION_TYPE:  # a version's Ref is its ARN: the first one
            function_id = self._functions_of_versions[logical_id]
            return {"Fn::Sub": self.get_att(function_id, "Arn")["Fn::Sub"] + ":1"}
        return logical_id

    def get_att(self, logical_id: str, attribute: str) -> Any:  # noqa: ANN401 - template JSON
        if self._types[logical_id] in {FUNCTION_TYPE, ALARM_TYPE} and attribute == "Arn":
            name = physical_function_name(self._stack_name, logical_id)
            arn = (
                "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:"
                if self._types[logical_id] == FUNCTION_TYPE
                else "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:"
            )
            return {"Fn::Sub": arn + name}
        return f"{logical_id}.{attribute}"

    def replace(self, node: Any) -> Any:  # noqa: ANN401 - template JSON
        """``node`` with every reference to a dropped resource replaced by its stand-in."""
        if isinstance(node, list):
            return [self.replace(member) for member in node]
        if not isinstance(node, dict):
            return node
        if set(node) == {"Ref"} and node["Ref"] in self.dropped:
            return self.ref(node["Ref"])
        if set(node) == {"Fn::GetAtt"}:
            target, attribute = _get_att_parts(node["Fn::GetAtt"])
            if target in self.dropped:
                return self.get_att(target, attribute)
        if set(node) == {"Fn::Sub"}:
            value = node["Fn::Sub"]
            text, variables = (value[0], value[1]) if isinstance(value, list) else (value, {})
            text = _SUB_REFERENCE.sub(lambda m: self._sub_text(m, set(variables)), text)
            return {"Fn::Sub": [text, self.replace(variables)] if variables else text}
        return {key: self.replace(value) for key, value in node.items()}

    def _sub_text(self, match: re.Match[str], variables: set[str]) -> str:
        target, attribute = match[1], match[2]
        if target not in self.dropped or target in variables:
            return match[0]
        value = self.get_att(target, attribute) if attribute else self.ref(target)
        return value["Fn::Sub"] if isinstance(value, dict) else str(value)


def _get_att_parts(value: Any) -> tuple[str, str]:  # noqa: ANN401 - template JSON
    if isinstance(value, list):
        return str(value[0]), str(value[1])
    target, _, attribute = str(value).partition(".")
    return target, attribute


def _dig(properties: dict[str, Any], path: tuple[str, ...]) -> Any:  # noqa: ANN401
    node: Any = properties
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def literal(value: Any) -> str:  # noqa: ANN401 - template JSON scalars
    """How Lambda (and ``sam local``) spell a literal setting: booleans in lower case."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _drop(template: dict[str, Any], supported_types: set[str]) -> dict[str, str]:
    """Resources not to create, with the reason: Lambda's own, moto's gaps, and dependents."""
    resources = template["Resources"]
    dropped: dict[str, str] = {}
    for logical_id, resource in resources.items():
        kind = resource["Type"]
        if kind.startswith(NOT_PROVISIONED_PREFIXES):
            dropped[logical_id] = f"{kind}: the runner plays Lambda"
        elif kind not in supported_types:
            dropped[logical_id] = f"{kind}: moto's CloudFormation cannot create it"
    changed = True
    while changed:  # a resource that names a dropped one only exists for it (a log group)
        changed = False
        for logical_id, resource in resources.items():
            if logical_id in dropped or resource["Type"].startswith("AWS::IAM::"):
                continue  # a role naming a function still matters to the other functions
            named = (references(resource) | set(_depends_on(resource))) & set(dropped)
            if named:
                dropped[logical_id] = f"refers to {sorted(named)[0]}, which is not created"
                changed = True
    return dropped


def _depends_on(resource: dict[str, Any]) -> list[str]:
    depends = resource.get("DependsOn", [])
    return [depends] if isinstance(depends, str) else list(depends)


_ACCOUNT_ROOT = "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"


def _trust_the_account(role: dict[str, Any]) -> None:
    # LOCAL COPY ONLY: the function roles trust lambda.amazonaws.com alone, and the runner (which
    # plays Lambda) must assume them to hand the function its own role's credentials. Trusting the
    # account root lets any identity of the account that IAM policies allow to assume it do so;
    # only the embedded AWS ever sees this statement, never template.yaml or a deployment.
    trust = role.setdefault("Properties", {}).setdefault("AssumeRolePolicyDocument", {})
    statements = trust.setdefault("Statement", [])
    if isinstance(statements, dict):
        trust["Statement"] = statements = [statements]
    statements.append(
        {
            "Sid": "LocalInvokeRunnerPlaysLambda",
            "Effect": "Allow",
            "Principal": {"AWS": {"Fn::Sub": _ACCOUNT_ROOT}},
            "Action": "sts:AssumeRole",
        }
    )


def _kms_tags_as_moto_reads_them(key: dict[str, Any]) -> None:
    # LOCAL COPY ONLY: moto 5.2 creates a KMS key's CloudFormation Tags ({Key, Value}) with the
    # KMS API's own shape ({TagKey, TagValue}) and fails the stack without it.
    properties = key.get("Properties", {})
    if isinstance(properties.get("Tags"), list):
        properties["Tags"] = [
            {"TagKey": tag["Key"], "TagValue": tag["Value"]} if "Key" in tag else tag
            for tag in properties["Tags"]
        ]


class _Outputs:
    """The copy's outputs: the template's own that survive, plus one per resolved setting."""

    def __init__(self, outputs: dict[str, Any], stand_ins: _StandIns, local: LocalTemplate) -> None:
        self.outputs = outputs
        self._stand_ins = stand_ins
        self._local = local

    def setting(
        self,
        function_id: str,
        condition: str | None,
        name: str,
        value: Any,  # noqa: ANN401 - template JSON
    ) -> Setting:
        """``value`` itself when literal, else the output that will hold it once resolved."""
        if not isinstance(value, dict | list):
            return literal(value)
        named = references(value) & self._stand_ins.dropped
        if named:
            self._local.stand_ins.append(
                f"{function_id} {name} refers to {', '.join(sorted(named))}, which the embedded "
                "AWS does not create; it gets a stand-in value"
            )
        return FromOutput(self.add(self._stand_ins.replace(value), condition))

    def resolved(self, condition: str | None, node: Any) -> Resolved:  # noqa: ANN401
        """``node`` with each intrinsic replaced by the output that will hold its value."""
        if isinstance(node, list):
            return [self.resolved(condition, member) for member in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1 and next(iter(node)) in _INTRINSICS:
            # Stand-ins here are the names the runner gives functions: what their metrics carry.
            return FromOutput(self.add(self._stand_ins.replace(node), condition))
        return {key: self.resolved(condition, value) for key, value in node.items()}

    def add(self, value: Any, condition: str | None) -> str:  # noqa: ANN401 - template JSON
        index = len(self.outputs)
        while f"LocalInvoke{index}" in self.outputs:
            index += 1
        key = f"LocalInvoke{index}"
        self.outputs[key] = {"Value": value}
        if condition:  # a function that is not created has no settings to read
            self.outputs[key]["Condition"] = condition
        return key


def build(translated: dict[str, Any], stack_name: str, supported_types: set[str]) -> LocalTemplate:
    """The local copy of ``translated`` (a SAM-translated template), ready for ``create_stack``."""
    template = copy.deepcopy(translated)
    resources: dict[str, Any] = template["Resources"]
    not_created = _drop(template, supported_types)
    stand_ins = _StandIns(template, stack_name, set(not_created))
    functions = {k: r for k, r in resources.items() if r["Type"] == FUNCTION_TYPE}

    kept = {k: r for k, r in resources.items() if k not in not_created}
    for resource in kept.values():
        if "DependsOn" in resource:
            resource["DependsOn"] = [d for d in _depends_on(resource) if d not in not_created]
    template["Resources"] = {k: stand_ins.replace(r) for k, r in kept.items()}
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::KMS::Key":
            _kms_tags_as_moto_reads_them(resource)
    local = LocalTemplate(template=template, functions={}, not_created=not_created)
    outputs = _Outputs(
        {
            key: output
            for key, output in template.get("Outputs", {}).items()
            if not references(output) & set(not_created)
        },
        stand_ins,
        local,
    )
    for logical_id, function in functions.items():
        properties = function.get("Properties", {})
        role = properties.get("Role")
        if isinstance(role, dict) and "Fn::GetAtt" in role:
            role_id = _get_att_parts(role["Fn::GetAtt"])[0]
            if template["Resources"].get(role_id, {}).get("Type") == "AWS::IAM::Role":
                _trust_the_account(template["Resources"][role_id])
        condition = function.get("Condition")
        variables = _dig(properties, ("Environment", "Variables")) or {}
        local.functions[logical_id] = FunctionSettings(
            logical_id=logical_id,
            settings={
                name: outputs.setting(logical_id, condition, name, value)
                for name, path in _SETTINGS.items()
                if (value := _dig(properties, path)) is not None
            },
            environment={
                name: outputs.setting(logical_id, condition, name, value)
                for name, value in variables.items()
            },
            layers=bool(properties.get("Layers")),
            created_output=outputs.add("created", condition) if condition else None,
        )
    for logical_id in list(not_created):
        resource = resources[logical_id]
        if resource["Type"] != ALARM_TYPE:
            continue
        condition = resource.get("Condition")
        local.direct[logical_id] = DirectResource(
            logical_id=logical_id,
            kind=resource["Type"],
            properties=outputs.resolved(condition, resource.get("Properties", {})),
            created_output=outputs.add("created", condition) if condition else None,
        )
        del not_created[logical_id]
    template["Outputs"] = outputs.outputs
    return local
