"""How the service ships: CI/CD workflow, the deploy role it assumes, hooks, make targets, locks.

Offline and without AWS: the workflow is checked against GitHub's schema (vendored by
check-jsonschema) and for what it must do; the bootstrap template is linted, and its deploy role's
policies are evaluated here for what `sam deploy` of template.yaml needs and for what it must not
allow.
"""

import functools
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.api import ManualArgs, lint
from cfnlint.data import AdditionalSpecs
from cfnlint.helpers import load_resource
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from tests.conftest import REGION
from tools.e2e.deployed import IAM_ACTIONS, SMOKE_IAM_ACTIONS
from tools.emulator import sam_template

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
PIPELINE = WORKFLOWS / "pipeline.yml"
BOOTSTRAP = ROOT / "deploy" / "bootstrap.yaml"
PRE_COMMIT = ROOT / ".pre-commit-config.yaml"
BIN = Path(sys.executable).parent
ACCOUNT = "123456789012"
REPOSITORY = "example-org/items-service"
PARTITION = "aws"
PROVIDER = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
SAMCONFIG = tomllib.loads((ROOT / "samconfig.toml").read_text())
# GitHub environment -> samconfig.toml environment (dev is [default]).
CONFIG_ENVS = {"dev": "default", "prod": "prod"}
DEPLOY_JOBS = {"dev": "deploy-dev", "prod": "deploy-prod"}
BUILT_TEMPLATE = ".aws-sam/build/template.yaml"


# --- The workflow ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    document: dict[Any, Any] = yaml.safe_load(PIPELINE.read_text())
    # YAML 1.1 reads the key `on` as True.
    document["on"] = document.pop(True, document.get("on"))
    return document


def _runs(job: dict[str, Any]) -> list[str]:
    return [" ".join(step["run"].split()) for step in job["steps"] if "run" in step]


def _uses(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in job["steps"] if step.get("uses", "").startswith(f"{action}@")]


def test_every_workflow_matches_githubs_schema() -> None:
    files = sorted(WORKFLOWS.glob("*.y*ml"))
    assert PIPELINE in files
    result = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_pull_requests_and_main_trigger_it(workflow: dict[str, Any]) -> None:
    assert set(workflow["on"]) == {"pull_request", "push"}
    assert workflow["on"]["push"] == {"branches": ["main"]}


def test_the_test_job_runs_exactly_make_test(workflow: dict[str, Any]) -> None:
    assert _runs(workflow["jobs"]["test"]) == ["make test"]


def test_the_build_job_lints_and_builds_with_the_projects_versions(
    workflow: dict[str, Any], template: dict[str, Any]
) -> None:
    job = workflow["jobs"]["build"]
    assert _runs(job) == ["sam validate --lint", "sam build"]
    makefile = (ROOT / "Makefile").read_text()
    sam_version = re.search(r"^SAM_CLI_VERSION := (\S+)$", makefile, re.MULTILINE)
    assert sam_version is not None
    assert workflow["env"]["SAM_CLI_VERSION"] == sam_version.group(1)
    runtime = template["Globals"]["Function"]["Runtime"]
    assert f"python{workflow['env']['PYTHON_VERSION']}" == runtime


def test_one_build_is_what_every_environment_deploys(workflow: dict[str, Any]) -> None:
    (upload,) = _uses(workflow["jobs"]["build"], "actions/upload-artifact")
    assert upload["with"]["path"] == ".aws-sam/build"
    for job_id in DEPLOY_JOBS.values():
        job = workflow["jobs"][job_id]
        assert not any(run.startswith("sam build") for run in _runs(job)), job_id
        (download,) = _uses(job, "actions/download-artifact")
        assert download["with"] == {"name": upload["with"]["name"], "path": ".aws-sam/build"}


@pytest.mark.parametrize("environment", DEPLOY_JOBS)
def test_deploys_use_the_samconfig_environment_without_prompts(
    workflow: dict[str, Any], environment: str
) -> None:
    job = workflow["jobs"][DEPLOY_JOBS[environment]]
    (deploy,) = [run for run in _runs(job) if run.startswith("sam deploy")]
    config_env = CONFIG_ENVS[environment]
    assert deploy.split() == [
        "sam",
        "deploy",
        "--config-env",
        config_env,
        "--template-file",
        BUILT_TEMPLATE,
        "--no-confirm-changeset",
        "--no-fail-on-empty-changeset",
    ]
    assert SAMCONFIG[config_env]["deploy"]["parameters"]["parameter_overrides"].startswith(
        f"Stage={environment}"
    )


@pytest.mark.parametrize("environment", DEPLOY_JOBS)
def test_deploys_assume_the_environments_role_with_oidc_only(
    workflow: dict[str, Any], environment: str
) -> None:
    job = workflow["jobs"][DEPLOY_JOBS[environment]]
    assert job["environment"] == environment
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    credentials, *after = _uses(job, "aws-actions/configure-aws-credentials")
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    assert not {"aws-access-key-id", "aws-secret-access-key"} & set(credentials["with"])
    assert [step["with"]["role-to-assume"] for step in after] == (
        ["${{ vars.AWS_E2E_ROLE_ARN }}"] if environment == "prod" else []
    ), "only prod's smoke tests share the deploy job, with their own role"


def _steps_after(job: dict[str, Any], step_run: str) -> list[dict[str, Any]]:
    runs = [" ".join(step.get("run", "").split()) for step in job["steps"]]
    return job["steps"][runs.index(step_run) + 1 :]


def test_the_end_to_end_tests_run_against_dev_before_prod_may_be_approved(
    workflow: dict[str, Any],
) -> None:
    jobs = workflow["jobs"]
    job = jobs["e2e-dev"]
    assert job["needs"] == ["deploy-dev"]
    assert jobs["deploy-prod"]["needs"] == ["e2e-dev"]
    assert job["if"] == jobs["deploy-dev"]["if"]
    assert job["environment"] == "dev"
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert job["concurrency"] == jobs["deploy-dev"]["concurrency"], "no deploy during the tests"
    (credentials,) = _uses(job, "aws-actions/configure-aws-credentials")
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_E2E_ROLE_ARN }}"
    assert _runs(job) == ["make e2e ENV=dev"]


def test_the_smoke_tests_run_against_prod_after_its_deploy_with_the_end_to_end_role(
    workflow: dict[str, Any],
) -> None:
    job = workflow["jobs"]["deploy-prod"]
    (deploy,) = [run for run in _runs(job) if run.startswith("sam deploy")]
    after = _steps_after(job, deploy)
    (credentials,) = [
        step for step in after if "configure-aws-credentials@" in step.get("uses", "")
    ]
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_E2E_ROLE_ARN }}"
    assert after.index(credentials) < len(after) - 1
    assert after[-1] == {"run": "make e2e ENV=prod SMOKE=1"}


def test_no_stored_aws_keys_anywhere() -> None:
    text = PIPELINE.read_text()
    for forbidden in ("aws-access-key-id", "aws-secret-access-key", "secrets."):
        assert forbidden not in text


