"""Template scanners and the hardening they cannot see.

- cfn-lint: tests/infra/test_template.py lints template.yaml and each translation once, errors
  and warnings alike (one cfn-lint run of a translation costs seconds).
- checkov on the translation, from its own venv (``make scan`` builds it; ``make test`` too):
  nothing failed, and every suppression in the template says why.
- What no scanner checks: data kept in prod only (DeletionPolicy/UpdateReplacePolicy through
  AWS::LanguageExtensions, which the offline SAM translation leaves unresolved, so it is evaluated
  here per stage), TLS and encryption enforced by the bucket policy, queues that cannot expire a
  message before its dead-letter queue would.
"""

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tools.emulator import sam_template

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
PARAMETER_SETS = {
    "dev": {},
    "prod": {"Stage": "prod", "LogRetentionDays": "365"},
    "cross-account": {"WriterRoleArn": "arn:aws:iam::210987654321:role/exports-writer"},
    "external-issuer": {
        "JwtIssuer": "https://example-tenant.eu.auth0.com/",
        "JwtAudience": "https://items.example.com",
        "CorsAllowOrigins": "https://app.example.com,https://admin.example.com",
    },
}
CHECKOV_CHECKS = ROOT / "tools" / "checkov"
CHECKOV_SCOPE = ["--framework", "cloudformation", "--external-checks-dir", str(CHECKOV_CHECKS)]
STATEFUL = {"AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::SQS::Queue", "AWS::Logs::LogGroup"}


@pytest.fixture(scope="module")
def translations(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: sam_template.translate(template, p) for name, p in PARAMETER_SETS.items()}


# --- checkov -------------------------------------------------------------------------------------


OPEN_ROUTES = {"no-authorizer": None, "one-route-open": "ExportItemFunction"}
"""The variants checkov must fail: the API's authorizer gone, or one route opened to anyone."""


def _without_route_auth(template: dict[str, Any], open_route: str | None) -> dict[str, Any]:
    """The template with its API's authorizer gone (None) or one route opened to anyone."""
    changed = copy.deepcopy(template)
    if open_route is None:
        del changed["Resources"]["ItemsApi"]["Properties"]["Auth"]
        for function in sam_template.functions(changed).values():
            for event in function["Properties"].get("Events", {}).values():
                event["Properties"].pop("Auth", None)
    else:
        function = changed["Resources"][open_route]["Properties"]
        for event in function["Events"].values():
            event["Properties"]["Auth"] = {"Authorizer": "NONE"}
    return changed


