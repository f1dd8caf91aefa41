"""The local invoke (``make invoke``): every event through real worker processes, as Lambda would.

One embedded AWS, provisioned from template.yaml and seeded, serves the whole module; each
function's events run in one fresh worker process (an execution environment), the functions in
parallel. The command line runs as ``make invoke`` runs it (a subprocess, its own embedded AWS)
for the default path and the input errors, and in this process against the shared AWS
(``--endpoint-url``) where only its output matters, so no test pays a server start it does not
need. Workers are always real processes.
"""

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from app.operations.requests import export_id_for
from tests.conftest import EVENTS, EXPECTED, event_names, load_event, matches_expected
from tests.dynamodb_numbers import exact, same_json
from tools.emulator import (
    execution_environment,
    invoke_inputs,
    local_invoke,
    local_lambda,
    local_template,
    provision,
    sam_template,
    serve_aws,
)
from tools.emulator.execution_environment import Code
from tools.emulator.local_lambda import LocalAws
from tools.emulator.seed import load_seed

ROOT = Path(__file__).resolve().parents[2]
SEED = EVENTS / "seed.json"
SEEDED = {item["item_id"]: item for item in load_seed()["ItemsTable"]}
FUNCTIONS = sorted({name.split("/")[0] for name in event_names()})


@pytest.fixture(scope="module")
def local() -> Iterator[LocalAws]:
    with local_lambda.embedded(seed_file=SEED) as provisioned:
        yield provisioned


@pytest.fixture(scope="module")
def outcomes(local: LocalAws, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Each event's invocation (and its environment's logs), one environment per function."""
    logs_dir = tmp_path_factory.mktemp("logs")

    def run(function_id: str) -> dict[str, Any]:
        names = [n for n in event_names() if n.startswith(f"{function_id}/")]
        log = logs_dir / f"{function_id}.log"
        with log.open("w") as stderr:
            invocations = local_lambda.invoke(
                local, function_id, [load_event(n) for n in names], use_build=False, stderr=stderr
            )
        return {
            name: (invocation, log) for name, invocation in zip(names, invocations, strict=True)
        }

    with ThreadPoolExecutor(max_workers=len(FUNCTIONS)) as pool:
        results = list(pool.map(run, FUNCTIONS))
    return {name: outcome for result in results for name, outcome in result.items()}


def _objects(local: LocalAws) -> dict[str, bytes]:
    s3 = local.aws.client("s3")
    bucket = local.deployment.resources["ExportsBucket"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


@pytest.mark.parametrize("name", event_names())
def test_every_event_gets_its_expected_response(name: str, outcomes: dict[str, Any]) -> None:
    invocation, log = outcomes[name]
    assert not invocation.error, log.read_text()[-3000:]
    matches_expected(invocation.response, EXPECTED["responses"][name])


def test_a_found_item_is_returned_as_seeded(outcomes: dict[str, Any]) -> None:
    invocation, _ = outcomes["GetItemFunction/found"]
    assert same_json(exact(invocation.response["body"]), SEEDED["42"])


def test_api_exports_are_in_the_bucket_and_rejections_wrote_nothing(
    local: LocalAws, outcomes: dict[str, Any]
) -> None:
    objects = _objects(local)
    for name in (n for n in outcomes if n.startswith("ExportItemFunction/")):
        event = load_event(name)
        response = outcomes[name][0].response
        export_id = export_id_for(
            event["requestContext"]["requestId"], event["headers"].get("idempotency-key")
        )
        written = [key for key in objects if f"/{export_id}.json" in key]
        if response["statusCode"] >= 400:
            assert written == [], name
            continue
        key = json.loads(response["body"])["key"]
        assert written == [key], name
        fields = json.loads(event["body"]).get("fields")
        item = SEEDED[event["pathParameters"]["item_id"]]
        wanted = {k: v for k, v in item.items() if not fields or k in {"item_id", *fields}}
        assert same_json(exact(objects[key])["item"], wanted), name


def test_queue_exports_exactly_the_records_it_does_not_report_failed(
    local: LocalAws, outcomes: dict[str, Any]
) -> None:
    objects = _objects(local)
    for name in (n for n in outcomes if n.startswith("ExportQueueFunction/")):
        failed = {e["itemIdentifier"] for e in outcomes[name][0].response["batchItemFailures"]}
        for record in load_event(name)["Records"]:
            written = [key for key in objects if record["messageId"] in key]
            assert bool(written) == (record["messageId"] not in failed), (name, record["body"])


def test_table_exports_leave_their_manifest_in_the_bucket(
    local: LocalAws, outcomes: dict[str, Any]
) -> None:
    objects = _objects(local)
    manifests = [
        invocation.response["manifest_key"]
        for name, (invocation, _) in outcomes.items()
        if isinstance(invocation.response, dict) and "manifest_key" in invocation.response
    ]
    assert manifests, "no table export reported a manifest"
    for key in manifests:
        assert key in objects


DEVELOPER = {
    "AWS_PROFILE": "developer-sso-profile-that-does-not-exist",
    "AWS_ACCESS_KEY_ID": "AKIADEVELOPERKEY0000",
    "AWS_SECRET_ACCESS_KEY": "developer-secret",
    "AWS_ENDPOINT_URL": "https://real-aws.invalid",
}
"""A developer's shell: the runner and the function must use none of it."""


