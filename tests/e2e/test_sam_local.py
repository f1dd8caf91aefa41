"""The real SAM CLI in Docker, against the embedded AWS: ``make sam-local`` and ``make sam-api``.

Every event in events/ goes through the real ``sam local invoke`` (a container per invoke, the
``sam build`` artifact, the image ``make engine`` builds where no registry is reachable) and
through ``make invoke``'s runner, each in its own stack of one shared embedded AWS: the responses
must be what events/expected.json says, and the two runners must agree on every response and every
object written. ``sam local start-api --warm-containers EAGER`` is then called over HTTP on every
route. Where no Docker engine answers (or it has no python3.13 image) the engine tests are skipped,
with the reason; ``make engine`` provides both, and CI runs it first.
"""

import gzip
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EVENTS, EXPECTED, event_names, load_event, matches_expected
from tools.emulator import execution_environment, local_lambda, sam_local, sam_template
from tools.emulator.local_lambda import LocalAws
from tools.emulator.sam_local import Image
from tools.emulator.seed import load_seed

ROOT = Path(__file__).resolve().parents[2]
SEED = EVENTS / "seed.json"
SEEDED = {item["item_id"]: item for item in load_seed()["ItemsTable"]}
FUNCTIONS = sorted({name.split("/")[0] for name in event_names()})
REGION = sam_template.DEFAULT_REGION
SAM_TIMEOUT = 180
SAM_AT_ONCE = 6
"""Concurrent ``sam local invoke`` processes: each mostly waits on its container."""


# --- Without an engine: what the commands give SAM ----------------------------------------------


