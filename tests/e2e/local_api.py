"""What the local API's tests share: the template they serve, a real HTTP client, tokens.

The template is template.yaml itself, plus test-only routes (tests/e2e/local_api_functions/) that
show what API Gateway does with odd responses, slow functions and concurrent requests. If
template.yaml declares no authorizer yet, a default JWT authorizer with per-route scopes is added
in the shape the deployed API has (``Auth.DefaultAuthorizer``, ``AuthorizationScopes``), so the
tests always exercise the template's own routes under a JWT authorizer.
"""

import copy
import http.client
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.emulator import local_api, sam_template
from tools.emulator.local_issuer import LocalIssuer

ROOT = Path(__file__).resolve().parents[2]
PROBES = Path(__file__).with_name("local_api_functions")
SEED = ROOT / "events" / "seed.json"
READ, EXPORT = "items/read", "items/export"
ROUTE_SCOPES = {("GET", "/items/{item_id}"): READ, ("POST", "/items/{item_id}/exports"): EXPORT}
"""The scope each of the template's routes requires where the template does not say yet."""
PROBE_ROUTES = {
    "EchoProbe": ("echo", "ANY", "/probe/echo/{rest+}", {"AuthorizationScopes": [READ]}),
    "OpenProbe": ("echo", "GET", "/probe/open", {"Authorizer": "NONE"}),
    "BinaryProbe": ("binary", "GET", "/probe/binary", {"Authorizer": "NONE"}),
    "PlainProbe": ("plain", "GET", "/probe/plain", {"Authorizer": "NONE"}),
    "MalformedProbe": ("malformed", "GET", "/probe/malformed", {"Authorizer": "NONE"}),
    "FailProbe": ("fail", "GET", "/probe/fail", {"Authorizer": "NONE"}),
    "SlowProbe": ("slow", "GET", "/probe/slow", {"Authorizer": "NONE"}),
    "RendezvousProbe": ("rendezvous", "GET", "/probe/rendezvous", {"Authorizer": "NONE"}),
    "WhoamiProbe": ("whoami", "GET", "/probe/whoami", {"Authorizer": "NONE"}),
}


def _api_id(template: dict[str, Any]) -> str:
    return next(
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource.get("Type") == "AWS::Serverless::HttpApi"
    )


def _with_authorizer(template: dict[str, Any]) -> None:
    api = template["Resources"][_api_id(template)]["Properties"]
    if "DefaultAuthorizer" in api.get("Auth", {}):
        return
    api["Auth"] = {
        "DefaultAuthorizer": "ItemsJwt",
        "Authorizers": {
            "ItemsJwt": {
                "IdentitySource": "$request.header.Authorization",
                "JwtConfiguration": {
                    "issuer": "https://issuer.example.com/deployed",
                    "audience": ["example-app-client"],
                },
            }
        },
    }
    for resource in sam_template.functions(template).values():
        for event in resource["Properties"].get("Events", {}).values():
            properties = event["Properties"]
            route = (str(properties.get("Method", "")).upper(), properties.get("Path", ""))
            scope = ROUTE_SCOPES.get(route)
            if event["Type"] == "HttpApi" and scope:
                properties["Auth"] = {"AuthorizationScopes": [scope]}


def served_template(directory: Path) -> Path:
    """template.yaml with the probes' routes (and an authorizer if it lacks one), as JSON."""
    template = copy.deepcopy(sam_template.load())
    template["Globals"]["Function"]["CodeUri"] = str(ROOT / "src")
    _with_authorizer(template)
    api_id = _api_id(template)
    for logical_id, (handler, method, path, auth) in PROBE_ROUTES.items():
        template["Resources"][logical_id] = {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "CodeUri": str(PROBES),
                "Handler": f"probes.{handler}",
                "Timeout": 1 if handler == "slow" else 10,
                "Events": {
                    "Route": {
                        "Type": "HttpApi",
                        "Properties": {
                            "ApiId": {"Ref": api_id},
                            "Method": method,
                            "Path": path,
                            "Auth": auth,
                        },
                    }
                },
            },
        }
    path = directory / "template.json"
    path.write_text(json.dumps(template, indent=1))
    return path


@dataclass(frozen=True)
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    url: str,
    method: str,
    path: str,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> Answer:
    """One request with a real HTTP client (http.client, a connection of its own)."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


@contextmanager
def running_api(
    directory: Path, stderr: Any, access_log: list[str] | None = None
) -> Iterator[local_api.RunningApi]:
    """``make api`` in-process, on the served template, until exit; its access log into
    ``access_log``."""
    issuer = LocalIssuer.load(directory / "issuer")
    with local_api.running(
        served_template(directory),
        issuer=issuer,
        seed_file=SEED,
        stack_name="local-api",
        use_build=False,
        stderr=stderr,
        access_log=None if access_log is None else access_log.append,
    ) as served:
        yield served
