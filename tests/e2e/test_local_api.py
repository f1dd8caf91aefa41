"""``make api`` with a real HTTP client: routes, the JWT authorizer, payload 2.0, warm environments.

One local API (and embedded AWS) serves the module: template.yaml's routes plus test-only probes
(tests/e2e/local_api.py). Every answer is checked as API Gateway gives it: status, body, headers.
"""

import base64
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.e2e.local_api import EXPORT, READ, ROOT, Answer, call, running_api
from tools.emulator import local_api
from tools.emulator.local_issuer import LocalIssuer
from tools.emulator.seed import load_seed

SEEDED = {item["item_id"]: item for item in load_seed()["ItemsTable"]}
UNAUTHORIZED = {"message": "Unauthorized"}
FORBIDDEN = {"message": "Forbidden"}


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("local-api")


ACCESS_LOG: list[str] = []


@pytest.fixture(scope="module")
def served(directory: Path) -> Iterator[local_api.RunningApi]:
    with (
        (directory / "functions.log").open("w") as log,
        running_api(directory, log, ACCESS_LOG) as api,
    ):
        yield api


def _logged(request_id: str) -> dict[str, str]:
    lines = [json.loads(line) for line in ACCESS_LOG]
    return next(line for line in lines if line["requestId"] == request_id)


def _seeded(item_id: str) -> Any:
    return json.loads(json.dumps(SEEDED[item_id], default=float))


def _echo(served: local_api.RunningApi, path: str = "/probe/echo/x", **kwargs: Any) -> Answer:
    kwargs.setdefault("token", served.issuer.token([READ]))
    return call(served.url, kwargs.pop("method", "GET"), path, **kwargs)


# --- The template's routes ----------------------------------------------------------------------


def test_a_token_with_the_read_scope_gets_an_item(served: local_api.RunningApi) -> None:
    answer = call(served.url, "GET", "/items/42", token=served.issuer.token([READ]))
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers["apigw-requestid"]
    assert answer.json() == _seeded("42")


def test_the_handlers_own_answers_come_through(served: local_api.RunningApi) -> None:
    token = served.issuer.token([READ])
    missing = call(served.url, "GET", "/items/no-such-item", token=token)
    malformed = call(served.url, "GET", "/items/bad!id", token=token)
    assert (missing.status, malformed.status) == (404, 400)
    assert missing.json()["message"] != "Not Found"  # the function's 404, not API Gateway's
    assert malformed.json()["message"].startswith("item_id must be")


def test_a_token_with_the_export_scope_exports_an_item(served: local_api.RunningApi) -> None:
    token = served.issuer.token([EXPORT])
    body = b'{"fields": ["name"]}'
    headers = {"Content-Type": "application/json", "Idempotency-Key": "local-api-test"}
    first = call(served.url, "POST", "/items/42/exports", token=token, headers=headers, body=body)
    again = call(served.url, "POST", "/items/42/exports", token=token, headers=headers, body=body)
    assert (first.status, again.status) == (201, 200)
    assert first.json() == again.json()
    s3 = served.api.local.aws.client("s3")
    bucket = served.api.local.deployment.resources["ExportsBucket"]
    written = json.loads(s3.get_object(Bucket=bucket, Key=first.json()["key"])["Body"].read())
    assert written["item"] == {"item_id": "42", "name": SEEDED["42"]["name"]}


def test_a_bad_export_request_is_the_functions_400(served: local_api.RunningApi) -> None:
    token = served.issuer.token([EXPORT])
    answer = call(served.url, "POST", "/items/42/exports", token=token, body=b"{not json")
    assert answer.status == 400
    assert answer.json()["message"]


# --- The JWT authorizer -------------------------------------------------------------------------


