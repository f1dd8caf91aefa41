"""Every way the service fails has an alarm wired to the encrypted topic, and prod deploys
gradually with the functions' error alarms as rollback triggers: proven on the translated
template (what CloudFormation deploys), for prod and dev, with the conditions resolved."""

import re
from pathlib import Path
from typing import Any

import pytest

from app.handlers import export_table
from app.operations.pre_traffic import probes
from app.sessions import worst_case_call_seconds, worst_case_invoke_seconds
from tools.emulator import sam_template

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
ALARM = "AWS::CloudWatch::Alarm"
TOPIC = {"Ref": "AlarmTopic"}
HOOK = "PreTrafficHookFunction"
GRADUAL = {
    "CodeDeployDefault.Lambda" + name
    for name in (
        "Canary10Percent5Minutes",
        "Canary10Percent10Minutes",
        "Canary10Percent15Minutes",
        "Canary10Percent30Minutes",
        "Linear10PercentEvery1Minute",
        "Linear10PercentEvery2Minutes",
        "Linear10PercentEvery3Minutes",
        "Linear10PercentEvery10Minutes",
    )
}


class Resolved:
    """The translated template for these parameters, with Fn::If, Fn::FindInMap and parameter
    Refs resolved as CloudFormation would; references to resources stay as they are."""

    def __init__(self, parameters: dict[str, str]) -> None:
        template = sam_template.load()
        self.translated = sam_template.translate(template, parameters)
        self.parameters = {
            name: str(spec.get("Default", ""))
            for name, spec in self.translated["Parameters"].items()
        } | parameters
        self.mappings = self.translated.get("Mappings", {})
        conditions = self.translated.get("Conditions", {})
        self.conditions = {name: self._holds(node, conditions) for name, node in conditions.items()}
        self.resources = {
            logical_id: self.resolve(resource)
            for logical_id, resource in self.translated["Resources"].items()
            if resource.get("Condition") is None or self.conditions[resource["Condition"]]
        }

    def _holds(self, node: Any, conditions: dict[str, Any]) -> bool:
        (function, argument), *_ = node.items()
        if function == "Fn::Equals":
            left, right = (self.resolve(value) for value in argument)
            return bool(str(left) == str(right))
        if function == "Fn::Not":
            return not self._holds(argument[0], conditions)
        if function == "Condition":
            return self._holds(conditions[argument], conditions)
        raise AssertionError(f"condition function not modelled here: {function}")

    def resolve(self, node: Any) -> Any:  # noqa: PLR0911 - a return per intrinsic
        if isinstance(node, list):
            return [self.resolve(member) for member in node]
        if not isinstance(node, dict):
            return node
        if set(node) == {"Ref"} and node["Ref"] in self.parameters:
            return self.parameters[node["Ref"]]
        if set(node) == {"Fn::If"}:
            name, when_true, when_false = node["Fn::If"]
            return self.resolve(when_true if self.conditions[name] else when_false)
        if set(node) == {"Fn::FindInMap"}:
            mapping, first, second = (self.resolve(key) for key in node["Fn::FindInMap"])
            return self.mappings[mapping][first][second]
        if set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], list):
            text, variables = node["Fn::Sub"]
            resolved = {name: self.resolve(value) for name, value in variables.items()}
            if all(isinstance(value, str) for value in resolved.values()):
                return re.sub(r"\$\{(\w+)\}", lambda m: resolved.get(m[1], m[0]), text)
        return {key: self.resolve(value) for key, value in node.items()}

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.resources.items() if r["Type"] == kind}

    def alarms_on(self, namespace: str, dimension: str, value: Any) -> dict[str, dict[str, Any]]:
        """Alarms on a metric of ``namespace`` with this dimension (metric math included)."""
        found = {}
        for logical_id, alarm in self.of_type(ALARM).items():
            properties = alarm["Properties"]
            metrics = [properties] + [
                query["MetricStat"]["Metric"]
                for query in properties.get("Metrics", [])
                if "MetricStat" in query
            ]
            for metric in metrics:
                if metric.get("Namespace") == namespace and {
                    "Name": dimension,
                    "Value": value,
                } in metric.get("Dimensions", []):
                    found[logical_id] = alarm
        return found


