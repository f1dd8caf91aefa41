"""``make api``: the template's HTTP API on 127.0.0.1, without Docker, as API Gateway serves it.

Starts an embedded AWS (provisioned from template.yaml and seeded, as ``make aws`` does) and an
HTTP server on a free port (printed) that does what API Gateway does for each request:

- finds the route the template declares for it (:mod:`tools.emulator.http_api`), else 404
  ``{"message":"Not Found"}``;
- runs the route's JWT authorizer (:mod:`tools.emulator.jwt_authorizer`): 401 / 403 before any
  function runs. The authorizer trusts the local issuer (``make token``) in place of the issuer and
  audience the template names; which routes need a token, from which header, with which scopes,
  is the template's;
- builds the payload-2.0 event (:mod:`tools.emulator.http_payload`) and invokes the route's function
  in a warm execution environment of its own (:mod:`tools.emulator.environment_pool`): its own
  role's credentials, its timeout, one init per environment;
- maps the function's response back by payload 2.0's rules; a function error, a timeout or a
  response that cannot be mapped is 500 ``{"message":"Internal Server Error"}``.

It also serves the local issuer's keys at ``/.well-known/jwks.json`` (the authorizer fetches them
there, as API Gateway fetches an issuer's). One access-log line per request goes to stderr, with
the fields the template's access log has. Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import IO, Any

from tools.emulator import (
    command_line,
    execution_environment,
    http_api,
    invoke_inputs,
    local_lambda,
    sam_template,
)
from tools.emulator.environment_pool import EnvironmentPool
from tools.emulator.execution_environment import EnvironmentEndedError, WarmEnvironment
from tools.emulator.http_api import HttpApi, Route
from tools.emulator.http_payload import (
    EventContext,
    Request,
    Response,
    UnmappableResponseError,
    map_response,
    message,
    request_event,
    request_id,
)
from tools.emulator.jwt_authorizer import DeniedError, JwtVerifier, jwks_keys
from tools.emulator.local_issuer import KEY_DIRECTORY, LocalIssuer
from tools.emulator.local_lambda import LocalAws

PROGRAM = "api"
JWKS_PATH = "/.well-known/jwks.json"
MAX_BODY_BYTES = 10 * 1024 * 1024
"""HTTP API's payload quota: a larger request is 413 before any route runs."""
API_ID = "localapi"


@dataclass(frozen=True)
class _Outcome:
    """How one request ended, and what the access log says of it."""

    response: Response
    route: Route | None = None
    request_id: str = field(default_factory=request_id)
    claims: dict[str, str] = field(default_factory=dict)
    authorizer_error: str = ""
    integration_error: str = ""