def _other_key_token(issuer: LocalIssuer) -> str:
    stranger = LocalIssuer(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return stranger.token([READ])


def _same_kid_other_key(issuer: LocalIssuer) -> str:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = jwt.decode(
        issuer.token([READ]), options={"verify_signature": False}, algorithms=["RS256"]
    )
    return jwt.encode(claims, stranger, "RS256", headers={"kid": issuer.public_jwk["kid"]})


UNAUTHORIZED_TOKENS = {
    "no header": lambda issuer: None,
    "not a JWT": lambda issuer: "not-a-jwt",
    "expired": lambda issuer: issuer.token([READ], now=time.time() - 7200),
    "not yet valid": lambda issuer: issuer.token([READ], nbf=int(time.time()) + 600),
    "wrong issuer": lambda issuer: issuer.token([READ], iss="https://elsewhere.invalid"),
    "wrong audience": lambda issuer: issuer.token([READ], aud="someone-else"),
    "no audience, wrong client_id": lambda issuer: issuer.token([READ], aud=None),
    "no expiry": lambda issuer: issuer.token([READ], exp=None),
    "unknown key": _other_key_token,
    "forged signature": _same_kid_other_key,
    "symmetric algorithm": lambda issuer: jwt.encode(
        {"iss": issuer.issuer, "aud": issuer.audience, "exp": int(time.time()) + 60},
        "secret-secret-secret-secret-secret",
        "HS256",
        headers={"kid": issuer.public_jwk["kid"]},
    ),
}


@pytest.mark.parametrize("case", sorted(UNAUTHORIZED_TOKENS))
@pytest.mark.parametrize(("method", "path"), [("GET", "/items/42"), ("POST", "/items/42/exports")])
def test_every_route_refuses_a_missing_or_invalid_token_with_401(
    served: local_api.RunningApi, case: str, method: str, path: str
) -> None:
    token = UNAUTHORIZED_TOKENS[case](served.issuer)
    answer = call(served.url, method, path, token=token, body=b"{}" if method == "POST" else None)
    assert answer.status == 401, case
    assert answer.json() == UNAUTHORIZED
    assert answer.headers["www-authenticate"].startswith('Bearer scope="" error="invalid_token"')


def test_a_bearer_header_without_a_token_is_401(served: local_api.RunningApi) -> None:
    answer = call(served.url, "GET", "/items/42", headers={"Authorization": "Bearer "})
    assert (answer.status, answer.json()) == (401, UNAUTHORIZED)


def test_the_token_alone_without_bearer_is_accepted(served: local_api.RunningApi) -> None:
    headers = {"Authorization": served.issuer.token([READ])}
    assert call(served.url, "GET", "/items/42", headers=headers).status == 200


@pytest.mark.parametrize(
    ("method", "path", "scopes"),
    [
        ("GET", "/items/42", [EXPORT]),
        ("POST", "/items/42/exports", [READ]),
        ("GET", "/items/42", []),
        ("GET", "/items/42", ["items/readonly"]),
    ],
)
def test_a_valid_token_without_the_routes_scope_is_403(
    served: local_api.RunningApi, method: str, path: str, scopes: list[str]
) -> None:
    before = served.api.pools["ExportItemFunction"].stats.invocations
    answer = call(served.url, method, path, token=served.issuer.token(scopes), body=b"{}")
    assert answer.status == 403
    assert answer.json() == FORBIDDEN
    assert 'error="insufficient_scope"' in answer.headers["www-authenticate"]
    assert served.api.pools["ExportItemFunction"].stats.invocations == before  # never ran


def test_scopes_in_an_scp_list_count_too(served: local_api.RunningApi) -> None:
    token = served.issuer.token([], scope=None, scp=[EXPORT, READ])
    assert call(served.url, "GET", "/items/42", token=token).status == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nothing-here"),
        ("DELETE", "/items/42"),
        ("PUT", "/items/42/exports"),
        ("GET", "/items/42/"),
        ("GET", "/items"),
        ("PATCH", "/"),
        ("TRACE", "/items/42"),
        ("BREW", "/items/42"),
    ],
)
def test_a_route_the_template_lacks_is_404_before_any_token_check(
    served: local_api.RunningApi, method: str, path: str
) -> None:
    answer = call(served.url, method, path)
    assert answer.status == 404
    assert answer.json() == {"message": "Not Found"}


