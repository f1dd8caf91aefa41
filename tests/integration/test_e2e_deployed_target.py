"""The deployed end-to-end target, against moto: a fake stack's outputs give every address.

The target cannot reach AWS here, so these tests prove what ``make e2e`` relies on before it ever
runs: addresses resolved from the stack's outputs alone, the machine client's secret read from
Cognito and exchanged for a token over real HTTP (a stand-in token endpoint and API on 127.0.0.1
check what arrives), the queue, the function, the table and the bucket reached with the session
passed in, and waits bounded by a clock rather than by sleeping.
"""

import base64
import collections
import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.awslambda_simple.models import lambda_simple_backends

from tests.conftest import ACCOUNT, REGION
from tools.e2e.deployed import (
    IAM_ACTIONS,
    OUTPUTS,
    POLL_SECONDS,
    SMOKE_IAM_ACTIONS,
    DeployedTarget,
)
from tools.e2e.target import NotYetError, TargetError

STACK = "items-service-dev"


@dataclass
class StandIn:
    """What the stand-in token endpoint and API received, and what they answer."""

    url: str
    client_id: str = ""
    client_secret: str = ""
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    api_requests: list[dict[str, Any]] = field(default_factory=list)
    refuse_tokens: bool = False


def _handler(stand_in: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            if self.path != "/oauth2/token":
                stand_in.api_requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                self._answer(201, {"export_id": "x", "key": "exports/x/x.json"})
                return
            form = dict(urllib.parse.parse_qsl(body.decode()))
            basic = self.headers.get("Authorization", "").removeprefix("Basic ")
            stand_in.token_requests.append(
                {
                    "form": form,
                    "basic": base64.b64decode(basic).decode(),
                    "type": self.headers["Content-Type"],
                }
            )
            if stand_in.refuse_tokens:
                self._answer(400, {"error": "invalid_scope"})
                return
            if base64.b64decode(basic).decode() != f"{stand_in.client_id}:{stand_in.client_secret}":
                self._answer(401, {"error": "invalid_client"})
                return
            self._answer(
                200,
                {
                    "access_token": f"token-for-{form['scope']}",
                    "token_type": "Bearer",
                    "expires_in": 3600,
                },
            )

        def do_GET(self) -> None:
            stand_in.api_requests.append({"path": self.path, "headers": dict(self.headers)})
            self._answer(404, {"message": "no such item"})

    return Handler


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    host, port = server.server_address[:2]
    recorded = StandIn(url=f"http://{host}:{port}")
    server.RequestHandlerClass = _handler(recorded)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorded
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class FakeStack:
    session: boto3.Session
    outputs: dict[str, str]


def _outputs_stack(session: boto3.Session, outputs: dict[str, str]) -> None:
    """A CloudFormation stack in moto that holds nothing but these outputs."""
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    session.client("cloudformation").create_stack(
        StackName=STACK, TemplateBody=json.dumps(template)
    )


@pytest.fixture
def fake_stack(stand_in: StandIn) -> Iterator[FakeStack]:
    """A pool with a machine client, a queue, a bucket, a table and a function in moto, and a
    stack whose outputs name them as template.yaml's outputs do."""
    with mock_aws(config={"lambda": {"use_docker": False}}):
        session = boto3.Session(region_name=REGION)
        cognito = session.client("cognito-idp")
        pool = cognito.create_user_pool(PoolName=f"{STACK}-callers")["UserPool"]["Id"]
        client = cognito.create_user_pool_client(
            UserPoolId=pool, ClientName="machine", GenerateSecret=True
        )["UserPoolClient"]
        stand_in.client_id, stand_in.client_secret = client["ClientId"], client["ClientSecret"]
        queue_url = session.client("sqs").create_queue(QueueName=f"{STACK}-ExportQueue-1A2B")[
            "QueueUrl"
        ]
        bucket = f"{STACK}-exportsbucket-1a2b3c"
        session.client("s3").create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        table = f"{STACK}-ItemsTable-1A2B"
        session.client("dynamodb").create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "item_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "item_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        role = session.client("iam").create_role(
            RoleName=f"{STACK}-ExportTableFunctionRole",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        function = f"{STACK}-ExportTableFunction-1A2B"
        session.client("lambda").create_function(
            FunctionName=function,
            Runtime="python3.13",
            Role=role,
            Handler="app.handlers.export_table.lambda_handler",
            Code={"ZipFile": b"not run: moto's simple Lambda answers for it"},
        )
        outputs = {
            "ApiUrl": f"{stand_in.url}/",
            "ExportQueueUrl": queue_url,
            "ExportsBucketName": bucket,
            "ItemsTableName": table,
            "ExportTableFunctionName": function,
            "TokenIssuer": f"https://cognito-idp.{REGION}.amazonaws.com/{pool}",
            "TokenEndpoint": f"{stand_in.url}/oauth2/token",
            "MachineClientId": client["ClientId"],
        }
        _outputs_stack(session, outputs)
        yield FakeStack(session, outputs)


def test_every_output_the_target_reads_is_one_template_yaml_declares(
    template: dict[str, Any],
) -> None:
    assert set(OUTPUTS.values()) <= set(template["Outputs"])


def test_a_token_is_the_machine_clients_for_exactly_the_scopes_asked(
    fake_stack: FakeStack, stand_in: StandIn
) -> None:
    target = DeployedTarget.from_stack(fake_stack.session, STACK)

    assert target.token(["items/read"]) == "token-for-items/read"
    assert target.token(["items/read"]) == "token-for-items/read"
    assert target.token(["items/export", "items/read"]) == "token-for-items/export items/read"

    assert [request["form"] for request in stand_in.token_requests] == [
        {"grant_type": "client_credentials", "scope": "items/read"},
        {"grant_type": "client_credentials", "scope": "items/export items/read"},
    ], "one request per set of scopes"
    assert {request["basic"] for request in stand_in.token_requests} == {
        f"{stand_in.client_id}:{stand_in.client_secret}"
    }
    assert stand_in.token_requests[0]["type"] == "application/x-www-form-urlencoded"


def test_a_refused_token_names_the_oauth_error_and_never_the_secret(
    fake_stack: FakeStack, stand_in: StandIn
) -> None:
    stand_in.refuse_tokens = True
    target = DeployedTarget.from_stack(fake_stack.session, STACK)
    with pytest.raises(TargetError, match="HTTP 400 invalid_scope") as raised:
        target.token(["items/read"])
    assert stand_in.client_secret not in str(raised.value)


def test_requests_go_to_the_api_url_with_the_bearer_token(
    fake_stack: FakeStack, stand_in: StandIn
) -> None:
    target = DeployedTarget.from_stack(fake_stack.session, STACK)
    response = target.request("GET", "items/42", token="abc")
    assert (response.status, response.json()) == (404, {"message": "no such item"})
    assert response.headers["content-type"] == "application/json"

    target.request(
        "POST", "/items/42/exports", body=b'{"fields": []}', headers={"Idempotency-Key": "k"}
    )
    [get, post] = stand_in.api_requests
    assert (get["path"], get["headers"]["Authorization"]) == ("/items/42", "Bearer abc")
    assert (post["path"], post["body"], post["headers"]["Idempotency-Key"]) == (
        "/items/42/exports",
        b'{"fields": []}',
        "k",
    )
    assert "Authorization" not in post["headers"], "no token, no header: the 401 case"


def test_an_export_request_is_a_message_on_the_stacks_export_queue(fake_stack: FakeStack) -> None:
    target = DeployedTarget.from_stack(fake_stack.session, STACK)
    message_id = target.send_export_request('{"item_id": "e2e-1"}')
    [message] = fake_stack.session.client("sqs").receive_message(
        QueueUrl=fake_stack.outputs["ExportQueueUrl"]
    )["Messages"]
    assert (message["MessageId"], message["Body"]) == (message_id, '{"item_id": "e2e-1"}')


def test_a_table_export_invokes_the_stacks_function_and_returns_its_answer(
    fake_stack: FakeStack,
) -> None:
    backend = lambda_simple_backends[ACCOUNT][REGION]
    backend.lambda_simple_results_queue.append(
        json.dumps({"run_id": "manual-1", "status": "complete", "items": 2, "manifest_key": "k"})
    )
    target = DeployedTarget.from_stack(fake_stack.session, STACK)
    assert target.start_table_export({}) == {
        "run_id": "manual-1",
        "status": "complete",
        "items": 2,
        "manifest_key": "k",
    }


def test_test_items_are_written_exactly_and_removed(fake_stack: FakeStack) -> None:
    target = DeployedTarget.from_stack(fake_stack.session, STACK)
    dynamodb = fake_stack.session.client("dynamodb")
    table = fake_stack.outputs["ItemsTableName"]
    target.put_item({"item_id": "e2e-1", "price": Decimal("12345678901234567.5"), "gone": None})
    stored = dynamodb.get_item(TableName=table, Key={"item_id": {"S": "e2e-1"}})["Item"]
    assert stored["price"] == {"N": "12345678901234567.5"}
    target.delete_item("e2e-1")
    assert "Item" not in dynamodb.get_item(TableName=table, Key={"item_id": {"S": "e2e-1"}})


def test_the_bucket_is_read_back_with_its_metadata(fake_stack: FakeStack) -> None:
    s3 = fake_stack.session.client("s3")
    bucket = fake_stack.outputs["ExportsBucketName"]
    s3.put_object(
        Bucket=bucket,
        Key="exports/e2e-1/m.json",
        Body=b'{"price": 1.10}',
        ContentType="application/json",
        Metadata={"request-sha256": "ab"},
    )
    target = DeployedTarget.from_stack(fake_stack.session, STACK)
    assert target.keys("exports/e2e-1/") == ["exports/e2e-1/m.json"]
    stored = target.read("exports/e2e-1/m.json")
    assert stored is not None
    assert (stored.json(), stored.content_type, dict(stored.metadata)) == (
        {"price": Decimal("1.10")},
        "application/json",
        {"request-sha256": "ab"},
    )
    assert target.read("exports/e2e-1/absent.json") is None


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _target_with(fake_stack: FakeStack, clock: FakeClock) -> DeployedTarget:
    return DeployedTarget(
        fake_stack.session,
        STACK,
        fake_stack.outputs,
        clock=clock,
        sleep=clock.sleep,
        wait_seconds=30.0,
    )


def test_a_wait_polls_until_the_check_answers(fake_stack: FakeStack) -> None:
    clock = FakeClock()
    answers = iter([None, None, "there"])
    assert _target_with(fake_stack, clock).eventually(lambda: next(answers), "it") == "there"
    assert clock.sleeps == [POLL_SECONDS, POLL_SECONDS]


def test_a_wait_gives_up_at_its_bound_and_says_what_it_waited_for(fake_stack: FakeStack) -> None:
    clock = FakeClock()
    with pytest.raises(NotYetError, match=r"the export exports/x\.json: not done after 30 s"):
        _target_with(fake_stack, clock).eventually(lambda: None, "the export exports/x.json")
    assert 30.0 <= clock.now < 30.0 + POLL_SECONDS


def test_a_stack_without_an_output_the_scenarios_need_is_named(fake_stack: FakeStack) -> None:
    outputs = {
        k: v for k, v in fake_stack.outputs.items() if k not in {"TokenEndpoint", "ExportQueueUrl"}
    }
    with pytest.raises(TargetError, match="has no output ExportQueueUrl, TokenEndpoint"):
        DeployedTarget(fake_stack.session, STACK, outputs)
    smoke_only = {
        k: fake_stack.outputs[k]
        for k in ("ApiUrl", "TokenIssuer", "TokenEndpoint", "MachineClientId")
    }
    assert DeployedTarget(fake_stack.session, STACK, smoke_only, smoke=True).api_url


@pytest.mark.parametrize(
    ("output", "url"),
    [
        ("ApiUrl", f"http://abc.execute-api.{REGION}.amazonaws.com/"),
        ("TokenEndpoint", "ftp://x/"),
    ],
)
def test_a_token_never_travels_in_clear(fake_stack: FakeStack, output: str, url: str) -> None:
    with pytest.raises(TargetError, match=f"{output} must be an https URL"):
        DeployedTarget(fake_stack.session, STACK, {**fake_stack.outputs, output: url})


# IAM's name for each operation the target's clients call.
IAM_ACTION_OF = {
    "cloudformation.DescribeStacks": "cloudformation:DescribeStacks",
    "cognito-idp.DescribeUserPoolClient": "cognito-idp:DescribeUserPoolClient",
    "dynamodb.PutItem": "dynamodb:PutItem",
    "dynamodb.DeleteItem": "dynamodb:DeleteItem",
    "sqs.SendMessage": "sqs:SendMessage",
    "lambda.Invoke": "lambda:InvokeFunction",
    "s3.GetObject": "s3:GetObject",
    "s3.ListObjectsV2": "s3:ListBucket",
}


def _every_call(target: DeployedTarget, *, smoke: bool) -> None:
    target.token(["items/read"])
    target.request("GET", "items/42", token=target.token(["items/read"]))
    if smoke:
        return
    target.put_item({"item_id": "e2e-1"})
    target.delete_item("e2e-1")
    target.send_export_request('{"item_id": "e2e-1"}')
    target.start_table_export({})
    target.keys("exports/")
    target.read("exports/absent.json")


@pytest.mark.parametrize("smoke", [False, True], ids=["full", "smoke"])
def test_the_targets_calls_are_exactly_the_end_to_end_roles_rights(
    api_calls: collections.Counter[str], fake_stack: FakeStack, smoke: bool
) -> None:
    """deploy/bootstrap.yaml grants the e2e role IAM_ACTIONS (tests/infra/test_delivery.py):
    the target must need every one of them and no other."""
    api_calls.clear()
    _every_call(DeployedTarget.from_stack(fake_stack.session, STACK, smoke=smoke), smoke=smoke)
    used = {IAM_ACTION_OF[call] for call in api_calls}
    assert used == (SMOKE_IAM_ACTIONS if smoke else IAM_ACTIONS)