class LocalApi:
    """The API's behaviour, one request at a time (the server calls it from many threads)."""

    def __init__(
        self,
        local: LocalAws,
        api: HttpApi,
        issuer: LocalIssuer,
        *,
        port: int,
        use_build: bool = True,
        stderr: IO[str] | int | None = None,
        access_log: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.local = local
        self.api = api
        self.issuer = issuer
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._clock = clock
        self._access_log = access_log
        self.warnings: list[str] = list(local.deployment.warnings)
        keys = jwks_keys(self.url + JWKS_PATH)
        self.verifiers = {
            name: JwtVerifier(authorizer.header, issuer.issuer, (issuer.audience,), keys)
            for name, authorizer in api.authorizers.items()
        }
        self.pools: dict[str, EnvironmentPool] = {}
        for function_id in sorted({route.function_id for route in api.routes}):
            function = local.function(function_id)
            code = execution_environment.code_for(
                function, local.deployment.template_path, use_build
            )
            self.warnings += code.warnings
            variables, _ = local_lambda.function_variables(function, None)
            start = functools.partial(
                WarmEnvironment, function, local.aws, code=code, variables=variables, stderr=stderr
            )
            self.pools[function_id] = EnvironmentPool(start)

    def handle(self, request: Request) -> Response:
        started = self._clock()
        outcome = self._outcome(request, started)
        response = Response(
            outcome.response.status,
            [*outcome.response.headers, ("apigw-requestid", outcome.request_id)],
            outcome.response.body,
        )
        if self._access_log:
            claims = outcome.claims
            self._access_log(
                json.dumps(
                    {
                        "requestId": outcome.request_id,
                        "ip": request.source_ip,
                        "routeKey": outcome.route.key if outcome.route else "-",
                        "status": str(response.status),
                        "latencyMs": str(int((self._clock() - started) * 1000)),
                        "subject": claims.get("sub", "-"),
                        "clientId": claims.get("client_id", "-"),
                        "authorizerError": outcome.authorizer_error or "-",
                        "integrationError": outcome.integration_error or "-",
                    }
                )
            )
        return response

    def _outcome(self, request: Request, now: float) -> _Outcome:
        if request.method == "GET" and request.raw_path == JWKS_PATH:
            body = json.dumps(self.issuer.jwks).encode()
            return _Outcome(Response(200, [("Content-Type", "application/json")], body))
        if len(request.body) > MAX_BODY_BYTES:
            return _Outcome(message(413, "Request Entity Too Large"))
        matched = self.api.match(request.method, request.raw_path)
        if matched is None:
            return _Outcome(message(404, "Not Found"))
        route, parameters = matched
        authorizer = None
        if route.authorizer is not None:
            verifier = self.verifiers[route.authorizer.name]
            try:
                authorizer = verifier.authorize(request.combined_headers(), route.scopes, now)
            except DeniedError as denied:
                headers = [("www-authenticate", denied.www_authenticate)]
                refusal = message(denied.status, denied.message, headers)
                return _Outcome(refusal, route, authorizer_error=denied.description)
        host = request.combined_headers().get("host", "127.0.0.1").rsplit(":", 1)[0]
        context = EventContext(
            route_key=route.key,
            path_parameters=parameters,
            authorizer=authorizer,
            api_id=API_ID,
            domain_name=host,
            port=self.port,
            now=now,
        )
        response, problem = self._integrate(route, request, context)
        claims = authorizer["jwt"]["claims"] if authorizer else {}
        return _Outcome(response, route, context.request_id, claims, integration_error=problem)

    def _integrate(
        self, route: Route, request: Request, context: EventContext
    ) -> tuple[Response, str]:
        """The function's answer, or API Gateway's 500 and why (for the access log)."""
        event = request_event(request, context)
        try:
            invocation = self.pools[route.function_id].invoke(event)
        except EnvironmentEndedError as error:
            return message(500, "Internal Server Error"), f"environment ended: {error}"
        if invocation.error:
            error_type = invocation.response.get("errorType", "error")
            return message(500, "Internal Server Error"), f"function error: {error_type}"
        try:
            return map_response(invocation.response), ""
        except UnmappableResponseError as error:
            return message(500, "Internal Server Error"), f"malformed response: {error}"

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length > 0 else b""


def _handler_class(api: LocalApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as API Gateway's clients expect
        server_version = "local-api"

        def _serve(self) -> None:
            try:
                body = _read_body(self)
            except ValueError:
                self.send_error(400, "bad request body")
                return
            request = Request(
                method=self.command,
                target=self.path,
                headers=list(self.headers.items()),
                body=body,
                source_ip=self.client_address[0],
                protocol=self.request_version,
            )
            response = api.handle(request)
            self.send_response(response.status)
            for name, value in response.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        def __getattr__(self, name: str) -> Callable[[], None]:
            """Every method, TRACE or one of its own invention included: API Gateway answers
            any (404 where no route has it), never 501."""
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: ANN401
            """Silent: :class:`LocalApi` writes the access log."""

    return Handler


@dataclass
class RunningApi:
    """A served API: its URL, its behaviour (the pools' stats) and the local issuer."""

    url: str
    api: LocalApi
    issuer: LocalIssuer


@contextmanager
def serve(
    local: LocalAws,
    *,
    issuer: LocalIssuer,
    api_id: str | None = None,
    port: int = 0,
    use_build: bool = True,
    stderr: IO[str] | int | None = None,
    access_log: Callable[[str], None] | None = None,
) -> Iterator[RunningApi]:
    """The template's HTTP API over ``local`` (an embedded AWS with the template provisioned),
    on 127.0.0.1 (a free port unless ``port``), until exit."""
    template = sam_template.load(local.deployment.template_path)
    api_spec = http_api.the_api(template, api_id)
    holder: dict[str, LocalApi] = {}

    class Server(ThreadingHTTPServer):
        daemon_threads = True

    def handler(*args: Any) -> BaseHTTPRequestHandler:  # noqa: ANN401
        return _handler_class(holder["api"])(*args)

    server = Server(("127.0.0.1", port), handler)
    bound = int(server.server_address[1])
    api = LocalApi(
        local,
        api_spec,
        issuer,
        port=bound,
        use_build=use_build,
        stderr=stderr,
        access_log=access_log,
    )
    holder["api"] = api
    thread = threading.Thread(target=server.serve_forever, name="local-api", daemon=True)
    thread.start()
    try:
        yield RunningApi(api.url, api, issuer)
    finally:
        server.shutdown()
        server.server_close()
        api.close()


@contextmanager
def running(
    template_path: Path = sam_template.TEMPLATE,
    *,
    issuer: LocalIssuer,
    parameters: dict[str, str] | None = None,
    stack_name: str = invoke_inputs.DEFAULT_STACK_NAME,
    seed_file: Path | None = None,
    region: str = sam_template.DEFAULT_REGION,
    port: int = 0,
    use_build: bool = True,
    stderr: IO[str] | int | None = None,
    access_log: Callable[[str], None] | None = None,
) -> Iterator[RunningApi]:
    """All of ``make api``: an embedded AWS, the template provisioned and seeded, the API."""
    with ExitStack() as stack:
        local = stack.enter_context(
            local_lambda.embedded(
                template_path,
                parameters=parameters,
                stack_name=stack_name,
                seed_file=seed_file,
                region=region,
            )
        )
        yield stack.enter_context(
            serve(
                local,
                issuer=issuer,
                port=port,
                use_build=use_build,
                stderr=stderr,
                access_log=access_log,
            )
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__.split("\n\n")[0])
    parser.add_argument("-t", "--template", type=Path, default=sam_template.TEMPLATE)
    parser.add_argument("--parameter-overrides", metavar="'K=V K2=V2'")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: free)")
    parser.add_argument("--seed", type=Path, help="seed file (default: events/seed.json)")
    parser.add_argument(
        "--no-build", action="store_true", help="run src/, not the sam build artifact"
    )
    parser.add_argument(
        "--key-directory",
        type=Path,
        default=KEY_DIRECTORY,
        help="the local issuer's key (%(default)s), as make token's",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    return parser


def _say(text: str) -> None:
    command_line.say(PROGRAM, text)


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    invoke_inputs.forget_developer_aws_config()
    stopped = threading.Event()

    def stop(_signal: int, _frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)

    def run() -> int:
        import logging

        logging.getLogger("samtranslator").setLevel(logging.ERROR)
        template = arguments.template.resolve()
        seed_file = arguments.seed or invoke_inputs.events_dir(template) / "seed.json"
        issuer = LocalIssuer.load(arguments.key_directory)
        with running(
            template,
            issuer=issuer,
            parameters=invoke_inputs.parse_parameter_overrides(arguments.parameter_overrides),
            seed_file=seed_file if seed_file.exists() or arguments.seed else None,
            region=os.environ.get("AWS_REGION") or sam_template.DEFAULT_REGION,
            port=arguments.port,
            use_build=not arguments.no_build,
            access_log=lambda line: print(line, file=sys.stderr, flush=True),
        ) as served:
            print(served.url, flush=True)
            for warning in served.api.warnings:
                _say(f"warning: {warning}")
            for route in served.api.api.routes:
                needs = (
                    f"token, scopes {list(route.scopes) or 'any'}"
                    if route.authorizer
                    else "no token"
                )
                _say(f"  {route.key} -> {route.function_id} ({needs})")
            _say(f"JWT authorizer trusts the local issuer {issuer.issuer}: `make token`")
            _say(
                f'  curl -H "Authorization: Bearer $(make -s token SCOPES=items/read)" '
                f"{served.url}/items/42"
            )
            _say("Ctrl-C stops it")
            stopped.wait()
        return 0

    return command_line.run_command(PROGRAM, run, debug=arguments.debug)


if __name__ == "__main__":
    sys.exit(main())