@pytest.fixture(scope="module", params=["prod", "dev"])
def stack(request: pytest.FixtureRequest) -> Resolved:
    return Resolved({"Stage": request.param, "AlarmEmail": "oncall@example.com"})


@pytest.fixture(scope="module")
def prod() -> Resolved:
    return Resolved({"Stage": "prod"})


def _metric_names(alarms: dict[str, dict[str, Any]]) -> set[str]:
    names = set()
    for alarm in alarms.values():
        properties = alarm["Properties"]
        names.add(properties.get("MetricName"))
        names |= {
            q["MetricStat"]["Metric"]["MetricName"]
            for q in properties.get("Metrics", [])
            if "MetricStat" in q
        }
    return names - {None}


# --- Wired to the topic ---------------------------------------------------------------------


def test_every_alarm_notifies_the_topic_when_it_fires_and_clears(stack: Resolved) -> None:
    alarms = stack.of_type(ALARM)
    assert alarms
    for logical_id, alarm in alarms.items():
        properties = alarm["Properties"]
        assert properties["AlarmActions"] == [TOPIC], logical_id
        assert properties["OKActions"] == [TOPIC], logical_id
        assert properties.get("ActionsEnabled", True) is True, logical_id


def test_every_alarm_chooses_what_missing_data_means_and_names_its_runbook(
    stack: Resolved,
) -> None:
    for logical_id, alarm in stack.of_type(ALARM).items():
        properties = alarm["Properties"]
        assert properties["TreatMissingData"] in {"notBreaching", "breaching", "ignore", "missing"}
        entry = re.search(
            r'Runbook: README "Alarms and runbook", ([A-Za-z0-9 -]+)\.',
            " ".join(properties["AlarmDescription"].split()),
        )
        assert entry, logical_id
        assert f"**{entry[1]}**" in README, f"{logical_id}: no runbook entry {entry[1]!r}"
        assert isinstance(properties["Threshold"], int | float), logical_id


def test_every_function_has_its_errors_and_throttles_alarms(stack: Resolved) -> None:
    functions = stack.of_type("AWS::Lambda::Function")
    assert HOOK in functions
    assert len(functions) == 5
    for function_id in functions:
        alarms = stack.alarms_on("AWS/Lambda", "FunctionName", {"Ref": function_id})
        assert _metric_names(alarms) == {"Errors", "Throttles"}, function_id
        for alarm in alarms.values():
            assert alarm["Properties"]["Statistic"] == "Sum"
            assert alarm["Properties"]["TreatMissingData"] == "notBreaching"


def _dead_letter_queues(stack: Resolved) -> set[str]:
    return {
        queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for queue in stack.of_type("AWS::SQS::Queue").values()
        if "RedrivePolicy" in queue["Properties"]
    }


def test_every_queue_has_an_alarm_and_each_dead_letter_queue_fires_on_one_message(
    stack: Resolved,
) -> None:
    queues = stack.of_type("AWS::SQS::Queue")
    dead_letter = _dead_letter_queues(stack)
    assert dead_letter == {"ExportDeadLetterQueue", "ExportTableDeadLetterQueue"}
    for queue_id in queues:
        alarms = stack.alarms_on("AWS/SQS", "QueueName", {"Fn::GetAtt": [queue_id, "QueueName"]})
        expected = (
            "ApproximateNumberOfMessagesVisible"
            if queue_id in dead_letter
            else "ApproximateAgeOfOldestMessage"
        )
        assert _metric_names(alarms) == {expected}, queue_id
        (alarm,) = alarms.values()
        if queue_id in dead_letter:
            properties = alarm["Properties"]
            assert (properties["Threshold"], properties["ComparisonOperator"]) == (
                1,
                "GreaterThanOrEqualToThreshold",
            )
            assert properties["Statistic"] == "Maximum"


