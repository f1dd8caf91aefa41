"""Each role in the translated template may do exactly what its code does, and no more."""

import fnmatch
from typing import Any

import pytest

from app.runtime import PROBED_VERSIONS
from tests.conftest import LAMBDA_ENVIRONMENT
from tools.emulator import sam_template

WRITER_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${AWS::StackName}-exports-writer"
}
TABLE_ARN = {"Fn::GetAtt": ["ItemsTable", "Arn"]}
BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
"""The one managed policy a role may carry: a function's own logs (logs:CreateLogStream and
PutLogEvents, CreateLogGroup), as every function role SAM generates has it."""
POLLER = "PollOwnQueue"
"""The inline policy of the role of a function with an SQS event: what Lambda's event source
mapping calls with the role to deliver the queue's batches (the code never calls it)."""
POLLER_ACTIONS = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
POLLED = {"ExportQueueFunctionRole": "ExportQueue", "ExportTableFunctionRole": "ExportTableQueue"}
"""Each role whose function has an SQS event, and the one queue it may poll."""
PARAMETER_SETS = [
    {},
    {"Stage": "prod", "RolesBoundaryPolicy": "items-service-prod-roles-boundary"},
    {"EnableSnapStart": "true"},
    {"TableExportFanOut": "true"},
    {"WriterRoleArn": "arn:aws:iam::210987654321:role/exports-writer"},
    {"WriterViaRoleArn": "arn:aws:iam::210987654321:role/exports-hub"},
]
"""Ways a team may deploy the stack: none of them may change what a role carries."""


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return sam_template.translate(template)["Resources"]  # type: ignore[no-any-return]


def _statements(role: dict[str, Any], policy_name: str | None = None) -> list[tuple[str, Any]]:
    """(action, resource) pairs of a role's inline policies: of those the code calls (every one
    but ``POLLER``), or of the one named."""
    pairs = []
    for policy in role["Properties"].get("Policies", []):
        wanted = (
            policy["PolicyName"] == policy_name if policy_name else policy["PolicyName"] != POLLER
        )
        if not wanted:
            continue
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


def test_a_given_writer_role_is_let_into_the_bucket_with_the_writer_s_rights_only(
    resources: dict[str, Any], template: dict[str, Any]
) -> None:
    """S3 admits a requester of another account only if the bucket policy allows it too: with
    ``WriterRoleArn`` set, the policy allows that role exactly what the stack's own writer may."""
    policy = resources["ExportsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    allowing = [statement for statement in policy if statement.get("Effect") != "Deny"]
    assert template["Conditions"]["CreateWriterRole"] == {
        "Fn::Equals": [{"Ref": "WriterRoleArn"}, ""]
    }
    [(condition, own_writer, given_writer)] = [statement["Fn::If"] for statement in allowing]
    assert (condition, own_writer) == ("CreateWriterRole", {"Ref": "AWS::NoValue"})
    assert given_writer["Principal"] == {"AWS": {"Ref": "WriterRoleArn"}}
    assert given_writer["Effect"] == "Allow"
    assert set(given_writer) == {"Sid", "Effect", "Principal", "Action", "Resource"}
    given = [(action, given_writer["Resource"]) for action in given_writer["Action"]]
    assert given == _statements(resources["WriterRole"])


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


def _managed_policies(role: dict[str, Any]) -> list[str]:
    """A role's managed policy ARNs, as CloudFormation resolves them in the aws partition."""
    return [
        arn if isinstance(arn, str) else arn["Fn::Sub"].replace("${AWS::Partition}", "aws")
        for arn in role["Properties"].get("ManagedPolicyArns", [])
    ]


@pytest.mark.parametrize("parameters", PARAMETER_SETS, ids=lambda p: ",".join(p) or "defaults")
def test_no_role_carries_a_managed_policy_but_the_basic_execution_role(
    template: dict[str, Any], parameters: dict[str, str]
) -> None:
    """SAM attaches AWSLambdaSQSQueueExecutionRole to the role it generates for a function with
    an SQS event: sqs:ReceiveMessage, DeleteMessage and GetQueueAttributes on every queue of the
    account (the dead-letter queues too). A role of the template's own carries only the function's
    logs; its poll is an inline statement on its own queue (the test below)."""
    resources = sam_template.translate(template, parameters)["Resources"]
    function_roles = {
        resource["Properties"]["Role"]["Fn::GetAtt"][0]
        for resource in resources.values()
        if resource["Type"] == "AWS::Lambda::Function"
    }
    roles = {k: r for k, r in resources.items() if r["Type"] == "AWS::IAM::Role"}
    assert function_roles < set(roles)
    for role_id, role in roles.items():
        expected = [BASIC_EXECUTION] if role_id in function_roles else []
        assert _managed_policies(role) == expected, role_id
    # Not a SAM role any more, but what SAM's was apart from the poll: trust, boundary and tags.
    generated = resources["GetItemFunctionRole"]["Properties"]
    for role_id in POLLED:
        properties = roles[role_id]["Properties"]
        assert set(properties) == set(generated), role_id
        for name in ("AssumeRolePolicyDocument", "PermissionsBoundary", "Tags"):
            assert properties[name] == generated[name], (role_id, name)


def _mapped_queues(resources: dict[str, Any]) -> dict[str, str]:
    """Role -> the queue its function's SQS event source mapping polls, from the mappings."""
    aliases = {
        logical_id: resource["Properties"]["FunctionName"]["Ref"]
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::Lambda::Alias"
    }
    mapped = {}
    for mapping in resources.values():
        if mapping["Type"] != "AWS::Lambda::EventSourceMapping":
            continue
        queue, attribute = mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"]
        assert (resources[queue]["Type"], attribute) == ("AWS::SQS::Queue", "Arn")
        function = aliases[mapping["Properties"]["FunctionName"]["Ref"]]
        role = resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]
        assert role not in mapped, f"{role}: one queue per function"
        mapped[role] = queue
    return mapped


def test_each_sqs_event_source_role_may_poll_only_its_own_queue(
    resources: dict[str, Any],
) -> None:
    """Exactly the three actions the event source mapping needs, on the mapping's queue alone:
    neither the other function's queue nor a dead-letter queue (a role that could receive from a
    dead-letter queue could delete what the alarms and the runbook rely on finding there). No
    event the code handles needs this statement: tests/integration/test_least_privilege_proven.py
    proves it needed by making the mapping's calls with the role, as moto runs no mappings, and
    shows the role denied on every other queue; this pins its one form, to the mapping's queue."""
    assert _mapped_queues(resources) == POLLED
    for role_id, queue in POLLED.items():
        (poller,) = [
            p for p in resources[role_id]["Properties"]["Policies"] if p["PolicyName"] == POLLER
        ]
        assert poller["PolicyDocument"]["Statement"] == [
            {
                "Effect": "Allow",
                "Action": POLLER_ACTIONS,
                "Resource": {"Fn::GetAtt": [queue, "Arn"]},
            }
        ], role_id
    # Nowhere else: no other role has a poller policy, and no statement the code's policies
    # hold grants a poll (not even through a wildcard action).
    for role_id, role in resources.items():
        if role["Type"] != "AWS::IAM::Role":
            continue
        assert role_id in POLLED or not _statements(role, POLLER), role_id
        polls = [
            (action, resource)
            for action, resource in _statements(role)
            if any(fnmatch.fnmatch(poll.lower(), action.lower()) for poll in POLLER_ACTIONS)
        ]
        assert polls == [], role_id
