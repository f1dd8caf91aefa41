"""Make moto's IAM enforcement judge policies the way AWS does, for the embedded AWS only.

With enforcement on, moto 5.2 gets four things wrong that every Lambda-shaped template hits; each
made a correct template fail (or crash the server) locally. :func:`patched` fixes them inside the
process that runs the embedded server, for as long as enforcement lasts, so it cannot help a
server started elsewhere (``--endpoint-url``) and leaves moto as it was afterwards:

1. Trust policies: a statement whose principal is a ``Service`` (every Lambda role's
   ``lambda.amazonaws.com``) crashes the server with a ``TypeError``; a principal that does not
   match the caller *denies* instead of not applying; a role ARN does not match that role's
   sessions (``assumed-role/<name>/<session>``); and the account root does not stand for the
   account's identities. AWS does all three.
2. Inline role policies created by CloudFormation are stored as dicts, which the policy evaluator
   cannot read (``KeyError: 'policy_document'``).
3. DynamoDB authorizes every action against resource ``*``, so a policy scoped to the table's ARN
   (least privilege, as in this template) never allows anything.
4. DynamoDB denials come back as an XML 403 instead of DynamoDB's JSON ``AccessDeniedException``,
   so the caller's error code is ``403`` rather than the one AWS sends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.core.exceptions import AccessDeniedError, JsonRESTError
from moto.dynamodb.responses import DynamoHandler
from moto.iam import access_control
from moto.utilities.utils import get_partition

_ACCOUNT = re.compile(r"arn:[\w-]+:iam::(?P<account>\d{12}):root|(?P<bare>\d{12})")
_ROLE = re.compile(
    r"arn:(?P<partition>[\w-]+):iam::(?P<account>\d{12}):role/(?:.*/)?(?P<name>[^/]+)"
)


def _names(pattern: str, caller_arn: str) -> bool:
    """Whether one ``Principal.AWS`` entry names the caller, as AWS reads it."""
    if pattern in ("*", caller_arn):
        return True
    if account := _ACCOUNT.fullmatch(pattern):
        return caller_arn.split(":")[4] == (account["account"] or account["bare"])
    if role := _ROLE.fullmatch(pattern):
        session_prefix = f"arn:{role['partition']}:sts::{role['account']}:assumed-role/"
        return caller_arn.startswith(f"{session_prefix}{role['name']}/")
    return False


def _principal_matches(principal: Any, caller_arn: str) -> bool:  # noqa: ANN401 - policy JSON
    if principal == "*":
        return True
    aws = principal.get("AWS") if isinstance(principal, dict) else None
    if aws is None:  # Service, Federated: never an IAM caller
        return False
    return any(_names(entry, caller_arn) for entry in ([aws] if isinstance(aws, str) else aws))


def _trust_policies() -> tuple[type, str, Any]:
    evaluate = access_control.IAMPolicyStatement.is_action_permitted

    def is_action_permitted(
        self: access_control.IAMPolicyStatement,
        action: str,
        resource: str = "*",
        principal: str | None = None,
        incoming_condition_values: dict[str, str] | None = None,
    ) -> access_control.PermissionResult:
        statement = self._statement
        if principal is not None and isinstance(statement, dict) and "Principal" in statement:
            if not _principal_matches(statement["Principal"], principal):
                return access_control.PermissionResult.NEUTRAL  # the statement is not about them
            principal = None  # matched: let moto judge the action, conditions and resource
        return evaluate(self, action, resource, principal, incoming_condition_values)

    return access_control.IAMPolicyStatement, "is_action_permitted", is_action_permitted


def _dict_policies() -> tuple[type, str, Any]:
    load = access_control.IAMPolicy.__init__

    def __init__(self: access_control.IAMPolicy, policy: Any) -> None:  # noqa: ANN401, N807
        if isinstance(policy, dict) and "Statement" in policy:
            policy = json.dumps(policy)
        load(self, policy)

    return access_control.IAMPolicy, "__init__", __init__


def _dynamodb_table_resource() -> tuple[type, str, Any]:
    def _determine_resource(self: DynamoHandler) -> str:
        body = self.body if isinstance(self.body, dict) else json.loads(self.body or "{}")
        table = body.get("TableName") if isinstance(body, dict) else None
        if not isinstance(table, str) or not table:
            return "*"
        if table.startswith("arn:"):
            return table
        partition = get_partition(self.region)
        return f"arn:{partition}:dynamodb:{self.region}:{self.current_account}:table/{table}"

    return DynamoHandler, "_determine_resource", _determine_resource


def _dynamodb_json_denials() -> tuple[type, str, Any]:
    authorize = DynamoHandler._authenticate_and_authorize_normal_action

    def authorize_as_dynamodb(self: DynamoHandler, resource: str = "*") -> None:
        try:
            authorize(self, resource)
        except AccessDeniedError as denied:
            raise JsonRESTError("AccessDeniedException", denied.message) from None

    return DynamoHandler, "_authenticate_and_authorize_normal_action", authorize_as_dynamodb


@contextmanager
def patched() -> Iterator[None]:
    """moto judging IAM as AWS does, inside this block; moto as it was, after."""
    patches = [_trust_policies(), _dict_policies(), _dynamodb_table_resource()]
    patches.append(_dynamodb_json_denials())
    missing = object()
    saved = [(owner, name, owner.__dict__.get(name, missing)) for owner, name, _ in patches]
    for owner, name, replacement in patches:
        setattr(owner, name, replacement)
    try:
        yield
    finally:
        for owner, name, original in reversed(saved):
            if original is missing:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