def test_the_api_has_its_5xx_rate_and_latency_alarms(stack: Resolved) -> None:
    alarms = stack.alarms_on("AWS/ApiGateway", "ApiId", {"Ref": "ItemsApi"})
    assert _metric_names(alarms) == {"5xx", "Latency"}
    by_metric = {
        alarm["Properties"]["MetricName"]: alarm["Properties"] for alarm in alarms.values()
    }
    # The 5xx metric counts each request 0 or 1: its average is the error rate, a fraction.
    assert by_metric["5xx"]["Statistic"] == "Average"
    assert 0 < by_metric["5xx"]["Threshold"] < 1
    assert by_metric["Latency"]["ExtendedStatistic"] == "p99"


def _table_operations(stack: Resolved, table_id: str) -> set[str]:
    """What the stack's roles may do on the table: the operations that can be throttled."""
    operations = set()
    for role in stack.of_type("AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                if statement["Resource"] == {"Fn::GetAtt": [table_id, "Arn"]}:
                    actions = statement["Action"]
                    operations |= {
                        a.removeprefix("dynamodb:")
                        for a in ([actions] if isinstance(actions, str) else actions)
                    }
    return operations


def test_every_table_alarms_on_throttling_of_each_operation_the_functions_call(
    stack: Resolved,
) -> None:
    tables = stack.of_type("AWS::DynamoDB::Table")
    assert set(tables) == {"ItemsTable", "ExportRunsTable"}
    for table_id in tables:
        (alarm,) = stack.alarms_on("AWS/DynamoDB", "TableName", {"Ref": table_id}).values()
        queries = alarm["Properties"]["Metrics"]
        stats = [q["MetricStat"] for q in queries if "MetricStat" in q]
        assert {s["Metric"]["MetricName"] for s in stats} == {"ThrottledRequests"}
        watched = {
            d["Value"] for s in stats for d in s["Metric"]["Dimensions"] if d["Name"] == "Operation"
        }
        assert watched == _table_operations(stack, table_id), table_id
        (expression,) = [q for q in queries if q.get("ReturnData", True)]
        # Every operation counts, also in a minute when another had no throttled request.
        assert set(re.findall(r"FILL\((\w+), 0\)", expression["Expression"])) == {
            q["Id"] for q in queries if "MetricStat" in q
        }


def test_a_table_export_past_its_bound_fires_on_the_metric_the_function_publishes(
    stack: Resolved,
) -> None:
    alarm = stack.resources["TableExportTooLongAlarm"]["Properties"]
    environment = sam_template.load()["Globals"]["Function"]["Environment"]["Variables"]
    assert alarm["Namespace"] == environment["POWERTOOLS_METRICS_NAMESPACE"]
    assert alarm["MetricName"] == export_table.RUN_AGE_METRIC
    # Powertools adds the service; the function adds its name (tests/unit: the metric's shape).
    assert alarm["Dimensions"] == [
        {"Name": "service", "Value": environment["POWERTOOLS_SERVICE_NAME"]},
        {"Name": "function_name", "Value": {"Ref": "ExportTableFunction"}},
    ]
    assert alarm["Statistic"] == "Maximum"
    # Longer than one run can take: the function's timeout, at least.
    timeout = stack.resources["ExportTableFunction"]["Properties"]["Timeout"]
    assert alarm["Threshold"] > timeout


def test_prod_alarms_no_later_than_dev() -> None:
    mapping = sam_template.load()["Mappings"]["StageAlarms"]
    assert set(mapping) == {"dev", "prod"}
    for name, prod_value in mapping["prod"].items():
        assert prod_value <= mapping["dev"][name], name


# --- The topic ------------------------------------------------------------------------------


def test_the_topic_is_encrypted_with_a_rotated_key_cloudwatch_may_use(stack: Resolved) -> None:
    topic = stack.resources["AlarmTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    key = stack.resources["AlarmTopicKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    (cloudwatch,) = [
        s
        for s in key["KeyPolicy"]["Statement"]
        if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert set(cloudwatch["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    (policy,) = stack.of_type("AWS::SNS::TopicPolicy").values()
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert statements["OwnAlarmsPublish"]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert statements["DenyInsecureTransport"]["Effect"] == "Deny"


def test_the_email_parameter_subscribes_to_the_topic_only_when_set() -> None:
    subscribed = Resolved({"AlarmEmail": "oncall@example.com"}).of_type("AWS::SNS::Subscription")
    assert [s["Properties"] for s in subscribed.values()] == [
        {"TopicArn": TOPIC, "Protocol": "email", "Endpoint": "oncall@example.com"}
    ]
    assert Resolved({}).of_type("AWS::SNS::Subscription") == {}


# --- Gradual deployments --------------------------------------------------------------------


def _deployed_functions(stack: Resolved) -> list[str]:
    return sorted(f for f in stack.of_type("AWS::Lambda::Function") if f != HOOK)


def _alias(stack: Resolved, function_id: str) -> dict[str, Any]:
    (alias,) = [
        r
        for r in stack.of_type("AWS::Lambda::Alias").values()
        if r["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    return alias


def test_prod_shifts_traffic_gradually_and_rolls_back_on_each_functions_errors(
    prod: Resolved,
) -> None:
    groups = prod.of_type("AWS::CodeDeploy::DeploymentGroup")
    assert set(groups) == {f"{f}DeploymentGroup" for f in _deployed_functions(prod)}
    for function_id in _deployed_functions(prod):
        group = groups[f"{function_id}DeploymentGroup"]["Properties"]
        assert group["DeploymentConfigName"] in GRADUAL, function_id
        assert group["AutoRollbackConfiguration"]["Enabled"] is True
        assert "DEPLOYMENT_STOP_ON_ALARM" in group["AutoRollbackConfiguration"]["Events"]
        triggers = [alarm["Name"] for alarm in group["AlarmConfiguration"]["Alarms"]]
        errors = prod.alarms_on("AWS/Lambda", "FunctionName", {"Ref": function_id})
        (errors_alarm,) = [
            a for a, r in errors.items() if r["Properties"]["MetricName"] == "Errors"
        ]
        assert triggers == [{"Ref": errors_alarm}], function_id
        assert group["AlarmConfiguration"]["Enabled"] is True
        assert group["ServiceRoleArn"] == {"Fn::GetAtt": ["DeploymentRole", "Arn"]}
        update = _alias(prod, function_id)["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
        assert update["DeploymentGroupName"] == {"Ref": f"{function_id}DeploymentGroup"}
        assert update["BeforeAllowTrafficHook"] == {"Ref": HOOK}
    # The hook itself shifts nothing: no deployment group, no hook of its own.
    assert "UpdatePolicy" not in _alias(prod, HOOK)


def test_dev_deploys_all_at_once_through_the_same_hook() -> None:
    dev = Resolved({})
    for function_id in _deployed_functions(dev):
        group = dev.resources[f"{function_id}DeploymentGroup"]["Properties"]
        assert group["DeploymentConfigName"] == "CodeDeployDefault.LambdaAllAtOnce"
        update = _alias(dev, function_id)["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
        assert update["BeforeAllowTrafficHook"] == {"Ref": HOOK}


def test_the_hook_probes_every_function_that_deploys_within_its_timeout(prod: Resolved) -> None:
    assert sorted(probe.function for probe in probes("d-1")) == _deployed_functions(prod)
    timeout = prod.resources[HOOK]["Properties"]["Timeout"]
    every_probe = len(probes("d-1")) * worst_case_invoke_seconds()
    assert every_probe + worst_case_call_seconds() < timeout


def test_the_key_carries_the_tag_the_deploy_role_manages_keys_by(stack: Resolved) -> None:
    """deploy/bootstrap.yaml lets the deploy role create and manage only keys with this tag."""
    tags = stack.resources["AlarmTopicKey"]["Properties"]["Tags"]
    assert {"Key": "stack-name", "Value": {"Ref": "AWS::StackName"}} in tags
    bootstrap = (Path(__file__).resolve().parents[2] / "deploy" / "bootstrap.yaml").read_text()
    assert "aws:RequestTag/stack-name: !Ref AppStackName" in bootstrap
    assert "aws:ResourceTag/stack-name: !Ref AppStackName" in bootstrap
