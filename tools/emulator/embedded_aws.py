"""The embedded AWS: a moto server on 127.0.0.1, and the runner's own identity in it.

The runner talks to it with sessions that ignore the developer's AWS configuration (profiles,
``~/.aws``, ``AWS_*`` variables): nothing here may reach a real account, or depend on one.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.session

LOCAL_IP = "127.0.0.1"
ACCOUNT_ID = "123456789012"
"""moto's default account: the one an unknown access key acts in."""
_ANY_KEY = "testing"
_RUNNER_USER = "local-invoke-runner"
_ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


def isolated_session(
    region: str, access_key: str, secret_key: str, session_token: str | None = None
) -> boto3.Session:
    """A session with exactly these credentials: no profile, config file or environment."""
    core = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
    core.set_config_variable("config_file", os.devnull)
    core.set_config_variable("credentials_file", os.devnull)
    return boto3.Session(
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=session_token,
        region_name=region,
        botocore_session=core,
    )


@dataclass
class EmbeddedAws:
    """An endpoint speaking AWS, and the session the runner provisions and seeds with."""

    endpoint_url: str
    region: str
    embedded: bool
    """True when this process runs the server, so its IAM enforcement can be switched on."""
    session: boto3.Session = field(init=False)
    _clients: dict[str, Any] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.session = isolated_session(self.region, _ANY_KEY, _ANY_KEY)

    def client(self, service: str) -> Any:  # noqa: ANN401 - boto3's clients are typed by stubs
        """A client of the runner's current identity, built once."""
        if service not in self._clients:
            self._clients[service] = self.session.client(  # type: ignore[call-overload]
                service, endpoint_url=self.endpoint_url
            )
        return self._clients[service]

    def close(self) -> None:
        """Close the clients' connections: the server waits for idle keep-alive ones to end."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def _become(self, session: boto3.Session) -> None:
        self.close()
        self.session = session

    @contextmanager
    def enforcing_iam(self) -> Iterator[None]:
        """Make the server check every request against IAM policies, as AWS does, until exit.

        moto only enforces from a switch that is global to the process, so every embedded server
        in it enforces meanwhile. The runner first becomes an IAM user allowed everything: moto
        rejects the anonymous ``testing`` key once it enforces.
        """
        if not self.embedded:
            raise ValueError("IAM enforcement needs the embedded AWS; drop --endpoint-url")
        from tools.emulator import moto_fidelity

        anonymous = self.session
        self._become(self._runner_user_session())
        with moto_fidelity.patched():
            previous = self._set_auth("0")
            try:
                yield
            finally:
                self._set_auth(previous)
                self._become(anonymous)

    def _runner_user_session(self) -> boto3.Session:
        iam = self.client("iam")
        try:
            iam.get_user(UserName=_RUNNER_USER)
        except iam.exceptions.NoSuchEntityException:
            iam.create_user(UserName=_RUNNER_USER)
            iam.put_user_policy(
                UserName=_RUNNER_USER, PolicyName="AllowAll", PolicyDocument=json.dumps(_ALLOW_ALL)
            )
        for old in iam.list_access_keys(UserName=_RUNNER_USER)["AccessKeyMetadata"]:
            iam.delete_access_key(UserName=_RUNNER_USER, AccessKeyId=old["AccessKeyId"])
        key = iam.create_access_key(UserName=_RUNNER_USER)["AccessKey"]
        return isolated_session(self.region, key["AccessKeyId"], key["SecretAccessKey"])

    def _set_auth(self, unauthenticated_requests: str) -> str:
        """moto's own switch: how many requests it lets through before checking IAM (was)."""
        request = urllib.request.Request(  # noqa: S310 - our own endpoint, http by design
            f"{self.endpoint_url}/moto-api/reset-auth",
            data=unauthenticated_requests.encode(),
            headers={"Content-Type": "text/plain"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return str(json.loads(response.read())["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"])


@contextmanager
def moto_server(ip_address: str, port: int = 0) -> Iterator[tuple[str, int]]:
    """moto's server on ``ip_address`` (a free port unless ``port``), as AWS would answer; stopped
    on exit. Yields the host and the bound port. Every server of this process shares one state.
    """
    from moto.server import ThreadedMotoServer

    from tools.emulator import dynamodb_item_writes, s3_conditional_writes

    s3_conditional_writes.install()
    dynamodb_item_writes.install()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address=ip_address, port=port, verbose=False)
    server.start()
    try:
        yield server.get_host_and_port()
    finally:
        server.stop()


@contextmanager
def start(region: str, endpoint_url: str | None = None, port: int = 0) -> Iterator[EmbeddedAws]:
    """A moto server on 127.0.0.1 (a free port unless ``port``), stopped on exit.

    With ``endpoint_url``, use that server instead (``make aws``, say) and start nothing.
    """
    if endpoint_url:
        external = EmbeddedAws(endpoint_url.rstrip("/"), region, embedded=False)
        try:
            yield external
        finally:
            external.close()
        return
    with moto_server(LOCAL_IP, port) as (host, bound_port):
        aws = EmbeddedAws(f"http://{host}:{bound_port}", region, embedded=True)
        try:
            yield aws
        finally:
            aws.close()
