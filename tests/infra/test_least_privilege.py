"""Each role in the translated template may do exactly what its code does, and no more."""

from typing import Any

import pytest

from app.runtime import PROBED_VERSIONS
from tests.conftest import LAMBDA_ENVIRONMENT
from tools.emulator import sam_template

WRITER_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${AWS::StackName}-exports-writer"
}
TABLE_ARN = {"Fn::GetAtt": ["ItemsTable", "Arn"]}


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return sam_template.translate(template)["Resources"]  # type: ignore[no-any-return]


def _statements(role: dict[str, Any]) -> list[tuple[str, Any]]:
    """(action, resource) pairs of a role's inline policies."""
    pairs = []
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            pairs += [(action, statement["Resource"]) for action in actions]
    return pairs


def test_reader_may_only_get_items(resources: dict[str, Any]) -> None:
    assert _statements(resources["GetItemFunctionRole"]) == [("dynamodb:GetItem", TABLE_ARN)]


@pytest.mark.parametrize("role", ["ExportItemFunctionRole", "ExportQueueFunctionRole"])
def test_exporters_may_get_items_and_assume_only_the_writer(
    resources: dict[str, Any], role: str
) -> None:
    statements = _statements(resources[role])
    assert statements[0] == ("dynamodb:GetItem", TABLE_ARN)
    writer = {"Fn::If": ["CreateWriterRole", WRITER_ARN, {"Ref": "WriterRoleArn"}]}
    hub_or_writer = {"Fn::If": ["HasWriterHub", {"Ref": "WriterViaRoleArn"}, writer]}
    assert statements[1:] == [
        ("sts:AssumeRole", hub_or_writer),
        ("sts:SetSourceIdentity", hub_or_writer),
    ]


def test_writer_may_only_put_and_head_objects_under_the_export_prefix(
    resources: dict[str, Any],
) -> None:
    writer = resources["WriterRole"]
    prefix = LAMBDA_ENVIRONMENT["EXPORT_PREFIX"]
    exports = {"Fn::Sub": f"${{ExportsBucket.Arn}}/{prefix}*"}
    assert _statements(writer) == [("s3:PutObject", exports), ("s3:GetObject", exports)]
    for function_id in ("ExportItemFunction", "ExportQueueFunction"):
        variables = resources[function_id]["Properties"]["Environment"]["Variables"]
        assert variables["EXPORT_PREFIX"] == prefix


def test_writer_is_trusted_only_by_the_export_function_roles(resources: dict[str, Any]) -> None:
    trust = resources["WriterRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    principals = [statement["Principal"] for statement in trust]
    function_roles = [
        {"Fn::GetAtt": ["ExportItemFunctionRole", "Arn"]},
        {"Fn::GetAtt": ["ExportQueueFunctionRole", "Arn"]},
        {"Fn::GetAtt": ["ExportTableFunctionRole", "Arn"]},
    ]
    hub = {"Ref": "WriterViaRoleArn"}
    assert principals == [{"AWS": {"Fn::If": ["HasWriterHub", hub, function_roles]}}]
    assert [statement["Action"] for statement in trust] == [
        ["sts:AssumeRole", "sts:SetSourceIdentity"]
    ]


def test_writer_role_name_matches_the_arn_the_functions_assume(resources: dict[str, Any]) -> None:
    name = resources["WriterRole"]["Properties"]["RoleName"]["Fn::Sub"]
    assert WRITER_ARN["Fn::Sub"].endswith(f"role/{name}")
    for function_id in ("ExportItemFunction", "ExportQueueFunction", "ExportTableFunction"):
        variables = resources[function_id]["Properties"]["Environment"]["Variables"]
        assert variables["WRITER_ROLE_ARN"]["Fn::If"][1] == WRITER_ARN


def test_table_exporter_may_scan_track_runs_queue_continuations_and_assume_the_writer(
    resources: dict[str, Any],
) -> None:
    writer = {"Fn::If": ["CreateWriterRole", WRITER_ARN, {"Ref": "WriterRoleArn"}]}
    assert _statements(resources["ExportTableFunctionRole"]) == [
        ("dynamodb:Scan", TABLE_ARN),
        ("dynamodb:UpdateItem", {"Fn::GetAtt": ["ExportRunsTable", "Arn"]}),
        ("sqs:SendMessage", {"Fn::GetAtt": ["ExportTableQueue", "Arn"]}),
        ("sts:AssumeRole", {"Fn::If": ["HasWriterHub", {"Ref": "WriterViaRoleArn"}, writer]}),
        (
            "sts:SetSourceIdentity",
            {"Fn::If": ["HasWriterHub", {"Ref": "WriterViaRoleArn"}, writer]},
        ),
    ]


PROBED = ("GetItemFunction", "ExportItemFunction", "ExportQueueFunction", "ExportTableFunction")


def _version_of(resources: dict[str, Any], function_id: str) -> dict[str, str]:
    """``!Ref <function>.Version`` as SAM translates it: the Ref of this update's new version."""
    (version_id,) = [
        logical_id
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::Lambda::Version"
        and resource["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    return {"Ref": version_id}


def test_pre_traffic_hook_may_invoke_exactly_the_new_versions_and_report(
    resources: dict[str, Any],
) -> None:
    versions = [_version_of(resources, function_id) for function_id in PROBED]
    deployment_groups = {
        "Fn::Sub": "arn:${AWS::Partition}:codedeploy:${AWS::Region}:${AWS::AccountId}:"
        "deploymentgroup:${ServerlessDeploymentApplication}/*"
    }
    assert _statements(resources["PreTrafficHookFunctionRole"]) == [
        ("lambda:InvokeFunction", versions),
        ("codedeploy:PutLifecycleEventHookExecutionStatus", deployment_groups),
    ]
    # The same versions are the ones it probes: its environment names them (app/runtime.py).
    variables = resources["PreTrafficHookFunction"]["Properties"]["Environment"]["Variables"]
    assert [variables[name] for name in PROBED_VERSIONS.values()] == versions
    assert list(PROBED_VERSIONS) == list(PROBED)


def test_codedeploy_may_move_only_the_live_aliases_read_the_rollback_alarms_and_run_the_hook(
    resources: dict[str, Any],
) -> None:
    role = resources["DeploymentRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert (trust["Principal"], trust["Action"]) == (
        {"Service": "codedeploy.amazonaws.com"},
        "sts:AssumeRole",
    )
    aliases = [{"Fn::Sub": f"${{{function_id}.Arn}}:live"} for function_id in PROBED]
    rollback_alarms = [
        alarm["Name"]["Ref"]
        for function_id in PROBED
        for alarm in resources[f"{function_id}DeploymentGroup"]["Properties"]["AlarmConfiguration"][
            "Alarms"
        ]
    ]
    assert _statements(resources["DeploymentRole"]) == [
        ("lambda:GetAlias", aliases),
        ("lambda:UpdateAlias", aliases),
        ("lambda:GetProvisionedConcurrencyConfig", aliases),
        ("lambda:InvokeFunction", {"Fn::GetAtt": ["PreTrafficHookFunction", "Arn"]}),
        ("cloudwatch:DescribeAlarms", [{"Fn::GetAtt": [a, "Arn"]} for a in rollback_alarms]),
    ]
    assert "ManagedPolicyArns" not in role