def test_only_the_deploy_jobs_may_request_an_oidc_token(workflow: dict[str, Any]) -> None:
    assert workflow["permissions"] == {"contents": "read"}
    for job_id, job in workflow["jobs"].items():
        if job_id not in {*DEPLOY_JOBS.values(), "e2e-dev"}:
            assert "permissions" not in job, job_id


def test_deploys_run_only_for_main_and_prod_waits_for_dev(workflow: dict[str, Any]) -> None:
    jobs = workflow["jobs"]
    assert set(jobs["deploy-dev"]["needs"]) == {"test", "build"}
    assert jobs["deploy-prod"]["needs"] == ["e2e-dev"]
    assert jobs["e2e-dev"]["needs"] == ["deploy-dev"]
    for job_id in DEPLOY_JOBS.values():
        condition = jobs[job_id]["if"]
        assert "github.event_name == 'push'" in condition
        assert "github.ref == 'refs/heads/main'" in condition


def test_runs_queue_and_only_pull_requests_cancel(workflow: dict[str, Any]) -> None:
    concurrency = workflow["concurrency"]
    assert "github.ref" in concurrency["group"]
    assert concurrency["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    for environment, job_id in DEPLOY_JOBS.items():
        assert workflow["jobs"][job_id]["concurrency"] == {
            "group": f"deploy-{environment}",
            "cancel-in-progress": False,
        }


def test_every_action_is_pinned_to_a_commit() -> None:
    uses = [line.strip() for line in PIPELINE.read_text().splitlines() if "uses:" in line]
    assert uses
    pinned = re.compile(r"^- uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+(\.\d+)*$")
    assert [line for line in uses if not pinned.match(line)] == []


def test_credentials_region_falls_back_to_the_stacks_region(workflow: dict[str, Any]) -> None:
    fallback = re.search(r"\|\| '([a-z0-9-]+)'", workflow["env"]["AWS_REGION"])
    assert fallback is not None
    for config_env in CONFIG_ENVS.values():
        assert SAMCONFIG[config_env]["global"]["parameters"]["region"] == fallback.group(1)


# --- The deploy role (deploy/bootstrap.yaml) ------------------------------------------------------


def test_bootstrap_is_lint_clean() -> None:
    matches = lint(BOOTSTRAP.read_text(), regions=[REGION], config=ManualArgs(regions=[REGION]))
    assert [f"{m.rule.id} {m.message} ({m.linenumber})" for m in matches] == []


def _condition(node: Any, conditions: dict[str, Any], parameters: dict[str, str]) -> bool:
    (function, argument), *_ = node.items()
    if function == "Fn::Equals":
        left, right = (_resolve(value, conditions, parameters) for value in argument)
        return bool(left == right)
    if function == "Condition":
        return _condition(conditions[argument], conditions, parameters)
    if function == "Fn::Not":
        return not _condition(argument[0], conditions, parameters)
    raise AssertionError(f"condition function not modelled here: {function}")


_NO_VALUE = object()
"""``AWS::NoValue``: an ``Fn::If`` branch that leaves its item out of the list."""


def _resolve(node: Any, conditions: dict[str, Any], parameters: dict[str, str]) -> Any:
    """The bootstrap template's values for these parameters (the intrinsics it uses)."""
    names = parameters | {
        "AWS::NoValue": _NO_VALUE,
        "AWS::Partition": PARTITION,
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "GitHubOidcProvider": PROVIDER,
    }
    if "AppStackName" in parameters:
        names["StackRolesBoundary"] = _boundary_arn(parameters["AppStackName"])
    if isinstance(node, list):
        resolved = [_resolve(item, conditions, parameters) for item in node]
        return [item for item in resolved if item is not _NO_VALUE]
    if not isinstance(node, dict):
        return node
    if len(node) == 1 and next(iter(node)).startswith(("Fn::", "Ref")):
        (function, argument), *_ = node.items()
        if function == "Ref":
            return names[argument]
        if function == "Fn::Sub":
            return re.sub(r"\$\{([\w:]+)\}", lambda match: names[match.group(1)], argument)
        if function == "Fn::If":
            name, when_true, when_false = argument
            holds = _condition(conditions[name], conditions, parameters)
            return _resolve(when_true if holds else when_false, conditions, parameters)
        raise AssertionError(f"intrinsic not modelled here: {function}")
    return {key: _resolve(value, conditions, parameters) for key, value in node.items()}


def _boundary_arn(stack_name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:policy/{stack_name}-roles-boundary"


@functools.cache
def _bootstrap() -> dict[str, Any]:
    return sam_template.load(BOOTSTRAP)


def _deploy_role(**overrides: str) -> dict[str, Any]:
    """The DeployRole resource, resolved, for the template's defaults plus these parameters."""
    return _role("DeployRole", **overrides)


def _role(logical_id: str, **overrides: str) -> dict[str, Any]:
    """A role of the bootstrap, resolved, for the template's defaults plus these parameters."""
    template = _bootstrap()
    parameters = {
        name: str(spec["Default"])
        for name, spec in template["Parameters"].items()
        if "Default" in spec
    }
    parameters |= {"GitHubRepository": REPOSITORY} | overrides
    resolved: dict[str, Any] = _resolve(
        template["Resources"][logical_id], template["Conditions"], parameters
    )
    return resolved


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for policy in role["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _wildcard(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    regex = "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern
    )
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


_OPERATORS = {
    "StringEquals": lambda expected, actual: expected == actual,
    "ArnEquals": lambda expected, actual: expected == actual,
    "StringLike": _wildcard,
    "ArnLike": _wildcard,
    # Multivalued keys (dynamodb:LeadingKeys) hold one value in every request modelled here.
    "ForAllValues:StringLike": _wildcard,
}


def _conditions_hold(conditions: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, tests in conditions.items():
        assert operator in _OPERATORS, f"condition operator not modelled here: {operator}"
        for key, expected in tests.items():
            if key not in context or not any(
                _OPERATORS[operator](value, context[key]) for value in _as_list(expected)
            ):
                return False
    return True


def _allowed(
    statements: list[dict[str, Any]],
    action: str,
    resource: str | None = None,
    context: dict[str, str] | None = None,
) -> bool:
    """IAM's evaluation of identity (resource None) or trust (resource ignored) statements."""
    allowed = False
    for statement in statements:
        if not any(_wildcard(p, action, ignore_case=True) for p in _as_list(statement["Action"])):
            continue
        if resource is not None and not any(
            _wildcard(p, resource) for p in _as_list(statement["Resource"])
        ):
            continue
        if not _conditions_hold(statement.get("Condition", {}), context or {}):
            continue
        if statement["Effect"] == "Deny":
            return False
        allowed = True
    return allowed


def _token(sub: str, aud: str = "sts.amazonaws.com") -> dict[str, str]:
    return {
        "token.actions.githubusercontent.com:sub": sub,
        "token.actions.githubusercontent.com:aud": aud,
    }


@pytest.mark.parametrize("role_id", ["DeployRole", "EndToEndRole"])
@pytest.mark.parametrize("create_provider", ["true", "false"])
@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_only_the_repositorys_environment_may_assume_the_role(
    environment: str, create_provider: str, role_id: str
) -> None:
    role = _role(role_id, GitHubEnvironment=environment, CreateOidcProvider=create_provider)
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [statement["Principal"] for statement in trust] == [{"Federated": PROVIDER}]
    assume = "sts:AssumeRoleWithWebIdentity"
    own = f"repo:{REPOSITORY}:environment:{environment}"
    assert _allowed(trust, assume, context=_token(own))
    other = "prod" if environment == "dev" else "dev"
    for sub in (
        f"repo:{REPOSITORY}:environment:{other}",
        f"repo:{REPOSITORY}:ref:refs/heads/main",
        f"repo:{REPOSITORY}:pull_request",
        f"repo:example-org/fork-of-items:environment:{environment}",
        f"repo:{REPOSITORY}:environment:{environment}-copy",
    ):
        assert not _allowed(trust, assume, context=_token(sub)), sub
    assert not _allowed(trust, assume, context=_token(own, aud="https://github.com/example-org"))
    assert not _allowed(trust, "sts:AssumeRole", context=_token(own))


def _translated_templates() -> list[dict[str, Any]]:
    """template.yaml as CloudFormation gets it, for each way a team may set its parameters."""
    template = sam_template.load()
    parameter_sets = [
        {},
        {"Stage": "prod", "LogRetentionDays": "365"},
        {"EnableSnapStart": "true"},
        {"WriterRoleArn": "arn:aws:iam::210987654321:role/exports-writer"},
        {"WriterViaRoleArn": "arn:aws:iam::210987654321:role/exports-hub"},
    ]
    declared = template["Parameters"]
    return [
        sam_template.translate(template, {k: v for k, v in p.items() if k in declared})
        for p in parameter_sets
    ]


@pytest.fixture(scope="module")
def translated_templates() -> list[dict[str, Any]]:
    return _translated_templates()


# What the resource types' CloudFormation handlers may call, that deploying this stack does not
# need: each pattern names a feature template.yaml does not use, or data the role must not touch.
NOT_NEEDED = {
    "kms:*Grant*": "the alarm topic's key grants through its key policy, never a grant",
    "kms:Decrypt": "data keys: only S3, DynamoDB and SQS with a customer managed key need them",
    "kms:Encrypt": "data keys: only S3, DynamoDB and SQS with a customer managed key need them",
    "kms:GenerateDataKey*": "data keys: only a customer managed key on a data resource needs them",
    "kms:ListAliases": "tables and queues use AWS owned keys, named by no alias",
    "kms:*Alias": "the alarm topic's key has no alias",
    "kms:ReplicateKey": "no multi-Region keys",
    "kms:ReEncrypt*": "the user pool names no KMS key (no custom sender); nothing re-encrypts",
    "kms:*ImportKeyMaterial*": "no imported key material",
    "kinesis:*": "no Kinesis streams",
    "dynamodb:*KinesisStreamingDestination": "no Kinesis streaming from the table",
    "dynamodb:ImportTable": "no table imports",
    "dynamodb:*TableReplica": "no global tables",
    "dynamodb:*ResourcePolicy": "no table resource policy (GetResourcePolicy is read-only)",
    "dynamodb:UpdateContributorInsights": "no contributor insights",
    "dynamodb:*Item": "items are data: the deploy role must not read or write them",
    "dynamodb:Query": "data",
    "dynamodb:Scan": "data",
    "iam:CreateServiceLinkedRole": "no replicas or autoscaling that need one",
    "iam:DeleteRolePermissionsBoundary": "taking the boundary off a role is what it must not do",
    "ec2:*": "functions run outside a VPC",
    "elasticfilesystem:*": "no file systems",
    "lambda:*CodeSigningConfig": "no code signing (GetFunctionCodeSigningConfig is read-only)",
    "lambda:GetLayerVersion": "no layers",
    "lambda:*ProvisionedConcurrencyConfig": "no provisioned concurrency",
    "lambda:*FunctionScalingConfig": "no Lambda managed instances",
    "lambda:PassCapacityProvider": "no Lambda managed instances",
    "codedeploy:RegisterOnPremisesInstance": "Lambda deployments only: no on-premises instances",
    "sns:PutDataProtectionPolicy": "no SNS data protection policy (GetDataProtectionPolicy reads)",
    "logs:CreateLogStream": "only DynamoDB imports write logs through CloudFormation",
    "logs:PutLogEvents": "only DynamoDB imports write logs through CloudFormation",
    "logs:DescribeLogStreams": "only DynamoDB imports write logs through CloudFormation",
    "logs:*KmsKey": "log groups use the default encryption",
    "logs:*DataProtectionPolicy": "no data protection policies",
    "logs:*IndexPolicy": "no field indexes",
    "logs:*ResourcePolicy": "no log resource policies",
    "logs:CreateLogDelivery": "no vended log deliveries",
    "logs:PutBearerTokenAuthentication": "no bearer token authentication",
    "logs:PutLogGroupDeletionProtection": "no log group deletion protection",
    "firehose:*": "no Firehose",
    "s3tables:*": "no S3 tables",
    "s3:*BucketMetadata*": "no S3 metadata tables",
    "s3files:*": "no S3 file systems",
    "s3:*Accelerate*": "bucket features template.yaml does not use",
    "s3:*Analytics*": "bucket features template.yaml does not use",
    "s3:*Inventory*": "bucket features template.yaml does not use",
    "s3:*Metrics*": "bucket features template.yaml does not use",
    "s3:*Replication*": "bucket features template.yaml does not use",
    "s3:*IntelligentTiering*": "bucket features template.yaml does not use",
    "s3:*Website": "bucket features template.yaml does not use",
    "s3:*Cors": "bucket features template.yaml does not use",
    "s3:PutBucketNotification": "bucket features template.yaml does not use",
    "s3:PutBucketLogging": "bucket features template.yaml does not use",
    "s3:PutBucketAbac": "bucket features template.yaml does not use",
    "s3:*ObjectLockConfiguration": "bucket features template.yaml does not use",
    "s3:*Acl": "ACLs are disabled (BucketOwnerEnforced)",
    "s3:DeleteObject": "objects are data: the deploy role must not delete exports",
    "iam:PassRole": "checked on its own: only the stack's roles, only to Lambda",
    "cloudfront:*": "the user pool's domain is a Cognito prefix domain, not a custom one",
}


IAM_SERVICES: dict[str, Any] = load_resource(AdditionalSpecs, "Policies.json")


def _iam_knows(service: str, name: str) -> bool:
    """Handlers also list API names that are no IAM action; cfn-lint's IAM data tells them apart."""
    return name.lower() in IAM_SERVICES.get(service, {}).get("Actions", {})


def test_the_role_may_deploy_every_resource_type_of_the_stack(
    translated_templates: list[dict[str, Any]],
) -> None:
    statements = _statements(_deploy_role())
    types = {
        resource["Type"]
        for translated in translated_templates
        for resource in translated["Resources"].values()
    }
    missing = {}
    for resource_type in sorted(types):
        handlers = PROVIDER_SCHEMA_MANAGER.get_resource_schema(REGION, resource_type).schema[
            "handlers"
        ]
        for operation in ("create", "read", "update", "delete"):
            for action in handlers.get(operation, {}).get("permissions", []):
                service, _, name = action.partition(":")
                if not _iam_knows(service, name):
                    continue
                if any(_wildcard(p, action, ignore_case=True) for p in NOT_NEEDED):
                    continue
                if not any(
                    _wildcard(pattern, action, ignore_case=True)
                    for statement in statements
                    if statement["Effect"] == "Allow"
                    for pattern in _as_list(statement["Action"])
                ):
                    missing.setdefault(action, resource_type)
    assert not missing, "\n".join(f"{a} ({t})" for a, t in sorted(missing.items()))


DEV = "items-service-dev"
PROD = "items-service-prod"
ARN = f"arn:aws:{{}}:{REGION}:{ACCOUNT}:"
ELSEWHERE = "us-west-2" if REGION == "us-east-1" else "us-east-1"  # another region
ROLE = f"arn:aws:iam::{ACCOUNT}:role/"
ARTIFACTS = "arn:aws:s3:::aws-sam-cli-managed-default-samclisourcebucket-1a2b3c4d5e6f"
POOL = ARN.format("cognito-idp") + f"userpool/{REGION}_AbC123"
LAMBDA_ROLE = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
BOUNDED = {"iam:PermissionsBoundary": _boundary_arn(DEV)}
SCOPE = [
    # CloudFormation: its own stack, SAM's artifacts stack and the transform; never delete.
    ("cloudformation:CreateChangeSet", ARN.format("cloudformation") + f"stack/{DEV}/1", {}, True),
    (
        "cloudformation:ExecuteChangeSet",
        ARN.format("cloudformation") + f"stack/{PROD}/1",
        {},
        False,
    ),
    (
        "cloudformation:CreateChangeSet",
        f"arn:aws:cloudformation:{REGION}:aws:transform/Serverless-2016-10-31",
        {},
        True,
    ),
    ("cloudformation:DeleteStack", ARN.format("cloudformation") + f"stack/{DEV}/1", {}, False),
    # Artifacts: under its own prefix only.
    ("s3:PutObject", f"{ARTIFACTS}/{DEV}/0a1b2c.template", {}, True),
    ("s3:PutObject", f"{ARTIFACTS}/{PROD}/0a1b2c.template", {}, False),
    ("s3:ListBucket", ARTIFACTS, {"s3:prefix": f"{DEV}/0a1b2c"}, True),
    ("s3:ListBucket", ARTIFACTS, {"s3:prefix": f"{PROD}/0a1b2c"}, False),
    # The exports bucket: its configuration, never its data.
    ("s3:PutBucketPolicy", f"arn:aws:s3:::{DEV}-exportsbucket-1a2b", {}, True),
    ("s3:PutBucketPolicy", f"arn:aws:s3:::{PROD}-exportsbucket-1a2b", {}, False),
    ("s3:GetObject", f"arn:aws:s3:::{DEV}-exportsbucket-1a2b/exports/item.json", {}, False),
    ("s3:PutObject", f"arn:aws:s3:::{DEV}-exportsbucket-1a2b/exports/item.json", {}, False),
    # Roles: the stack's own; never itself; managed policies SAM attaches; passed to Lambda only.
    # Their rights only within the stack's boundary: no role of more rights to pass to Lambda.
    ("iam:CreateRole", f"{ROLE}{DEV}-GetItemFunctionRole-1A2B", BOUNDED, True),
    ("iam:CreateRole", f"{ROLE}{DEV}-GetItemFunctionRole-1A2B", {}, False),
    ("iam:CreateRole", f"{ROLE}{DEV}-F-1A2B", {"iam:PermissionsBoundary": ADMIN}, False),
    ("iam:PutRolePolicy", f"{ROLE}{DEV}-exports-writer", BOUNDED, True),
    ("iam:PutRolePolicy", f"{ROLE}{DEV}-exports-writer", {}, False),
    ("iam:PutRolePermissionsBoundary", f"{ROLE}{DEV}-F-1A2B", BOUNDED, True),
    (
        "iam:PutRolePermissionsBoundary",
        f"{ROLE}{DEV}-F-1A2B",
        {"iam:PermissionsBoundary": ADMIN},
        False,
    ),
    ("iam:DeleteRolePermissionsBoundary", f"{ROLE}{DEV}-F-1A2B", BOUNDED, False),
    ("iam:CreateRole", f"{ROLE}{PROD}-GetItemFunctionRole-1A2B", BOUNDED, False),
    (
        "iam:CreateRole",
        f"{ROLE}{PROD}-F-1A2B",
        {"iam:PermissionsBoundary": _boundary_arn(PROD)},
        False,
    ),
    ("iam:PutRolePolicy", f"{ROLE}github-deploy-{DEV}", BOUNDED, False),
    (
        "iam:AttachRolePolicy",
        f"{ROLE}{DEV}-F-1A2B",
        {"iam:PolicyARN": LAMBDA_ROLE} | BOUNDED,
        True,
    ),
    ("iam:AttachRolePolicy", f"{ROLE}{DEV}-F-1A2B", {"iam:PolicyARN": LAMBDA_ROLE}, False),
    ("iam:AttachRolePolicy", f"{ROLE}{DEV}-F-1A2B", {"iam:PolicyARN": ADMIN} | BOUNDED, False),
    ("iam:PassRole", f"{ROLE}{DEV}-F-1A2B", {"iam:PassedToService": "lambda.amazonaws.com"}, True),
    ("iam:PassRole", f"{ROLE}{DEV}-F-1A2B", {"iam:PassedToService": "ec2.amazonaws.com"}, False),
    (
        "iam:PassRole",
        f"{ROLE}github-deploy-{DEV}",
        {"iam:PassedToService": "lambda.amazonaws.com"},
        False,
    ),
    # Functions, their event source mappings, logs, table and queues: this stack's, this region's.
    ("lambda:UpdateFunctionCode", ARN.format("lambda") + f"function:{DEV}-F-1A2B", {}, True),
    ("lambda:UpdateFunctionCode", ARN.format("lambda") + f"function:{PROD}-F-1A2B", {}, False),
    (
        "lambda:UpdateFunctionCode",
        f"arn:aws:lambda:{ELSEWHERE}:{ACCOUNT}:function:{DEV}-F-1A2B",
        {},
        False,
    ),
    ("lambda:InvokeFunction", ARN.format("lambda") + f"function:{DEV}-F-1A2B", {}, False),
    (
        "lambda:CreateEventSourceMapping",
        "*",
        {"lambda:FunctionArn": ARN.format("lambda") + f"function:{DEV}-F-1A2B:live"},
        True,
    ),
    (
        "lambda:CreateEventSourceMapping",
        "*",
        {"lambda:FunctionArn": ARN.format("lambda") + f"function:{PROD}-F-1A2B:live"},
        False,
    ),
    ("dynamodb:UpdateTable", ARN.format("dynamodb") + f"table/{DEV}-ItemsTable-1A2B", {}, True),
    ("dynamodb:DeleteTable", ARN.format("dynamodb") + f"table/{PROD}-ItemsTable-1A2B", {}, False),
    ("dynamodb:GetItem", ARN.format("dynamodb") + f"table/{DEV}-ItemsTable-1A2B", {}, False),
    ("sqs:SetQueueAttributes", ARN.format("sqs") + f"{DEV}-ExportQueue-1A2B", {}, True),
    ("sqs:ReceiveMessage", ARN.format("sqs") + f"{DEV}-ExportQueue-1A2B", {}, False),
    (
        "logs:PutRetentionPolicy",
        ARN.format("logs") + f"log-group:/aws/lambda/{DEV}-F-1A2B",
        {},
        True,
    ),
    ("logs:DeleteLogGroup", ARN.format("logs") + f"log-group:/aws/lambda/{PROD}-F-1A2B", {}, False),
    # The token issuer: user pools created with the stack's tag, managed only while they carry it;
    # never the callers in them, nor a client's secret beyond what CloudFormation reads.
    ("cognito-idp:CreateUserPool", "*", {"aws:RequestTag/stack-name": DEV}, True),
    ("cognito-idp:CreateUserPool", "*", {"aws:RequestTag/stack-name": PROD}, False),
    ("cognito-idp:CreateUserPool", "*", {}, False),
    ("cognito-idp:CreateUserPoolClient", POOL, {"aws:ResourceTag/stack-name": DEV}, True),
    ("cognito-idp:DeleteUserPool", POOL, {"aws:ResourceTag/stack-name": DEV}, True),
    ("cognito-idp:DeleteUserPool", POOL, {"aws:ResourceTag/stack-name": PROD}, False),
    ("cognito-idp:UpdateUserPoolClient", POOL, {}, False),
    ("cognito-idp:AdminCreateUser", POOL, {"aws:ResourceTag/stack-name": DEV}, False),
    ("cognito-idp:AdminInitiateAuth", POOL, {"aws:ResourceTag/stack-name": DEV}, False),
    (
        "cognito-idp:CreateUserPoolDomain",
        f"arn:aws:cognito-idp:{ELSEWHERE}:{ACCOUNT}:userpool/{ELSEWHERE}_AbC123",
        {"aws:ResourceTag/stack-name": DEV},
        False,
    ),
    # Operations: the stack's alarms, topic, key and deployments; CodeDeploy gets only its roles.
    ("cloudwatch:PutMetricAlarm", ARN.format("cloudwatch") + f"alarm:{DEV}-A-1A2B", {}, True),
    ("cloudwatch:DeleteAlarms", ARN.format("cloudwatch") + f"alarm:{PROD}-A-1A2B", {}, False),
    ("sns:SetTopicAttributes", ARN.format("sns") + f"{DEV}-AlarmTopic-1A2B", {}, True),
    ("sns:DeleteTopic", ARN.format("sns") + f"{PROD}-AlarmTopic-1A2B", {}, False),
    ("sns:Publish", ARN.format("sns") + f"{DEV}-AlarmTopic-1A2B", {}, False),
    ("kms:CreateKey", "*", {"aws:RequestTag/stack-name": DEV}, True),
    ("kms:CreateKey", "*", {"aws:RequestTag/stack-name": PROD}, False),
    ("kms:CreateKey", "*", {}, False),
    (
        "kms:ScheduleKeyDeletion",
        ARN.format("kms") + "key/1234abcd-12ab-34cd-56ef-1234567890ab",
        {"aws:ResourceTag/stack-name": DEV},
        True,
    ),
    (
        "kms:ScheduleKeyDeletion",
        ARN.format("kms") + "key/1234abcd-12ab-34cd-56ef-1234567890ab",
        {"aws:ResourceTag/stack-name": PROD},
        False,
    ),
    ("kms:PutKeyPolicy", ARN.format("kms") + "key/1234abcd-12ab-34cd-56ef-1234567890ab", {}, False),
    ("kms:Decrypt", ARN.format("kms") + "key/1234abcd-12ab-34cd-56ef-1234567890ab", {}, False),
    (
        "codedeploy:CreateDeployment",
        ARN.format("codedeploy") + f"deploymentgroup:{DEV}-App-1A2B/{DEV}-G-1A2B",
        {},
        True,
    ),
    (
        "codedeploy:StopDeployment",
        ARN.format("codedeploy") + f"deploymentgroup:{PROD}-App-1A2B/{PROD}-G-1A2B",
        {},
        False,
    ),
    (
        "codedeploy:GetDeploymentConfig",
        ARN.format("codedeploy")
        + "deploymentconfig:CodeDeployDefault.LambdaCanary10Percent5Minutes",
        {},
        True,
    ),
    (
        "iam:PassRole",
        f"{ROLE}{DEV}-DeploymentRole-1A2B",
        {"iam:PassedToService": "codedeploy.amazonaws.com"},
        True,
    ),
    (
        "iam:PassRole",
        f"{ROLE}{PROD}-DeploymentRole-1A2B",
        {"iam:PassedToService": "codedeploy.amazonaws.com"},
        False,
    ),
]


@pytest.mark.parametrize(
    ("action", "resource", "context", "expected"),
    SCOPE,
    ids=[f"{'allow' if c[3] else 'deny'}-{c[0]}-{c[1].rsplit(':', 1)[-1]}" for c in SCOPE],
)
def test_the_role_acts_only_on_its_own_stack(
    action: str, resource: str, context: dict[str, str], expected: bool
) -> None:
    assert _allowed(_statements(_deploy_role()), action, resource, context) is expected


def test_resource_wildcards_only_where_iam_has_no_resource_to_name() -> None:
    for statement in _statements(_deploy_role()):
        if "*" in _as_list(statement["Resource"]):
            for action in _as_list(statement["Action"]):
                service, _, name = action.partition(":")
                assert IAM_SERVICES[service]["Actions"][name.lower()] == {}, action


def test_the_role_may_attach_the_managed_policies_sam_attaches(
    translated_templates: list[dict[str, Any]],
) -> None:
    statements = _statements(_deploy_role())
    attached = {
        arn
        for translated in translated_templates
        for resource in translated["Resources"].values()
        if resource["Type"] == "AWS::IAM::Role"
        for arn in _managed_policy_arns(resource)
    }
    assert attached
    for arn in attached:
        context = {"iam:PolicyARN": arn} | BOUNDED
        assert _allowed(statements, "iam:AttachRolePolicy", f"{ROLE}{DEV}-F-1A2B", context), arn


# The end-to-end role: the stack as a caller uses it, in dev its test items and what the exports
# produced, never the stack itself.
TABLE = ARN.format("dynamodb") + f"table/{DEV}-ItemsTable-1A2B"
BUCKET = f"arn:aws:s3:::{DEV}-exportsbucket-1a2b"
TAGGED = {"aws:ResourceTag/stack-name": DEV}
E2E_SMOKE_SCOPE = [
    ("cloudformation:DescribeStacks", ARN.format("cloudformation") + f"stack/{DEV}/1", {}, True),
    ("cloudformation:DescribeStacks", ARN.format("cloudformation") + f"stack/{PROD}/1", {}, False),
    ("cloudformation:UpdateStack", ARN.format("cloudformation") + f"stack/{DEV}/1", {}, False),
    ("cognito-idp:DescribeUserPoolClient", POOL, TAGGED, True),
    ("cognito-idp:DescribeUserPoolClient", POOL, {"aws:ResourceTag/stack-name": PROD}, False),
    ("cognito-idp:DescribeUserPoolClient", POOL, {}, False),
    ("cognito-idp:UpdateUserPoolClient", POOL, TAGGED, False),
    ("lambda:UpdateFunctionCode", ARN.format("lambda") + f"function:{DEV}-F-1A2B", {}, False),
    ("iam:PassRole", f"{ROLE}{DEV}-F-1A2B", {"iam:PassedToService": "lambda.amazonaws.com"}, False),
    ("dynamodb:GetItem", TABLE, {"dynamodb:LeadingKeys": "42"}, False),
]
E2E_WRITES = [
    ("dynamodb:PutItem", TABLE, {"dynamodb:LeadingKeys": "e2e-1a2b"}, True),
    ("dynamodb:DeleteItem", TABLE, {"dynamodb:LeadingKeys": "e2e-1a2b"}, True),
    ("dynamodb:PutItem", TABLE, {"dynamodb:LeadingKeys": "42"}, False),
    ("dynamodb:DeleteItem", TABLE, {"dynamodb:LeadingKeys": "42"}, False),
    (
        "dynamodb:PutItem",
        ARN.format("dynamodb") + f"table/{DEV}-ExportRunsTable-1A2B",
        {"dynamodb:LeadingKeys": "e2e-1a2b"},
        False,
    ),
    (
        "dynamodb:PutItem",
        ARN.format("dynamodb") + f"table/{PROD}-ItemsTable-1A2B",
        {"dynamodb:LeadingKeys": "e2e-1a2b"},
        False,
    ),
    ("sqs:SendMessage", ARN.format("sqs") + f"{DEV}-ExportQueue-1A2B", {}, True),
    ("sqs:SendMessage", ARN.format("sqs") + f"{DEV}-ExportTableQueue-1A2B", {}, False),
    ("sqs:SendMessage", ARN.format("sqs") + f"{DEV}-ExportDeadLetterQueue-1A2B", {}, False),
    ("sqs:ReceiveMessage", ARN.format("sqs") + f"{DEV}-ExportQueue-1A2B", {}, False),
    (
        "lambda:InvokeFunction",
        ARN.format("lambda") + f"function:{DEV}-ExportTableFunction-1A",
        {},
        True,
    ),
    (
        "lambda:InvokeFunction",
        ARN.format("lambda") + f"function:{DEV}-GetItemFunction-1A",
        {},
        False,
    ),
    (
        "lambda:InvokeFunction",
        ARN.format("lambda") + f"function:{PROD}-ExportTableFunction-1A",
        {},
        False,
    ),
    ("s3:GetObject", f"{BUCKET}/exports/e2e-1a2b/x.json", {}, True),
    ("s3:GetObject", f"{BUCKET}/other/x.json", {}, False),
    ("s3:GetObject", f"arn:aws:s3:::{PROD}-exportsbucket-1a2b/exports/x.json", {}, False),
    ("s3:ListBucket", BUCKET, {}, True),
    ("s3:PutObject", f"{BUCKET}/exports/e2e-1a2b/x.json", {}, False),
    ("s3:DeleteObject", f"{BUCKET}/exports/e2e-1a2b/x.json", {}, False),
]


@pytest.mark.parametrize(
    ("action", "resource", "context", "expected"),
    E2E_SMOKE_SCOPE + E2E_WRITES,
    ids=[
        f"{'allow' if c[3] else 'deny'}-{c[0]}-{c[1].rsplit(':', 1)[-1]}"
        for c in E2E_SMOKE_SCOPE + E2E_WRITES
    ],
)
def test_the_end_to_end_role_uses_the_stack_as_a_caller_and_writes_only_test_items(
    action: str, resource: str, context: dict[str, str], expected: bool
) -> None:
    assert _allowed(_statements(_role("EndToEndRole")), action, resource, context) is expected


def test_the_smoke_role_only_reads_the_outputs_and_the_machine_client() -> None:
    statements = _statements(_role("EndToEndRole", EndToEndTests="smoke"))
    for action, resource, context, expected in E2E_SMOKE_SCOPE:
        assert _allowed(statements, action, resource, context) is expected, action
    for action, resource, context, _ in E2E_WRITES:
        assert not _allowed(statements, action, resource, context), action


@pytest.mark.parametrize(("mode", "actions"), [("full", IAM_ACTIONS), ("smoke", SMOKE_IAM_ACTIONS)])
def test_the_end_to_end_role_grants_exactly_what_the_deployed_target_calls(
    mode: str, actions: frozenset[str]
) -> None:
    granted = {
        action
        for statement in _statements(_role("EndToEndRole", EndToEndTests=mode))
        for action in _as_list(statement["Action"])
    }
    assert granted == actions


def test_the_deploy_role_cannot_change_or_pass_the_end_to_end_role() -> None:
    e2e_role = f"{ROLE}{_role('EndToEndRole')['Properties']['RoleName']}"
    deploy = _statements(_deploy_role())
    for action in ("iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:DeleteRole"):
        assert not _allowed(deploy, action, e2e_role, BOUNDED), action
    assert not _allowed(
        deploy, "iam:PassRole", e2e_role, {"iam:PassedToService": "lambda.amazonaws.com"}
    )


# What the AWS managed policies the roles carry allow (their documented contents). The only one
# is the functions' logs: SAM's AWSLambdaSQSQueueExecutionRole, which would poll every queue of the
# account, no role carries (tests/infra/test_least_privilege.py); its poll is an inline statement.
MANAGED_POLICIES = {
    LAMBDA_ROLE: ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
}


def _managed_policy_arns(role: dict[str, Any]) -> list[str]:
    """A role's managed policies: SAM's roles name them literally, the template's own roles with
    ``${AWS::Partition}``."""
    return [_resolve(arn, {}, {}) for arn in role["Properties"].get("ManagedPolicyArns", [])]


def _boundary(stack_name: str) -> list[dict[str, Any]]:
    template = _bootstrap()
    policy = _resolve(
        template["Resources"]["StackRolesBoundary"],
        template["Conditions"],
        {"AppStackName": stack_name},
    )
    assert policy["Properties"]["ManagedPolicyName"] == f"{stack_name}-roles-boundary"
    return policy["Properties"]["PolicyDocument"]["Statement"]  # type: ignore[no-any-return]


def _example_arns(node: Any, resources: dict[str, Any]) -> list[str]:
    """The ARNs a policy's Resource takes in the dev stack (each branch of an Fn::If)."""

    def arn(logical_id: str) -> str:
        kind = resources[logical_id]["Type"]
        name = f"{DEV}-{logical_id}-1A2B"
        return {
            "AWS::DynamoDB::Table": ARN.format("dynamodb") + f"table/{name}",
            "AWS::SQS::Queue": ARN.format("sqs") + name,
            "AWS::S3::Bucket": f"arn:aws:s3:::{name.lower()}",
            "AWS::IAM::Role": f"{ROLE}{name}",
            "AWS::Lambda::Function": ARN.format("lambda") + f"function:{name}",
            "AWS::CloudWatch::Alarm": ARN.format("cloudwatch") + f"alarm:{name}",
        }[kind]

    names = {
        "AWS::Partition": PARTITION,
        "AWS::AccountId": ACCOUNT,
        "AWS::StackName": DEV,
        "AWS::Region": REGION,
    }
    if isinstance(node, str | list):  # a literal ARN, or a list of Resources
        members = [node] if isinstance(node, str) else node
        return [
            a for m in members for a in ([m] if isinstance(m, str) else _example_arns(m, resources))
        ]
    (function, argument), *_ = node.items()
    if function == "Fn::GetAtt":
        return [arn(argument[0])]
    if function == "Fn::Sub":
        return [
            re.sub(
                r"\$\{([\w:]+)(\.Arn)?\}",
                lambda match: (
                    arn(match.group(1))
                    if match.group(2)
                    else names.get(match.group(1), f"{DEV}-{match.group(1)}-1A2B")
                ),
                argument,
            )
        ]
    if function == "Fn::If":
        return _example_arns(argument[1], resources) + _example_arns(argument[2], resources)
    if function == "Ref":
        target = resources.get(argument, {})
        if target.get("Type") == "AWS::Lambda::Version":  # a function's new version
            return [arn(target["Properties"]["FunctionName"]["Ref"]) + ":7"]
        return ["arn:aws:iam::210987654321:role/exports-writer"]  # a parameter: another account's
    raise AssertionError(f"intrinsic not modelled here: {function}")


def _stack_role_rights(translated: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(role, action, resource) for every right a role of the stack uses."""
    resources = translated["Resources"]
    rights = []
    for role_id, role in resources.items():
        if role["Type"] != "AWS::IAM::Role":
            continue
        function_id = role_id.removesuffix("Role")
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                rights += [
                    (role_id, action, resource)
                    for action in _as_list(statement["Action"])
                    for resource in _example_arns(statement["Resource"], resources)
                ]
        events = resources.get(function_id, {}).get("Properties", {})
        for managed in _managed_policy_arns(role):
            for action in MANAGED_POLICIES[managed]:
                assert action.startswith("logs:"), action
                group = ARN.format("logs") + f"log-group:/aws/lambda/{DEV}-{function_id}-1A2B"
                rights.append((role_id, action, f"{group}:log-stream:2026/11/23/x"))
        assert events or role_id in {"WriterRole", "DeploymentRole"}, role_id
    return rights


def test_every_role_of_the_stack_fits_inside_its_boundary_and_uses_all_of_it() -> None:
    template = sam_template.load()
    boundary = _boundary(DEV)
    used = set()
    for parameters in ({}, {"WriterRoleArn": "arn:aws:iam::210987654321:role/exports-writer"}):
        translated = sam_template.translate(template, parameters)
        for role_id, action, resource in _stack_role_rights(translated):
            assert _allowed(boundary, action, resource), f"{role_id}: {action} on {resource}"
            used.add(action.lower())
    granted = {action.lower() for statement in boundary for action in _as_list(statement["Action"])}
    assert granted - used == set()
    assert not _allowed(boundary, "dynamodb:GetItem", ARN.format("dynamodb") + f"table/{PROD}-T-1")
    assert not _allowed(boundary, "s3:GetObject", f"arn:aws:s3:::{PROD}-exportsbucket-1a2b/x")
    # The hook and CodeDeploy act on this stack's functions and deployments only.
    assert not _allowed(
        boundary, "lambda:InvokeFunction", ARN.format("lambda") + f"function:{PROD}-F-1A2B:3"
    )
    assert not _allowed(
        boundary, "lambda:UpdateAlias", ARN.format("lambda") + f"function:{PROD}-F-1A2B:live"
    )
    assert not _allowed(
        boundary,
        "codedeploy:PutLifecycleEventHookExecutionStatus",
        ARN.format("codedeploy") + f"deploymentgroup:{PROD}-App-1A2B/{PROD}-G-1A2B",
    )


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_each_environment_bounds_its_roles_with_its_bootstrap_policy(environment: str) -> None:
    config = SAMCONFIG[CONFIG_ENVS[environment]]
    stack_name = config["global"]["parameters"]["stack_name"]
    overrides = dict(
        pair.split("=", 1) for pair in config["deploy"]["parameters"]["parameter_overrides"].split()
    )
    assert overrides["RolesBoundaryPolicy"] == f"{stack_name}-roles-boundary"
    translated = sam_template.translate(sam_template.load(), overrides)
    roles = [r for r in translated["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    assert len(roles) == 7  # 5 functions' roles, the writer role, CodeDeploy's DeploymentRole
    for role in roles:
        boundary = role["Properties"]["PermissionsBoundary"]["Fn::If"]
        assert boundary[0] == "HasRolesBoundary"
        assert boundary[1] == {
            "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/${RolesBoundaryPolicy}"
        }


def test_each_environment_has_a_bootstrap_stack_name_and_its_own_artifact_prefix() -> None:
    parameter = _bootstrap()["Parameters"]["AppStackName"]
    assert parameter["Default"] == SAMCONFIG["default"]["global"]["parameters"]["stack_name"]
    for config_env in CONFIG_ENVS.values():
        stack_name = SAMCONFIG[config_env]["global"]["parameters"]["stack_name"]
        assert re.fullmatch(parameter["AllowedPattern"], stack_name)
        # The role may write artifacts only under its stack's name (ArtifactObjects).
        assert SAMCONFIG[config_env]["deploy"]["parameters"]["s3_prefix"] == stack_name


# --- pre-commit -----------------------------------------------------------------------------------


def test_pre_commit_runs_the_projects_own_ruff_mypy_and_cfn_lint() -> None:
    result = subprocess.run(
        [BIN / "pre-commit", "validate-config", PRE_COMMIT],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(PRE_COMMIT.read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert set(hooks) == {"ruff-check", "ruff-format", "mypy", "cfn-lint"}
    assert re.search(r"^VENV := \.venv$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    for hook_id, hook in hooks.items():
        assert hook["language"] == "system", hook_id
        executable = hook["entry"].split()[0]
        assert executable.startswith(".venv/bin/"), hook_id
        assert (BIN / Path(executable).name).is_file(), hook_id
    assert hooks["ruff-check"]["entry"].split()[1] == "check"
    assert hooks["ruff-format"]["entry"].split()[1] == "format"
    # mypy takes its packages and strictness from pyproject.toml, not from the changed files.
    assert hooks["mypy"]["entry"] == ".venv/bin/mypy"
    assert hooks["mypy"]["pass_filenames"] is False
    assert re.search(hooks["mypy"]["files"], "src/app/runtime.py")
    cfn_lint_files = re.compile(hooks["cfn-lint"]["files"])
    assert cfn_lint_files.search("template.yaml")
    assert cfn_lint_files.search("deploy/bootstrap.yaml")
    assert not cfn_lint_files.search("events/GetItemFunction/found.json")


# --- make -----------------------------------------------------------------------------------------


def _make(*arguments: str) -> subprocess.CompletedProcess[str]:
    """make in the project, as a developer would run it (not as a sub-make of `make test`)."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "ENV"}
    }
    make = shutil.which("make")
    assert make is not None, "make is not installed"
    return subprocess.run(
        [make, "--no-print-directory", *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )


def test_make_help_lists_every_delivery_target() -> None:
    result = _make("help")
    assert result.returncode == 0, result.stderr
    listed = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("  make ")}
    assert {"build", "validate", "deploy", "logs", "clean", "lock", "test"} <= listed


@pytest.mark.parametrize("environment", DEPLOY_JOBS)
def test_make_deploy_and_logs_act_on_the_samconfig_environment(environment: str) -> None:
    config_env = CONFIG_ENVS[environment]
    stack_name = SAMCONFIG[config_env]["global"]["parameters"]["stack_name"]
    deploy = _make("--dry-run", "deploy", f"ENV={environment}")
    assert deploy.returncode == 0, deploy.stderr
    commands = [" ".join(line.split()) for line in deploy.stdout.splitlines()]
    assert commands[-2:] == [
        ".venv-sam/bin/sam build",
        f".venv-sam/bin/sam deploy --config-env {config_env}",
    ]
    logs = _make("--dry-run", "logs", f"ENV={environment}")
    assert logs.returncode == 0, logs.stderr
    expected = f".venv-sam/bin/sam logs --config-env {config_env} --stack-name {stack_name} --tail"
    assert " ".join(logs.stdout.splitlines()[-1].split()) == expected


@pytest.mark.parametrize(
    ("arguments", "variables"),
    [
        (["ENV=dev", "PROFILE=ops"], f"E2E_STACK_NAME={DEV} E2E_REGION={REGION} E2E_PROFILE=ops"),
        (["ENV=prod", "SMOKE=1"], f"E2E_STACK_NAME={PROD} E2E_REGION={REGION} E2E_PROFILE="),
    ],
)
def test_make_e2e_runs_the_scenarios_against_the_samconfig_environments_stack(
    arguments: list[str], variables: str
) -> None:
    result = _make("--dry-run", "e2e", *arguments)
    assert result.returncode == 0, result.stderr
    command = " ".join(result.stdout.replace("\\\n", " ").split())
    smoke = "1" if "SMOKE=1" in arguments else ""
    assert command.endswith(
        f"{variables} E2E_SMOKE={smoke} .venv/bin/pytest -q -p no:xdist tests/e2e/test_stack.py"
    )


def _collected(*paths: str, **variables: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("E2E_")} | variables
    return subprocess.run(
        [BIN / "pytest", "--collect-only", "-q", "-p", "no:xdist", *paths],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_deployed_run_collects_the_scenarios_only_and_smoke_only_the_read_only_ones() -> None:
    scenarios = "tests/e2e/test_stack.py"
    every = _collected(scenarios, E2E_STACK_NAME=DEV)
    smoke = _collected(scenarios, E2E_STACK_NAME=PROD, E2E_SMOKE="1")
    stray = _collected("tests/e2e", E2E_STACK_NAME=DEV)
    assert every.returncode == smoke.returncode == 0, every.stdout + smoke.stdout
    all_ids = {line for line in every.stdout.splitlines() if line.startswith(scenarios)}
    smoke_ids = {line for line in smoke.stdout.splitlines() if line.startswith(scenarios)}
    assert smoke_ids
    assert smoke_ids < all_ids
    assert stray.returncode != 0
    assert "only test_stack.py may run against a deployed stack" in stray.stdout + stray.stderr


def test_make_refuses_an_environment_samconfig_does_not_have() -> None:
    result = _make("--dry-run", "deploy", "ENV=staging")
    assert result.returncode != 0
    assert 'ENV must be dev or prod, not "staging"' in result.stderr


# --- Locks ----------------------------------------------------------------------------------------


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(path: Path) -> dict[str, list[str]]:
    """name -> the rest of its requirement line (continuations joined), comments left out."""
    logical = path.read_text().replace("\\\n", " ")
    entries: dict[str, list[str]] = {}
    for line in logical.splitlines():
        line = line.split("#", 1)[0].strip()  # noqa: PLW2901 - the same line, without comment
        if line:
            requirement, *options = line.split()
            name = re.split(r"[\[=<>~! ]", requirement, maxsplit=1)[0]
            entries[_normalized(name)] = [requirement, *options]
    return entries


def _pins(path: Path) -> dict[str, str]:
    return {
        name: fields[0].split("==", 1)[1]
        for name, fields in _requirements(path).items()
        if "==" in fields[0]
    }


def test_the_deployed_lock_pins_and_hashes_every_package() -> None:
    lock = _requirements(ROOT / "src" / "requirements.txt")
    assert {"aws-lambda-powertools", "jmespath", "typing-extensions"} <= set(lock)
    assert not {"boto3", "botocore"} & set(lock), "the Lambda runtime provides them"
    for name, (requirement, *options) in lock.items():
        assert re.fullmatch(r"[\w.-]+==[\w.+!-]+", requirement), name
        assert options, f"{name} has no hash"
        assert all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", option) for option in options)
    wanted = _pins(ROOT / "src" / "requirements.in")
    assert wanted
    assert {name: _pins(ROOT / "src" / "requirements.txt")[name] for name in wanted} == wanted


def test_the_tests_run_the_versions_lambda_runs() -> None:
    deployed = _pins(ROOT / "src" / "requirements.txt")
    dev = _pins(ROOT / "requirements-dev.txt")
    assert {name: dev.get(name) for name in deployed} == deployed


def test_the_dev_lock_pins_every_tool_the_dev_input_names() -> None:
    wanted = set(_requirements(ROOT / "requirements-dev.in"))
    pinned = _pins(ROOT / "requirements-dev.txt")
    assert wanted - set(pinned) == set()