def test_the_access_log_says_who_called_and_why_a_call_was_refused(
    served: local_api.RunningApi,
) -> None:
    token = served.issuer.token([READ], subject="client-log")
    admitted = call(served.url, "GET", "/items/42", token=token)
    refused = call(served.url, "GET", "/items/42", token=served.issuer.token([READ], aud="x"))
    forbidden = call(served.url, "POST", "/items/42/exports", token=token, body=b"{}")
    line = _logged(admitted.headers["apigw-requestid"])
    assert (line["status"], line["subject"], line["clientId"]) == (
        "200",
        "client-log",
        "client-log",
    )
    assert line["routeKey"] == "GET /items/{item_id}"
    assert line["authorizerError"] == line["integrationError"] == "-"
    line = _logged(refused.headers["apigw-requestid"])
    assert (line["status"], line["subject"]) == ("401", "-")
    assert line["authorizerError"] == "the token does not have a valid audience"
    line = _logged(forbidden.headers["apigw-requestid"])
    assert (line["status"], line["routeKey"]) == ("403", "POST /items/{item_id}/exports")
    assert line["authorizerError"] == "the token does not have the required scopes"
    assert all(token not in entry for entry in ACCESS_LOG)


def test_a_function_error_is_named_in_the_access_log(served: local_api.RunningApi) -> None:
    answer = call(served.url, "GET", "/probe/fail")
    assert _logged(answer.headers["apigw-requestid"])["integrationError"] == (
        "function error: RuntimeError"
    )


def test_an_issuer_whose_keys_cannot_be_fetched_admits_no_one(
    served: local_api.RunningApi,
) -> None:
    """A JWKS URL nothing answers at (a closed port) refuses the token; it is no API error."""
    from tools.emulator.jwt_authorizer import DeniedError, JwtVerifier, jwks_keys

    issuer = served.issuer
    keys = jwks_keys("http://127.0.0.1:9/.well-known/jwks.json", timeout_seconds=1)
    verifier = JwtVerifier("authorization", issuer.issuer, (issuer.audience,), keys)
    token = issuer.token([READ])
    with pytest.raises(DeniedError) as denied:
        verifier.authorize({"authorization": f"Bearer {token}"}, (), time.time())
    assert denied.value.status == 401


def test_the_issuers_keys_are_served_as_a_jwks(served: local_api.RunningApi) -> None:
    answer = call(served.url, "GET", "/.well-known/jwks.json")
    assert answer.json() == served.issuer.jwks
    assert "d" not in answer.json()["keys"][0]  # the public half only


# --- The event the function gets ----------------------------------------------------------------