@pytest.fixture(scope="module")
def checkov(
    template: dict[str, Any],
    translations: dict[str, dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """checkov's checks, by outcome, for the dev translation and each variant it must fail: one
    checkov run over all of them (each run spends about 8 s loading before it scans anything)."""
    scanned = {"dev": translations["dev"]} | {
        name: sam_template.translate(_without_route_auth(template, route))
        for name, route in OPEN_ROUTES.items()
    }
    folder = tmp_path_factory.mktemp("checkov")
    files: list[str] = []
    for name, translated in scanned.items():
        (folder / f"{name}.json").write_text(json.dumps(translated))
        files += ["--file", str(folder / f"{name}.json")]
    result = subprocess.run(
        [str(CHECKOV), "--compact", "--skip-download", "--output", "json", *CHECKOV_SCOPE, *files],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"},
        timeout=180,
    )
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["summary"]["parsing_errors"] == 0
    by_file: dict[str, dict[str, list[dict[str, Any]]]] = {
        name: {"failed_checks": [], "skipped_checks": [], "passed_checks": []} for name in scanned
    }
    for outcome, checks in report["results"].items():
        for check in checks if outcome in by_file["dev"] else []:
            by_file[Path(check["file_path"]).stem][outcome].append(check)
    return by_file


@pytest.mark.skipif(
    not CHECKOV.exists() and not os.environ.get("CI"),
    reason="checkov lives in .venv-checkov: `make scan` (or `make test`) builds it",
)
def test_checkov_fails_nothing_in_the_translation(
    translations: dict[str, dict[str, Any]], checkov: dict[str, dict[str, list[dict[str, Any]]]]
) -> None:
    results = checkov["dev"]
    failed = [f"{check['check_id']} {check['resource']}" for check in results["failed_checks"]]
    assert failed == []
    skipped = {(c["check_id"], c["resource"].split(".")[-1]) for c in results["skipped_checks"]}
    assert skipped == _suppressions(translations["dev"]), (
        "every suppression is used, and only those"
    )
    passed = {(c["check_id"], c["resource"]) for c in results["passed_checks"]}
    assert passed, "checkov ran its checks on the translation"
    assert ("CKV_ITEMS_1", "AWS::ApiGatewayV2::Api.ItemsApi") in passed, "the project's own check"


@pytest.mark.skipif(
    not CHECKOV.exists() and not os.environ.get("CI"),
    reason="checkov lives in .venv-checkov: `make scan` (or `make test`) builds it",
)
@pytest.mark.parametrize("variant", OPEN_ROUTES)
def test_checkov_fails_an_api_with_a_route_open_to_anyone(
    checkov: dict[str, dict[str, list[dict[str, Any]]]], variant: str
) -> None:
    """checkov's own route check (CKV_AWS_309) is Terraform's only; tools/checkov's covers SAM."""
    failed = {(check["check_id"], check["resource"]) for check in checkov[variant]["failed_checks"]}
    assert failed == {("CKV_ITEMS_1", "AWS::ApiGatewayV2::Api.ItemsApi")}


def _suppressions(translated: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (skip["id"], logical_id)
        for logical_id, resource in translated["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }


def test_every_checkov_suppression_gives_its_reason(template: dict[str, Any]) -> None:
    for logical_id, resource in template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert skip["id"].startswith("CKV_"), logical_id
            assert len(skip.get("comment", "").split()) >= 8, f"{logical_id} {skip['id']}: why?"


# --- Hardening no scanner checks ---------------------------------------------------------------


def _condition(template: dict[str, Any], name: str, parameters: dict[str, str]) -> bool:
    """A condition of the template, evaluated for these parameter values."""

    def value(node: Any) -> Any:
        if isinstance(node, dict) and set(node) == {"Ref"}:
            default = template["Parameters"][node["Ref"]].get("Default", "")
            return parameters.get(node["Ref"], str(default))
        if isinstance(node, dict) and set(node) == {"Condition"}:
            return _condition(template, node["Condition"], parameters)
        if isinstance(node, dict) and len(node) == 1:
            function, arguments = next(iter(node.items()))
            values = [value(argument) for argument in arguments]
            return {
                "Fn::Equals": lambda: values[0] == values[1],
                "Fn::Not": lambda: not values[0],
                "Fn::And": lambda: all(values),
                "Fn::Or": lambda: any(values),
            }[function]()
        return node

    return bool(value(template["Conditions"][name]))


def _resolve(template: dict[str, Any], node: Any, parameters: dict[str, str]) -> Any:
    """``node`` with every Fn::If decided, as CloudFormation would for these parameters."""
    if isinstance(node, dict) and set(node) == {"Fn::If"}:
        condition, when_true, when_false = node["Fn::If"]
        chosen = when_true if _condition(template, condition, parameters) else when_false
        return _resolve(template, chosen, parameters)
    return node


def test_language_extensions_runs_before_the_sam_transform(template: dict[str, Any]) -> None:
    """CloudFormation resolves intrinsics in DeletionPolicy only with this transform, first."""
    assert template["Transform"] == ["AWS::LanguageExtensions", "AWS::Serverless-2016-10-31"]


@pytest.mark.parametrize(("stage", "policy"), [("prod", "Retain"), ("dev", "Delete")])
def test_stateful_resources_are_retained_in_prod_only(
    translations: dict[str, dict[str, Any]], template: dict[str, Any], stage: str, policy: str
) -> None:
    translated = translations["prod" if stage == "prod" else "dev"]
    parameters = PARAMETER_SETS["prod" if stage == "prod" else "dev"]
    stateful = {k: r for k, r in translated["Resources"].items() if r["Type"] in STATEFUL}
    assert len(stateful) >= 4
    for logical_id, resource in stateful.items():
        for attribute in ("DeletionPolicy", "UpdateReplacePolicy"):
            resolved = _resolve(template, resource.get(attribute, "Delete"), parameters)
            assert resolved == policy, f"{logical_id} {attribute}"


def test_tables_recover_and_resist_deletion_in_prod(template: dict[str, Any]) -> None:
    table = template["Resources"]["ItemsTable"]["Properties"]
    prod = PARAMETER_SETS["prod"]
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert _resolve(template, table["DeletionProtectionEnabled"], prod) is True
    recovery = table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]
    assert _resolve(template, recovery, prod) is True


def _statements(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    policy = template["Resources"]["ExportsBucketPolicy"]["Properties"]["PolicyDocument"]
    # The one conditional statement (a given writer role's Allow) is pinned in test_least_privilege.
    return {s["Sid"]: s for s in policy["Statement"] if "Fn::If" not in s}


def test_bucket_policy_enforces_tls_and_the_bucket_encryption(template: dict[str, Any]) -> None:
    statements = _statements(template)
    assert all(statement["Effect"] == "Deny" for statement in statements.values())
    assert statements["DenyInsecureTransport"]["Condition"] == {
        "Bool": {"aws:SecureTransport": False}
    }
    assert statements["DenyOutdatedTls"]["Condition"] == {"NumericLessThan": {"s3:TlsVersion": 1.2}}
    assert statements["DenyOtherEncryption"]["Condition"] == {
        "StringNotEquals": {"s3:x-amz-server-side-encryption": "AES256"},
        "Null": {"s3:x-amz-server-side-encryption": False},
    }
    customer_keys = statements["DenyCustomerProvidedKeys"]["Condition"]["Null"]
    assert customer_keys == {"s3:x-amz-server-side-encryption-customer-algorithm": False}
    bucket = template["Resources"]["ExportsBucket"]["Properties"]
    default = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert default["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    rules = bucket["LifecycleConfiguration"]["Rules"]
    assert any("NoncurrentVersionExpiration" in rule for rule in rules)


def test_queues_are_encrypted_and_outlive_nothing_their_dead_letter_queue_keeps(
    translations: dict[str, dict[str, Any]],
) -> None:
    resources = translations["dev"]["Resources"]
    queues = {k: r["Properties"] for k, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}
    default_retention = 345_600
    for logical_id, queue in queues.items():
        assert queue.get("SqsManagedSseEnabled") or queue.get("KmsMasterKeyId"), logical_id
        if "RedrivePolicy" in queue:
            dead_letters = queues[queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]]
            retention = queue.get("MessageRetentionPeriod", default_retention)
            assert dead_letters["MessageRetentionPeriod"] > retention, logical_id


def test_every_log_group_has_a_retention(translations: dict[str, dict[str, Any]]) -> None:
    resources = translations["dev"]["Resources"]
    groups = {k: r for k, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"}
    functions = [k for k, r in resources.items() if r["Type"] == "AWS::Lambda::Function"]
    named = {json.dumps(group["Properties"].get("LogGroupName")) for group in groups.values()}
    for function_id in functions:
        assert any(function_id in name for name in named), f"{function_id} has no log group"
    for logical_id, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, logical_id
    stage = resources["ItemsApiApiGatewayDefaultStage"]["Properties"]
    assert stage["AccessLogSettings"]["DestinationArn"] == {
        "Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]
    }