def test_the_sam_process_gets_the_role_credentials_and_nothing_of_the_developers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "AWS_PROFILE": "developer",
        "AWS_ACCESS_KEY_ID": "AKIADEVELOPER",
        "AWS_SECRET_ACCESS_KEY": "developer-secret",
        "AWS_SESSION_TOKEN": "developer-token",
        "AWS_ENDPOINT_URL": "https://real-aws.invalid",
    }.items():
        monkeypatch.setenv(name, value)
    role = {"AWS_ACCESS_KEY_ID": "ASIAROLE", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t"}

    environment = sam_local.sam_environment(role, "eu-west-1")

    aws = {name: value for name, value in environment.items() if name.startswith("AWS_")}
    assert aws == {
        **role,
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


def test_env_json_points_every_function_at_the_endpoint_through_parameters() -> None:
    env_json = sam_local.env_json({"GetItemFunction": {"TABLE_NAME": "t"}}, 4566)
    assert env_json == {
        "Parameters": {"AWS_ENDPOINT_URL": "http://host.docker.internal:4566"},
        "GetItemFunction": {"TABLE_NAME": "t"},
    }


def test_the_template_declares_the_endpoint_variable_sam_overrides() -> None:
    """``--env-vars`` overrides only declared variables: without this one it would do nothing."""
    declared = sam_template.load()["Globals"]["Function"]["Environment"]["Variables"]
    assert "AWS_ENDPOINT_URL" in declared


@pytest.mark.parametrize(
    ("stdout", "failed"),
    [
        ('{"statusCode": 200, "body": "{}"}\n', False),
        ('logs\n{"errorMessage": "boom", "errorType": "RuntimeError"}\n', True),
        ('{"errorMessage": "Task timed out", "errorType": "Sandbox.Timedout"}', True),
        ("", True),
        ("not json\n", True),
    ],
)
def test_a_function_error_is_a_failure_although_sam_exits_0(stdout: str, failed: bool) -> None:
    assert sam_local.invoke_failed(stdout) is failed


def test_the_output_says_when_the_image_is_a_stand_in_of_another_architecture() -> None:
    image = Image("public.ecr.aws/lambda/python:3.13-rapid-arm64", "x86_64", stand_in=True)
    line = image.describe("arm64")
    assert "x86_64 stand-in" in line
    assert "the template declares arm64: it runs as x86_64" in line
    same = Image("public.ecr.aws/lambda/python:3.13-rapid-arm64", "arm64", stand_in=False)
    assert "declares" not in same.describe("arm64")


def test_sam_options_skip_the_pull_only_for_the_stand_in(tmp_path: Path) -> None:
    stand_in = Image("public.ecr.aws/lambda/python:3.13-rapid-arm64", "x86_64", stand_in=True)
    pulled = Image("public.ecr.aws/lambda/python:3.13-rapid-arm64", "arm64", stand_in=False)
    env_vars = tmp_path / "env.json"
    assert "--skip-pull-image" in sam_local.sam_options(env_vars, REGION, stand_in)
    assert "--skip-pull-image" not in sam_local.sam_options(env_vars, REGION, pulled)
    options = sam_local.sam_options(env_vars, REGION, None)
    assert options[options.index("--add-host") + 1] == "host.docker.internal:host-gateway"


# --- With an engine: the real SAM CLI ------------------------------------------------------------


@pytest.fixture(scope="module")
def image() -> Image:
    """The image SAM runs for the template's functions; skips the tier when there is none."""
    try:
        version = sam_local.engine_version()
    except sam_local.NoEngineError as error:
        pytest.skip(f"no Docker engine answers ({error})")
    template = sam_template.load()
    runtime = template["Globals"]["Function"]["Runtime"]
    wanted = sam_local.architecture(template, FUNCTIONS[0])
    found = sam_local.rapid_image(runtime, wanted)
    if found is None:
        pytest.skip(f"Docker {version} has no {runtime} {wanted} image: `make engine` builds one")
    return found


@pytest.fixture(scope="module")
def sam(image: Image) -> Path:
    configured = os.environ.get("TEST_SAM_CLI")
    sam = Path(configured) if configured else sam_local.SAM
    if not sam.is_file():  # what `make sam-local` would build: the pinned SAM CLI
        _make(".venv-sam/.installed")
    return sam


def _make(target: str) -> None:
    make = shutil.which("make")
    assert make is not None, "make is not installed"
    done = subprocess.run(
        [make, "--no-print-directory", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def built(sam: Path) -> Path:
    """The ``sam build`` artifact both runners use: made once, unless it is newer than the code."""
    built = sam_local.BUILT_TEMPLATE
    sources = [sam_template.TEMPLATE, *(ROOT / "src").rglob("*")]
    newest = max(p.stat().st_mtime for p in sources if p.is_file() and "__pycache__" not in p.parts)
    if not built.is_file() or built.stat().st_mtime < newest:
        _make("build")
    return built


@pytest.fixture(scope="module")
def aws(built: Path) -> Iterator[LocalAws]:
    """One embedded AWS for the tier, also on the Docker bridge, where the containers reach it."""
    with local_lambda.embedded(seed_file=SEED, stack_name="sam-local") as local:
        port = int(local.aws.endpoint_url.rsplit(":", 1)[-1])
        with sam_local.bridge_listener(port):
            yield local


@dataclass(frozen=True)
class Stack:
    """One stack of the template in the shared AWS, and the env.json that points SAM at it."""

    local: LocalAws
    env_json: Path

    def objects(self) -> dict[str, Any]:
        s3 = self.local.aws.client("s3")
        bucket = self.local.deployment.resources["ExportsBucket"]
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        return {k: _decoded(s3.get_object(Bucket=bucket, Key=k)["Body"].read()) for k in keys}

    def sam_environment(self, function_id: str) -> dict[str, str]:
        function = self.local.function(function_id)
        credentials = execution_environment.role_credentials(self.local.aws, function)
        return sam_local.sam_environment(credentials, REGION)


def _decoded(body: bytes) -> Any:
    """An object's content: JSON decoded, gzip (whose header has a time in it) unpacked."""
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    text = body.decode()
    try:
        return json.loads(text)
    except ValueError:
        return [json.loads(line) for line in text.splitlines()]  # JSON lines


def _stack(aws: LocalAws, name: str, directory: Path) -> Stack:
    local = aws if name == aws.deployment.stack_name else None
    local = local or local_lambda.provision_more(aws, name, seed_file=SEED)
    port = int(aws.aws.endpoint_url.rsplit(":", 1)[-1])
    variables = {fid: f.environment for fid, f in local.deployment.functions.items()}
    env_json = directory / f"{name}.env.json"
    env_json.write_text(json.dumps(sam_local.env_json(variables, port)))
    return Stack(local, env_json)


@dataclass(frozen=True)
class SamInvoke:
    payload: Any
    stderr: str


@pytest.fixture(scope="module")
def through_sam(
    aws: LocalAws, sam: Path, image: Image, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Stack, dict[str, SamInvoke]]:
    """Every event through ``sam local invoke``, several at once: the events are independent
    requests (each table export is a run of its own), so their order does not matter."""
    stack = _stack(aws, aws.deployment.stack_name, tmp_path_factory.mktemp("sam"))
    environments = {function_id: stack.sam_environment(function_id) for function_id in FUNCTIONS}

    def invoke(name: str) -> SamInvoke:
        function_id = name.split("/", maxsplit=1)[0]
        command = [str(sam), "local", "invoke", function_id, "--event", f"{EVENTS / name}.json"]
        command += sam_local.sam_options(stack.env_json, REGION, image)
        done = subprocess.run(
            command,
            cwd=ROOT,
            env=environments[function_id],
            capture_output=True,
            text=True,
            timeout=SAM_TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, f"{name}: sam exited {done.returncode}\n{done.stderr}"
        lines = done.stdout.strip().splitlines()
        assert lines, f"{name}: no payload\n{done.stderr[-3000:]}"
        return SamInvoke(json.loads(lines[-1]), done.stderr)

    with ThreadPoolExecutor(max_workers=SAM_AT_ONCE) as pool:
        outcomes = dict(zip(event_names(), pool.map(invoke, event_names()), strict=True))
    return stack, outcomes


@pytest.fixture(scope="module")
def through_runner(
    aws: LocalAws, through_sam: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Stack, dict[str, Any]]:
    """The same events through ``make invoke``'s runner, on the same artifact, in its own stack."""
    stack = _stack(aws, "sam-local-runner", tmp_path_factory.mktemp("runner"))

    def invoke(function_id: str) -> dict[str, Any]:
        names = [n for n in event_names() if n.startswith(f"{function_id}/")]
        invocations = local_lambda.invoke(
            stack.local,
            function_id,
            [load_event(n) for n in names],
            use_build=True,
            stderr=subprocess.DEVNULL,
        )
        return {name: i.response for name, i in zip(names, invocations, strict=True)}

    with ThreadPoolExecutor(max_workers=len(FUNCTIONS)) as pool:
        results = list(pool.map(invoke, FUNCTIONS))
    return stack, {name: response for result in results for name, response in result.items()}


@pytest.mark.parametrize("name", event_names())
def test_sam_local_invoke_answers_every_event_as_expected(
    name: str, through_sam: tuple[Stack, dict[str, SamInvoke]]
) -> None:
    outcome = through_sam[1][name]
    assert "errorType" not in outcome.payload, outcome.stderr[-3000:]
    matches_expected(outcome.payload, EXPECTED["responses"][name])


def test_sam_ran_the_stand_in_or_the_pulled_image_it_says(
    through_sam: tuple[Stack, dict[str, SamInvoke]], image: Image
) -> None:
    stderr = through_sam[1]["GetItemFunction/found"].stderr
    assert ("Requested to skip pulling images" in stderr) is image.stand_in
    assert "Mounting " + str(ROOT / ".aws-sam" / "build" / "GetItemFunction") in stderr


def test_a_found_item_comes_back_through_sam_as_seeded(
    through_sam: tuple[Stack, dict[str, SamInvoke]],
) -> None:
    body = json.loads(through_sam[1]["GetItemFunction/found"].payload["body"])
    assert body == json.loads(json.dumps(SEEDED["42"], default=float))


Outcome = tuple[dict[str, Any], dict[str, Any]]
"""Every event's response, and every object in the bucket afterwards."""
STAMPS = {"exported_at", "completed_at"}
"""When an object was written: each run's own, so compared only as being a time."""


def _unstamped(value: Any) -> Any:
    if isinstance(value, list):
        return [_unstamped(v) for v in value]
    if not isinstance(value, dict):
        return value
    for key in STAMPS & set(value):
        datetime.fromisoformat(value[key])  # a time, or the comparison fails here
    return {k: "<time>" if k in STAMPS else _unstamped(v) for k, v in value.items()}


def _comparable(stack: Stack, responses: dict[str, Any]) -> Outcome:
    """The responses and the bucket's objects with what differs between two runs replaced: the
    stack's physical names by logical ids, each on-demand run id (``manual-`` and Lambda's request
    id, new at every invoke) by the name of the event that started it, times by a mark."""
    text = json.dumps([responses, stack.objects()], sort_keys=True)
    physical = stack.local.deployment.resources
    for logical_id, name in sorted(physical.items(), key=lambda kv: -len(kv[1])):
        text = text.replace(name, f"<{logical_id}>")
    for name, response in sorted(responses.items()):
        run_id = response.get("run_id") if isinstance(response, dict) else None
        if isinstance(run_id, str) and run_id.startswith("manual-"):
            text = text.replace(run_id, f"<run of {name}>")
    compared, written = json.loads(text)
    return compared, _unstamped(written)


@pytest.fixture(scope="module")
def compared(
    through_sam: tuple[Stack, dict[str, SamInvoke]], through_runner: tuple[Stack, dict[str, Any]]
) -> tuple[Outcome, Outcome]:
    sam = {name: outcome.payload for name, outcome in through_sam[1].items()}
    return _comparable(through_sam[0], sam), _comparable(*through_runner)


def test_sam_and_the_runner_agree_on_every_response(compared: tuple[Outcome, Outcome]) -> None:
    (sam, _), (runner, _) = compared
    assert set(sam) == set(runner) == set(event_names())
    differ = {name: (sam[name], runner[name]) for name in sam if sam[name] != runner[name]}
    assert differ == {}


def test_sam_and_the_runner_write_the_same_objects(compared: tuple[Outcome, Outcome]) -> None:
    (_, sam_objects), (_, runner_objects) = compared
    assert sam_objects, "sam local invoke wrote nothing"
    assert sorted(sam_objects) == sorted(runner_objects)
    differ = [key for key in sam_objects if sam_objects[key] != runner_objects[key]]
    assert differ == []


def test_api_exports_through_sam_are_in_the_bucket(
    through_sam: tuple[Stack, dict[str, SamInvoke]],
) -> None:
    stack, outcomes = through_sam
    objects = stack.objects()
    for name in (n for n in outcomes if n.startswith("ExportItemFunction/")):
        response = outcomes[name].payload
        if response["statusCode"] >= 400:
            continue
        event = load_event(name)
        key = json.loads(response["body"])["key"]
        fields = json.loads(event["body"]).get("fields")
        item = json.loads(json.dumps(SEEDED[event["pathParameters"]["item_id"]], default=float))
        assert objects[key]["item"] == {
            k: v for k, v in item.items() if not fields or k in {"item_id", *fields}
        }


# --- sam local start-api ------------------------------------------------------------------------


@dataclass(frozen=True)
class Api:
    url: str
    stack: Stack
    output: list[str]
    """What SAM wrote to stderr, so far."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def api(
    aws: LocalAws, sam: Path, image: Image, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    """``sam local start-api --warm-containers EAGER`` on its own stack, until the module ends."""
    stack = _stack(aws, "sam-local-api", tmp_path_factory.mktemp("api"))
    port = _free_port()
    command = [str(sam), "local", "start-api", "--port", str(port), "--warm-containers", "EAGER"]
    command += sam_local.sam_options(stack.env_json, REGION, image)
    server = subprocess.Popen(
        command,
        cwd=ROOT,
        env=stack.sam_environment("GetItemFunction"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    ready = threading.Event()
    output: list[str] = []

    def watch() -> None:
        assert server.stderr is not None
        for line in server.stderr:
            output.append(line)
            if "Running on http://" in line:
                ready.set()
        ready.set()  # it ended: the wait below returns and the check fails with its output

    threading.Thread(target=watch, daemon=True).start()
    try:
        assert ready.wait(SAM_TIMEOUT), "sam local start-api did not start"
        assert server.poll() is None, "".join(output)[-3000:]
        yield Api(f"http://127.0.0.1:{port}", stack, output)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        sam_local.remove_warm_containers()


def _request(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 - local http
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_start_api_gets_an_item(api: Api) -> None:
    status, body = _request(f"{api.url}/items/42")
    assert status == 200
    assert body == json.loads(json.dumps(SEEDED["42"], default=float))


@pytest.mark.parametrize(("item_id", "status"), [("no-such-item", 404), ("no%20spaces!", 400)])
def test_start_api_answers_a_missing_or_malformed_item(api: Api, item_id: str, status: int) -> None:
    answered, body = _request(f"{api.url}/items/{item_id}")
    assert answered == status
    assert body["message"]


def test_start_api_exports_an_item_into_the_bucket(api: Api) -> None:
    status, body = _request(f"{api.url}/items/42/exports", "POST", b'{"fields": ["name"]}')
    assert status == 201, body
    assert api.stack.objects()[body["key"]]["item"] == {
        "item_id": "42",
        "name": SEEDED["42"]["name"],
    }


@pytest.mark.parametrize("body", [b"{not json", b'{"fields": "name"}'])
def test_start_api_rejects_a_bad_export_request(api: Api, body: bytes) -> None:
    before = api.stack.objects()
    status, answer = _request(f"{api.url}/items/42/exports", "POST", body)
    assert status == 400
    assert answer["message"]
    assert api.stack.objects() == before


# What SAM does with the template's JWT authorizer (measured with SAM CLI 1.170.0; README, "The
# local API"): it logs that it skips it and serves every route to anyone. make api enforces it.


def _jwt_authorizers() -> dict[str, Any]:
    from tools.emulator import http_api

    return http_api.the_api(sam_template.load()).authorizers


def test_start_api_skips_the_jwt_authorizer_and_serves_without_a_token(api: Api) -> None:
    authorizers = _jwt_authorizers()
    if not authorizers:
        pytest.skip("template.yaml declares no JWT authorizer yet")
    status, body = _request(f"{api.url}/items/42")
    assert status == 200, body  # API Gateway (and make api) would answer 401
    said = "".join(api.output)
    for name in authorizers:
        assert f"Authorizer '{name}' for route" in said
        assert "was not found, skipping" in said


def test_start_api_answers_an_unknown_route_as_a_rest_api_would(api: Api) -> None:
    """HTTP API answers 404 {"message":"Not Found"}; SAM answers as a REST API does."""
    status, body = _request(f"{api.url}/no-such-route")
    assert status == 403
    assert body == {"message": "Missing Authentication Token"}


def test_start_api_mounts_exactly_the_routes_make_api_serves(api: Api) -> None:
    """Besides: with a CorsConfiguration in the template (even an ``!If`` that is off by default)
    SAM also mounts OPTIONS on every route, for preflights (measured, SAM CLI 1.170.0)."""
    from tools.emulator import http_api

    said = "".join(api.output)
    mounted = re.findall(r"Mounting (\w+) at http://[^/]+(/\S*) \[([A-Z, ]+)\]", said)
    sam = {
        (function, method.strip(), path)
        for function, path, methods in mounted
        for method in methods.split(",")
        if method.strip() != "OPTIONS"
    }
    ours = {(r.function_id, r.method, r.path) for r in http_api.the_api(sam_template.load()).routes}
    assert sam == ours