def _run_cli(*arguments: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment.update(DEVELOPER)
    return subprocess.run(
        [sys.executable, "-m", "tools.emulator.local_invoke", *arguments],
        cwd=ROOT,
        env=environment,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _fresh_export_event(tmp_path: Path, request_id: str) -> Path:
    event = load_event("ExportItemFunction/created")
    event["requestContext"]["requestId"] = request_id
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    return path


def _main(*arguments: str) -> int:
    """The command line in this process (its imports are paid), in a developer's shell."""
    with mock.patch.dict(os.environ, DEVELOPER):
        return local_invoke.main(list(arguments))


def test_repeat_runs_one_environment_one_init_one_assume_role(
    local: LocalAws, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    event = _fresh_export_event(tmp_path, "repeat-five")
    code = _main(
        "ExportItemFunction", "-e", str(event), "--repeat", "5",
        "--endpoint-url", local.aws.endpoint_url, "--no-build",
    )  # fmt: skip
    out, err = capfd.readouterr()
    assert code == 0, err

    responses = [json.loads(line) for line in out.splitlines()]
    assert [r["statusCode"] for r in responses] == [201, 200, 200, 200, 200]  # retries find it
    assert len({json.loads(r["body"])["key"] for r in responses}) == 1
    reports = [line for line in err.splitlines() if line.startswith("REPORT RequestId:")]
    assert len(reports) == 5
    assert [("Init Duration:" in line) for line in reports] == [True, False, False, False, False]
    assert all("Max Memory Used:" in line and "Duration:" in line for line in reports)
    calls = [line for line in err.splitlines() if line.startswith("CALLS RequestId:")]
    assert sum(line.count("sts.AssumeRole=1") for line in calls) == 1
    assert all("dynamodb.GetItem=1" in line and "s3.PutObject=1" in line for line in calls)


def test_an_event_file_holding_null_is_invoked_with_none_not_the_default_event(
    local: LocalAws, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    event = tmp_path / "null.json"
    event.write_text("null\n")
    code = _main(
        "GetItemFunction", "-e", str(event), "--endpoint-url", local.aws.endpoint_url, "--no-build"
    )
    out, err = capfd.readouterr()
    assert code == 0, err
    (response,) = [json.loads(line) for line in out.splitlines()]
    assert response["statusCode"] == 400  # what the function makes of None, as in Lambda
    assert "JSON object" in json.loads(response["body"])["message"]


def test_default_make_invoke_runs_the_default_event_on_its_own_embedded_aws() -> None:
    """What the quick start's `make invoke` runs: no --event, no endpoint, nothing else."""
    result = _run_cli("GetItemFunction", "--no-build")
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    response = json.loads(line)
    assert response["statusCode"] == 200
    assert same_json(exact(response["body"]), SEEDED["42"])
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (["NoSuchFunction"], "unknown function 'NoSuchFunction'"),
        (["GetItemFunction", "-e", "events/GetItemFunction/missing.json"], "does not exist"),
        (["GetItemFunction", "-e", "events/seed.json", "-n", "Makefile"], "is not JSON"),
        (["GetItemFunction", "-e", "Makefile"], "event file Makefile is not JSON"),
    ],
    ids=["unknown-function", "missing-event", "bad-env-vars", "non-json-event"],
)
def test_command_line_errors_are_one_line_and_fail(arguments: list[str], problem: str) -> None:
    result = _run_cli(*arguments)
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert problem in line
    assert "Traceback" not in result.stderr
    if "unknown function" in problem:  # and the ones it could have meant
        assert all(function_id in line for function_id in FUNCTIONS)


def _without_statement(role: str, action: str) -> Callable[[dict[str, Any]], None]:
    """A hook that removes the statement granting ``action`` from ``role``'s inline policies."""

    def remove(template: dict[str, Any]) -> None:
        removed = 0
        for policy in template["Resources"][role]["Properties"]["Policies"]:
            statements = policy["PolicyDocument"]["Statement"]
            kept = [s for s in statements if action not in json.dumps(s["Action"])]
            removed += len(statements) - len(kept)
            policy["PolicyDocument"]["Statement"] = kept
        assert removed == 1, f"{role} has no single {action} statement"

    return remove


@pytest.fixture(scope="module")
def least_privileged(local: LocalAws) -> LocalAws:
    """The same template in the same AWS, with two function roles missing a statement."""

    def customize(template: dict[str, Any]) -> None:
        _without_statement("GetItemFunctionRole", "dynamodb:GetItem")(template)
        _without_statement("ExportQueueFunctionRole", "sts:AssumeRole")(template)

    return local_lambda.provision_more(local, "local-invoke-least", customize, seed_file=SEED)


def _all_records_failed(response: dict[str, Any]) -> bool:
    records = load_event("ExportQueueFunction/batch")["Records"]
    return len(response["batchItemFailures"]) == len(records)


ENFORCED_CASES = {
    "api-500": (
        "GetItemFunction/found",
        lambda response: response["statusCode"] == 200,
        lambda response: response["statusCode"] == 500,
    ),
    "queue-batch-failures": (
        "ExportQueueFunction/batch",
        lambda response: response["batchItemFailures"] == [],
        _all_records_failed,
    ),
}


@pytest.mark.parametrize("case", ENFORCED_CASES)
def test_with_iam_enforced_a_missing_permission_fails_as_in_aws(
    local: LocalAws, least_privileged: LocalAws, case: str, tmp_path: Path
) -> None:
    event_name, allowed, denied = ENFORCED_CASES[case]
    function_id = event_name.split("/")[0]
    event = load_event(event_name)
    if "Records" in event:  # new message ids, so that no earlier export is found instead
        for record in event["Records"]:
            record["messageId"] = f"iam-{record['messageId']}"
    logs = tmp_path / "logs.txt"
    with local.aws.enforcing_iam(), logs.open("w") as stderr:
        (full,) = local_lambda.invoke(local, function_id, [event], use_build=False, stderr=stderr)
        (least,) = local_lambda.invoke(
            least_privileged, function_id, [copy.deepcopy(event)], use_build=False, stderr=stderr
        )
    text = logs.read_text()
    assert not full.error
    assert not least.error
    assert allowed(full.response), text[-3000:]
    assert denied(least.response), text[-3000:]
    assert "AccessDenied" in text  # the log names the cause, as it would in CloudWatch


def test_env_vars_override_only_what_the_template_declares(local: LocalAws, tmp_path: Path) -> None:
    env_vars = invoke_inputs.load_env_vars(EVENTS / "env.json")
    env_vars["GetItemFunction"] = {"NOT_DECLARED": "x"}
    warnings: list[str] = []
    logs = tmp_path / "logs.txt"
    with logs.open("w") as stderr:
        (invocation,) = local_lambda.invoke(
            local, "GetItemFunction", [load_event("GetItemFunction/found")],
            env_vars=env_vars, use_build=False, warn=warnings.append, stderr=stderr,
        )  # fmt: skip
    assert invocation.response["statusCode"] == 200
    namespace = env_vars["Parameters"]["POWERTOOLS_METRICS_NAMESPACE"]
    assert f'"Namespace":"{namespace}"' in logs.read_text()  # the metrics the function emitted
    assert len(warnings) == 1
    assert "NOT_DECLARED" in warnings[0]


TOY_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.13
    CodeUri: code/
Resources:
  BoomFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: toy.boom
  SlowFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: toy.slow
      Timeout: 1
  ExactFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: toy.exact
"""
TOY_CODE = """\
import decimal
import time


def boom(event, context):
    raise ValueError("no such thing")


def slow(event, context):
    time.sleep(60)


def exact(event, context):
    return {"price": decimal.Decimal("12345678901234567.5")}
"""


@pytest.fixture(scope="module")
def toy_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another project: a template whose functions fail, its code beside it."""
    root = tmp_path_factory.mktemp("toy")
    (root / "code").mkdir()
    (root / "code" / "toy.py").write_text(TOY_CODE)
    (root / "template.yaml").write_text(TOY_TEMPLATE)
    return root / "template.yaml"


def test_an_unhandled_error_is_returned_as_lambda_returns_it(
    local: LocalAws, toy_template: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    code = _main(
        "BoomFunction", "-t", str(toy_template), "-e", str(EVENTS / "seed.json"),
        "--endpoint-url", local.aws.endpoint_url, "--stack-name", "toy",
    )  # fmt: skip
    out, err = capfd.readouterr()
    assert code == 1
    (line,) = out.splitlines()
    response = json.loads(line)
    assert response["errorType"] == "ValueError"
    assert response["errorMessage"] == "no such thing"
    assert response["requestId"]
    assert "[ERROR] ValueError: no such thing" in err  # and the traceback, in the log


def test_a_returned_decimal_comes_back_with_every_digit(
    local: LocalAws, toy_template: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Lambda's runtime writes a Decimal as its text, not a float (12345678901234568)."""
    code = _main(
        "ExactFunction", "-t", str(toy_template), "-e", str(EVENTS / "seed.json"),
        "--endpoint-url", local.aws.endpoint_url, "--stack-name", "toy-exact",
    )  # fmt: skip
    out, _ = capfd.readouterr()
    assert code == 0
    assert out.splitlines() == ['{"price": 12345678901234567.5}']
    toy = LocalAws(local.aws, provision.deploy(local.aws, toy_template, stack_name="toy-exact2"))
    (invocation,) = local_lambda.invoke(toy, "ExactFunction", [{}], stderr=subprocess.DEVNULL)
    assert invocation.response == {"price": Decimal("12345678901234567.5")}


def test_a_function_that_runs_past_its_timeout_is_stopped(
    local: LocalAws, toy_template: Path
) -> None:
    toy = LocalAws(local.aws, provision.deploy(local.aws, toy_template, stack_name="toy-slow"))
    (invocation,) = local_lambda.invoke(toy, "SlowFunction", [{}], stderr=subprocess.DEVNULL)
    assert invocation.error
    assert invocation.response["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in invocation.response["errorMessage"]


def test_a_build_artifact_missing_a_dependency_fails_its_init(
    local: LocalAws, tmp_path: Path
) -> None:
    """The artifact gets only what Lambda's runtime provides: Powertools must be packaged."""
    artifact = tmp_path / "GetItemFunction"
    (artifact / "app").mkdir(parents=True)
    for source in (ROOT / "src" / "app").rglob("*.py"):
        target = artifact / "app" / source.relative_to(ROOT / "src" / "app")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
    function = local.function("GetItemFunction")
    (invocation,) = execution_environment.run(
        function, local.aws, [load_event("GetItemFunction/found")],
        code=Code(artifact, from_build=True), variables=dict(function.environment),
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert invocation.error
    assert invocation.response["errorType"] == "Runtime.ImportModuleError"
    assert "aws_lambda_powertools" in invocation.response["errorMessage"]


def test_the_provisioned_copy_drops_only_what_lambda_or_moto_own(local: LocalAws) -> None:
    deployment = local.deployment
    created = set(deployment.resources)
    for logical_id, kind in deployment.resource_types.items():
        if (
            kind.startswith(("AWS::DynamoDB::", "AWS::SQS::", "AWS::IAM::"))
            or kind == "AWS::S3::Bucket"
        ):
            assert logical_id in created, logical_id
        if kind.startswith("AWS::Lambda::"):
            assert logical_id not in created, logical_id
    for function_id in FUNCTIONS:  # every function's log group exists only for the function
        assert any(
            f"refers to {function_id}" in reason for reason in deployment.not_created.values()
        )
    # moto's CloudFormation creates no Cognito resource: the issuer is skipped, and says so; the
    # rest of the stack is provisioned all the same.
    issuer = {k for k, kind in deployment.resource_types.items() if kind.startswith("AWS::Cognito")}
    assert issuer == {
        "ItemsUserPool",
        "ItemsResourceServer",
        "ItemsUserPoolDomain",
        "MachineClient",
    }
    for logical_id in issuer:
        assert logical_id not in created
        assert "moto's CloudFormation cannot create it" in deployment.not_created[logical_id]


def test_only_the_copy_lets_the_runner_assume_the_function_roles(local: LocalAws) -> None:
    iam = local.aws.client("iam")
    role = local.deployment.resources["GetItemFunctionRole"]
    trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s.get("Sid") for s in trust] == [None, "LocalInvokeRunnerPlaysLambda"]

    translated = sam_template.translate(sam_template.load())
    before = copy.deepcopy(translated)
    local_template.build(translated, "any-stack", {"AWS::IAM::Role"})
    assert translated == before  # what CloudFormation would deploy keeps its own trust policy
    deployed_trust = translated["Resources"]["GetItemFunctionRole"]["Properties"]
    principals = [s["Principal"] for s in deployed_trust["AssumeRolePolicyDocument"]["Statement"]]
    assert principals == [{"Service": ["lambda.amazonaws.com"]}]


def test_make_aws_writes_an_env_json_for_sam_local_invoke(local: LocalAws) -> None:
    env_json = serve_aws.sam_env_vars(local)
    port = local.aws.endpoint_url.rsplit(":", 1)[1]
    assert env_json["Parameters"] == {"AWS_ENDPOINT_URL": f"http://host.docker.internal:{port}"}
    for function_id, function in local.deployment.functions.items():
        assert env_json[function_id] == function.environment
    assert env_json["GetItemFunction"]["TABLE_NAME"] == local.deployment.resources["ItemsTable"]


def test_alarms_are_put_by_the_embedded_aws_and_codedeploy_is_skipped_with_its_reason(
    local: LocalAws,
) -> None:
    """moto's CloudFormation creates the topic and its key, CloudWatch's API the alarms (moto's
    CloudFormation cannot), with every value the stack resolves; CodeDeploy is named as skipped."""
    deployment = local.deployment
    alarms = {
        k for k, kind in deployment.resource_types.items() if kind == "AWS::CloudWatch::Alarm"
    }
    assert set(deployment.created_directly) == alarms
    described = {
        alarm["AlarmName"]: alarm
        for page in local.aws.client("cloudwatch").get_paginator("describe_alarms").paginate()
        for alarm in page["MetricAlarms"]
    }
    topic = deployment.resources["AlarmTopic"]
    for logical_id in alarms:
        alarm = described[deployment.created_directly[logical_id]]
        assert alarm["AlarmActions"] == alarm["OKActions"] == [topic], logical_id
        assert isinstance(alarm["Threshold"], float)
    errors = described[deployment.created_directly["GetItemErrorsAlarm"]]
    # The name the runner gives the function, so the alarm watches what the local function is.
    assert errors["Dimensions"] == [
        {"Name": "FunctionName", "Value": deployment.functions["GetItemFunction"].name}
    ]
    dead_letters = described[deployment.created_directly["ExportDeadLetterQueueAlarm"]]
    queue_url = deployment.resources["ExportDeadLetterQueue"]
    assert dead_letters["Dimensions"] == [
        {"Name": "QueueName", "Value": queue_url.rsplit("/", 1)[1]}
    ]
    key = deployment.resources["AlarmTopicKey"]
    attributes = local.aws.client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]
    assert attributes["KmsMasterKeyId"] == key
    assert local.aws.client("kms").get_key_rotation_status(KeyId=key)["KeyRotationEnabled"]
    tags = local.aws.client("kms").list_resource_tags(KeyId=key)["Tags"]
    assert {"TagKey": "stack-name", "TagValue": deployment.stack_name} in tags
    for kind in ("AWS::CodeDeploy::Application", "AWS::CodeDeploy::DeploymentGroup"):
        skipped = [k for k, t in deployment.resource_types.items() if t == kind]
        assert skipped, kind
        for logical_id in skipped:
            assert (
                deployment.not_created[logical_id]
                == f"{kind}: moto's CloudFormation cannot create it"
            )


def test_an_update_deletes_the_alarms_the_template_no_longer_has_and_only_this_stacks(
    local: LocalAws,
) -> None:
    def without_throttles_alarm(translated: dict[str, Any]) -> None:
        del translated["Resources"]["GetItemThrottlesAlarm"]

    def names(stack: LocalAws) -> set[str]:
        alarms = local.aws.client("cloudwatch").describe_alarms()["MetricAlarms"]
        return {a["AlarmName"] for a in alarms} & set(stack.deployment.created_directly.values())

    first = local_lambda.provision_more(local, "alarms-update")
    assert len(names(first)) == len(first.deployment.created_directly)
    removed = first.deployment.created_directly["GetItemThrottlesAlarm"]

    updated = local_lambda.provision_more(local, "alarms-update", without_throttles_alarm)

    assert "GetItemThrottlesAlarm" not in updated.deployment.created_directly
    existing = {
        a["AlarmName"] for a in local.aws.client("cloudwatch").describe_alarms()["MetricAlarms"]
    }
    assert removed not in existing
    assert set(updated.deployment.created_directly.values()) <= existing
    # Another stack's alarms, the module's own, are left alone.
    assert set(local.deployment.created_directly.values()) <= existing
