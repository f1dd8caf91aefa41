"""The developer script runs the functions' own code with a session from --profile/--region."""

import collections
import json
from pathlib import Path

import pytest

from tests.conftest import LAMBDA_ENVIRONMENT, REGION, Stack
from tools import export_item


@pytest.fixture
def profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A named profile with its own (moto) credentials, in a config file of its own."""
    config = tmp_path / "config"
    config.write_text(
        "[profile ops]\n"
        f"region = {REGION}\n"
        "aws_access_key_id = AKIAOPSPROFILE0000001\n"
        "aws_secret_access_key = ops-secret\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    return "ops"


def test_exports_with_explicit_resources(
    stack: Stack, profile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = export_item.main(
        [
            "42",
            "--fields",
            "name",
            "--profile",
            profile,
            "--table",
            stack.items.table_name,
            "--bucket",
            stack.exports.bucket_name,
            "--writer-role-arn",
            LAMBDA_ENVIRONMENT["WRITER_ROLE_ARN"],
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["created"] is True
    assert stack.objects()[printed["key"]]["item"] == {"item_id": "42", "name": "Espresso grinder"}


def _stack_with_outputs(stack: Stack, **outputs: str) -> str:
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    stack.admin.client("cloudformation").create_stack(
        StackName="items-dev", TemplateBody=json.dumps(template)
    )
    return "items-dev"


def test_reads_resources_from_the_stack_outputs(
    stack: Stack,
    profile: str,
    capsys: pytest.CaptureFixture[str],
    api_calls: collections.Counter[str],
) -> None:
    stack_name = _stack_with_outputs(
        stack,
        ItemsTableName=stack.items.table_name,
        ExportsBucketName=stack.exports.bucket_name,
        WriterRoleArn=LAMBDA_ENVIRONMENT["WRITER_ROLE_ARN"],
    )
    api_calls.clear()
    assert (
        export_item.main(
            ["7", "--stack-name", stack_name, "--profile", profile, "--region", REGION]
        )
        == 0
    )
    key = json.loads(capsys.readouterr().out)["key"]
    assert key.startswith("exports/7/cli-")
    assert api_calls["cloudformation.DescribeStacks"] == 1


def test_explicit_options_win_over_the_stack_outputs(
    stack: Stack, profile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The stack names a bucket and a table that do not exist: the options given must be used."""
    stack_name = _stack_with_outputs(
        stack,
        ItemsTableName="stale-table",
        ExportsBucketName="stale-bucket",
        WriterRoleArn=LAMBDA_ENVIRONMENT["WRITER_ROLE_ARN"],
    )
    argv = ["42", "--stack-name", stack_name, "--profile", profile, "--region", REGION]
    argv += ["--table", stack.items.table_name, "--bucket", stack.exports.bucket_name]
    assert export_item.main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["bucket"] == stack.exports.bucket_name
    assert printed["key"] in stack.objects()


def test_an_output_the_stack_lacks_is_asked_for(
    stack: Stack, profile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_name = _stack_with_outputs(stack, ItemsTableName=stack.items.table_name)
    argv = ["42", "--stack-name", stack_name, "--profile", profile, "--region", REGION]
    assert export_item.main(argv) == 2
    assert "--bucket, --writer-role-arn" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["42", "--table", "t"], "pass --stack-name or --bucket, --writer-role-arn"),
        (["not valid!", "--table", "t", "--bucket", "b", "--writer-role-arn", "arn"], "item_id"),
    ],
)
def test_bad_arguments_are_one_line_errors(
    aws: None, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert export_item.main([*argv, "--region", REGION]) != 0
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
