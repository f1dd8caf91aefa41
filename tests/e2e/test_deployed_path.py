"""``make e2e``'s whole path, offline: the scenarios through the deployed target, in a process of
their own, against a stack that looks deployed.

The local stack (the embedded AWS behind the local HTTP API) gets what a deployed one has and
the offline target does not use: a CloudFormation stack named as ``samconfig.toml``'s dev stack,
whose outputs name its API, queue, bucket, table and function; a Cognito machine client; and a
token endpoint that answers client credentials with tokens the API's authorizer accepts. The
scenarios then run as ``make e2e ENV=dev PROFILE=...`` runs them (the variables it sets, a named
profile, nothing of the offline suite's environment), so the deployed target's address
resolution, token fetch, requests, item writes and bucket reads meet a real HTTP API and a real
authorizer. Two scenarios wait for AWS's own machinery (the queue's event source mapping, a
function invoked through Lambda's API), which the embedded AWS does not run: they are left out
here and run against dev in the pipeline.
"""

import base64
import json
import os
import subprocess
import sys
import threading
import tomllib
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tools.e2e.local import LocalTarget
from tools.e2e.target import Target

ROOT = Path(__file__).resolve().parents[2]
DEV = tomllib.loads((ROOT / "samconfig.toml").read_text())["default"]["global"]["parameters"]
NEEDS_AWS_MACHINERY = "not queued_export and not table_export"
PROFILE = "e2e-offline"
SCENARIOS = ["tests/e2e/test_stack.py", "-k", NEEDS_AWS_MACHINERY]


@pytest.fixture
def local_target(target: Target) -> LocalTarget:
    assert isinstance(target, LocalTarget)
    return target


def _token_endpoint(target: LocalTarget, client_id: str, secret: str) -> ThreadingHTTPServer:
    """Cognito's /oauth2/token for one confidential client, minting the local issuer's tokens."""

    class TokenEndpoint(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            form = dict(urllib.parse.parse_qsl(body))
            basic = base64.b64decode(self.headers.get("Authorization", "")[len("Basic ") :])
            if basic.decode() != f"{client_id}:{secret}":
                status, answer = 401, {"error": "invalid_client"}
            elif form.get("grant_type") != "client_credentials":
                status, answer = 400, {"error": "unsupported_grant_type"}
            else:
                token = target.issuer.token(form.get("scope", "").split(), subject=client_id)
                status, answer = 200, {"access_token": token, "token_type": "Bearer"}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return ThreadingHTTPServer(("127.0.0.1", 0), TokenEndpoint)


@pytest.fixture
def looks_deployed(local_target: LocalTarget) -> Iterator[str]:
    """The dev stack's outputs over the local stack; yields the endpoint of its AWS."""
    aws = local_target.local.aws
    resources = local_target.local.deployment.resources
    cognito = aws.client("cognito-idp")
    pool = cognito.create_user_pool(PoolName="e2e-offline-callers")["UserPool"]["Id"]
    client = cognito.create_user_pool_client(
        UserPoolId=pool, ClientName="machine", GenerateSecret=True
    )["UserPoolClient"]
    server = _token_endpoint(local_target, client["ClientId"], client["ClientSecret"])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    outputs = {
        "ApiUrl": local_target.api_url,
        "ExportQueueUrl": resources["ExportQueue"],
        "ExportsBucketName": resources["ExportsBucket"],
        "ItemsTableName": resources["ItemsTable"],
        "ExportTableFunctionName": local_target.local.function("ExportTableFunction").name,
        "TokenIssuer": f"https://cognito-idp.{aws.region}.amazonaws.com/{pool}",
        "TokenEndpoint": f"http://127.0.0.1:{server.server_address[1]}/oauth2/token",
        "MachineClientId": client["ClientId"],
    }
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    cloudformation = aws.client("cloudformation")
    cloudformation.create_stack(StackName=DEV["stack_name"], TemplateBody=json.dumps(template))
    try:
        yield aws.endpoint_url
    finally:
        cloudformation.delete_stack(StackName=DEV["stack_name"])
        cognito.delete_user_pool(UserPoolId=pool)
        server.shutdown()
        server.server_close()


def test_the_scenarios_pass_through_the_deployed_target_as_make_e2e_runs_them(
    looks_deployed: str, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.write_text(
        f"[profile {PROFILE}]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "E2E_", "PYTEST_"))
    } | {
        # What `make e2e ENV=dev PROFILE=e2e-offline` sets (tests/infra/test_delivery.py).
        "E2E_STACK_NAME": DEV["stack_name"],
        "E2E_REGION": DEV["region"],
        "E2E_PROFILE": PROFILE,
        "E2E_SMOKE": "",
        # The profile's credentials, and this machine's AWS instead of the real one.
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": looks_deployed,
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", *SCENARIOS],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "6 passed, 2 deselected" in result.stdout, result.stdout[-2000:]