def test_the_event_is_payload_2_0_as_api_gateway_sends_it(served: local_api.RunningApi) -> None:
    before = time.time()
    answer = _echo(
        served,
        "/probe/echo/a%20b/c?tag=x&tag=y&empty=&q=%C3%A9",
        headers={"X-Custom": "One", "Cookie": "session=abc; theme=dark", "User-Agent": "probe/1"},
    )
    event = answer.json()["event"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "ANY /probe/echo/{rest+}"
    assert event["rawPath"] == "/probe/echo/a%20b/c"
    assert event["rawQueryString"] == "tag=x&tag=y&empty=&q=%C3%A9"
    assert event["queryStringParameters"] == {"tag": "x,y", "empty": "", "q": "é"}
    assert event["pathParameters"] == {"rest": "a b/c"}
    assert event["cookies"] == ["session=abc", "theme=dark"]
    assert event["headers"]["x-custom"] == "One"
    assert "cookie" not in event["headers"]
    assert all(name == name.lower() for name in event["headers"])
    assert event["isBase64Encoded"] is False
    assert "body" not in event
    context = event["requestContext"]
    assert context["routeKey"] == event["routeKey"]
    assert context["http"] == {
        "method": "GET",
        "path": "/probe/echo/a b/c",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "probe/1",
    }
    assert context["requestId"] == answer.headers["apigw-requestid"]
    assert before * 1000 - 1 <= context["timeEpoch"] <= time.time() * 1000 + 1
    assert context["time"].endswith(" +0000")
    assert context["stage"] == "$default"


def test_the_authorizers_claims_and_scopes_reach_the_function(
    served: local_api.RunningApi,
) -> None:
    token = served.issuer.token([READ, EXPORT], subject="client-7", groups=["a", "b"])
    event = _echo(served, token=token).json()["event"]
    jwt_context = event["requestContext"]["authorizer"]["jwt"]
    claims = jwt_context["claims"]
    assert jwt_context["scopes"] == [READ, EXPORT]
    assert claims["sub"] == claims["client_id"] == "client-7"
    assert claims["iss"] == served.issuer.issuer
    assert claims["groups"] == "[a b]"
    assert all(isinstance(value, str) for value in claims.values())  # exp too, as a string
    assert int(claims["exp"]) > time.time()


def test_an_open_route_has_no_authorizer_in_its_event(served: local_api.RunningApi) -> None:
    answer = call(served.url, "GET", "/probe/open")
    assert answer.status == 200
    assert "authorizer" not in answer.json()["event"]["requestContext"]


@pytest.mark.parametrize(
    ("content_type", "text"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("text/plain", True),
        ("application/xml", True),
        ("application/x-www-form-urlencoded", False),
        ("application/octet-stream", False),
        ("image/png", False),
        (None, False),
    ],
)
def test_bodies_are_text_for_text_types_and_base64_otherwise(
    served: local_api.RunningApi, content_type: str | None, text: bool
) -> None:
    body = b'{"a": "\xc3\xa9"}'
    headers = {"Content-Type": content_type} if content_type else {}
    event = _echo(served, method="POST", headers=headers, body=body).json()["event"]
    assert event["isBase64Encoded"] is (not text)
    sent = event["body"].encode() if text else base64.b64decode(event["body"])
    assert sent == body
    assert event["headers"]["content-length"] == str(len(body))


def test_binary_that_is_not_utf8_arrives_base64_even_as_text(
    served: local_api.RunningApi,
) -> None:
    body = bytes(range(256))
    headers = {"Content-Type": "text/plain"}
    event = _echo(served, method="PUT", headers=headers, body=body).json()["event"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


# --- The response mapping -----------------------------------------------------------------------


def test_headers_and_cookies_of_the_response_are_mapped(served: local_api.RunningApi) -> None:
    answer = _echo(served)
    assert answer.headers["x-probe"] == "echo"
    assert answer.headers.get_all("Set-Cookie") == ["first=1", "second=2; Path=/; HttpOnly"]
    assert "x-ignored" not in answer.headers  # multiValueHeaders is payload 1.0's


def test_a_base64_response_is_sent_as_bytes(served: local_api.RunningApi) -> None:
    answer = call(served.url, "GET", "/probe/binary")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/octet-stream"
    assert answer.body == bytes(range(256))


def test_a_response_without_status_code_is_a_200_json_body(served: local_api.RunningApi) -> None:
    answer = call(served.url, "GET", "/probe/plain")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {"hello": "world"}


@pytest.mark.parametrize("path", ["/probe/malformed", "/probe/fail", "/probe/slow"])
def test_an_error_a_timeout_or_an_unmappable_response_is_500(
    served: local_api.RunningApi, path: str
) -> None:
    answer = call(served.url, "GET", path)
    assert answer.status == 500
    assert answer.json() == {"message": "Internal Server Error"}


def test_a_timed_out_environment_is_replaced_and_its_timeout_is_the_functions(
    served: local_api.RunningApi,
) -> None:
    pool = served.api.pools["SlowProbe"]
    before = pool.stats.environments_started
    started = time.monotonic()
    statuses = [call(served.url, "GET", "/probe/slow").status for _ in range(2)]
    assert time.monotonic() - started < 10  # its 1 s timeout twice, not the 30 s it sleeps
    assert statuses == [500, 500]
    assert pool.stats.environments_started == before + 2


# --- Execution environments ---------------------------------------------------------------------


def test_sequential_requests_reuse_one_warm_environment(served: local_api.RunningApi) -> None:
    pool = served.api.pools["OpenProbe"]
    answers = [call(served.url, "GET", "/probe/open").json() for _ in range(5)]
    assert len({answer["pid"] for answer in answers}) == 1
    first = answers[0]["invocation"]
    assert [answer["invocation"] for answer in answers] == list(range(first, first + 5))
    assert pool.stats.environments_started == 1
    assert pool.stats.cold_invocations == 1


def test_concurrent_requests_get_environments_of_their_own(
    served: local_api.RunningApi, tmp_path: Path
) -> None:
    at_once = 4
    path = f"/probe/rendezvous?dir={tmp_path}&expected={at_once}"
    with ThreadPoolExecutor(max_workers=at_once) as pool:
        answers = list(pool.map(lambda _: call(served.url, "GET", path), range(at_once)))
    assert [answer.status for answer in answers] == [200] * at_once
    assert len({answer.json()["pid"] for answer in answers}) == at_once
    stats = served.api.pools["RendezvousProbe"].stats
    assert stats.most_busy == at_once
    again = [call(served.url, "GET", "/probe/open").status for _ in range(2)]
    assert again == [200, 200]


def test_concurrent_item_reads_all_succeed(served: local_api.RunningApi) -> None:
    token = served.issuer.token([READ])
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(
            pool.map(lambda _: call(served.url, "GET", "/items/7", token=token), range(12))
        )
    assert {answer.status for answer in answers} == {200}
    assert all(answer.json() == _seeded("7") for answer in answers)
    stats = served.api.pools["GetItemFunction"].stats
    assert stats.environments_started <= 6
    assert stats.cold_invocations == stats.environments_started  # one init per environment


def test_a_function_runs_as_its_own_role(served: local_api.RunningApi) -> None:
    answer = call(served.url, "GET", "/probe/whoami")
    role_name = served.api.local.function("WhoamiProbe").role_arn.rsplit("/", 1)[-1]
    assert f":assumed-role/{role_name}/" in answer.json()["arn"]


# --- make token ----------------------------------------------------------------------------------


def test_make_token_prints_a_token_the_api_accepts(
    served: local_api.RunningApi, directory: Path
) -> None:
    command = [sys.executable, "-m", "tools.emulator.local_issuer", "--scopes", READ]
    command += ["--key-directory", str(directory / "issuer")]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    token = done.stdout.strip()
    assert token not in done.stderr
    assert call(served.url, "GET", "/items/42", token=token).status == 200
    assert call(served.url, "POST", "/items/42/exports", token=token, body=b"{}").status == 403


def test_the_issuer_key_is_kept_private(tmp_path: Path) -> None:
    LocalIssuer.load(tmp_path)
    assert (tmp_path / "private-key.pem").stat().st_mode & 0o777 == 0o600
    assert LocalIssuer.load(tmp_path).public_jwk == LocalIssuer.load(tmp_path).public_jwk


# --- make api, the command ----------------------------------------------------------------------


def test_make_api_prints_its_url_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "tools.emulator.local_api", "--no-build"]
    command += ["--key-directory", str(tmp_path / "issuer")]
    server = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), server.stderr.read() if server.stderr else ""
        token = LocalIssuer.load(tmp_path / "issuer").token([READ])
        assert call(url, "GET", "/items/42", token=token).json() == _seeded("42")
        assert call(url, "GET", "/nothing-here").status == 404
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=60)
    assert server.returncode == 0, stderr
    assert "GET /items/{item_id} -> GetItemFunction" in stderr
    assert token not in stderr
