"""Export one item from a deployed stack, from a laptop, through the same code the functions run.

    python -m tools.export_item 42 --stack-name items-service-dev --profile dev

The script builds a base session from ``--profile``/``--region`` (the AWS CLI's meaning), reads the
stack's outputs, assumes the writer role and calls the same operation as ``ExportItemFunction``.
The stack's writer role trusts only the export functions: to run this, add your operator role
to its trust policy, or pass ``--writer-role-arn`` for a role you may assume.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import uuid

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from app.operations import UNVERIFIED, ItemNotFoundError, export_item
from app.operations.requests import InvalidRequestError, export_request_from_message
from app.services import DependencyError, ExportsBucket, ItemsTable
from app.sessions import (
    CLIENT_CONFIG,
    RoleSpec,
    assumed_role_session,
    base_session,
    role_session_name,
)

STACK_OUTPUTS = {
    "table": "ItemsTableName",
    "bucket": "ExportsBucketName",
    "writer_role_arn": "WriterRoleArn",
}


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("item_id")
    parser.add_argument("--fields", help="comma-separated attributes to export (default: all)")
    parser.add_argument("--stack-name", help="read table, bucket and writer role from this stack")
    parser.add_argument("--table")
    parser.add_argument("--bucket")
    parser.add_argument("--writer-role-arn")
    parser.add_argument("--profile", help="AWS profile, as for the AWS CLI")
    parser.add_argument("--region", help="AWS region, as for the AWS CLI")
    return parser.parse_args(argv)


def _stack_outputs(session: boto3.Session, stack_name: str) -> dict[str, str]:
    cloudformation = session.client("cloudformation", config=CLIENT_CONFIG)
    [stack] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def _resource_names(base: boto3.Session, arguments: argparse.Namespace) -> dict[str, str]:
    """The stack's outputs (one DescribeStacks), each overridden by its option where given."""
    outputs = _stack_outputs(base, arguments.stack_name) if arguments.stack_name else {}
    names = {key: outputs[output] for key, output in STACK_OUTPUTS.items() if output in outputs}
    given = {key: getattr(arguments, key) for key in STACK_OUTPUTS}
    return names | {key: value for key, value in given.items() if value}


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(argv)
    region = arguments.region or boto3.Session(profile_name=arguments.profile).region_name
    if not region:
        print("error: no region: pass --region or set one in the profile", file=sys.stderr)
        return 2
    base = base_session(region, profile_name=arguments.profile)
    try:
        names = _resource_names(base, arguments)
        missing = [f"--{key.replace('_', '-')}" for key in STACK_OUTPUTS if not names.get(key)]
        if missing:
            print(f"error: pass --stack-name or {', '.join(missing)}", file=sys.stderr)
            return 2
        writer = assumed_role_session(
            base, RoleSpec(names["writer_role_arn"], role_session_name("cli", getpass.getuser()))
        )
        fields = arguments.fields.split(",") if arguments.fields else None
        request = export_request_from_message(
            json.dumps({"item_id": arguments.item_id, "fields": fields})
        )
        result = export_item(
            request,
            f"cli-{uuid.uuid4()}",
            items=ItemsTable(base, names["table"]),
            exports=ExportsBucket(writer, names["bucket"]),
            # IAM let this profile in; no JWT names a caller.
            caller=UNVERIFIED,
        )
    except (InvalidRequestError, ItemNotFoundError, DependencyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps({"bucket": names["bucket"], "key": result.key, "created": result.created}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
