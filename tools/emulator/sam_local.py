"""``make sam-local`` and ``make sam-api``: the real SAM CLI, in Docker, against the embedded AWS.

``python -m tools.emulator.sam_local invoke FN [-e EVENT] [-- SAM_ARGS]`` and
``python -m tools.emulator.sam_local start-api [--port N] [-- SAM_ARGS]`` start an embedded AWS
(provisioned from template.yaml and seeded, as ``make aws`` does), then run ``sam local invoke`` or
``sam local start-api`` on the ``sam build`` artifact with what SAM cannot work out by itself:

- the network path: the embedded AWS listens on 127.0.0.1 and, where the engine runs on this
  machine (Docker on Linux), also on the Docker bridge's gateway (172.17.0.1), which only this
  machine's containers reach; the containers resolve ``host.docker.internal`` to it
  (``--add-host host.docker.internal:host-gateway``; Docker Desktop resolves it by itself);
- an env.json whose ``Parameters.AWS_ENDPOINT_URL`` points there: SAM's ``--env-vars`` overrides
  only variables the template declares, and ``Parameters`` applies to every function (the
  ``LocalEndpointUrl`` parameter does nothing under SAM: it cannot resolve the ``!If``);
- credentials of the function's own role, from ``sts:AssumeRole`` in the embedded AWS: SAM passes
  its own process's credentials into the container, so the SAM process gets those and nothing of
  the developer's AWS configuration;
- ``--skip-pull-image`` when the image SAM will run is the stand-in ``make engine`` builds (no
  registry needed); otherwise SAM pulls AWS's image as usual.

It says which image runs and for which architecture. ``sam local invoke`` exits 0 even when the
function failed; this command exits 1 then (the payload has ``errorType``), 2 on a wrong command
line or when no engine answers.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.emulator import command_line, invoke_inputs, sam_template
from tools.emulator.invoke_inputs import InputError

PROGRAM = "sam-local"
BUILT_TEMPLATE = sam_template.ROOT / ".aws-sam" / "build" / "template.yaml"
SAM = sam_template.ROOT / ".venv-sam" / "bin" / "sam"
ENV_JSON = sam_template.ROOT / ".aws-local" / "sam-env.json"
DOCKER_HOST_NAME = "host.docker.internal"
RAPID_REPOSITORY = "public.ecr.aws/lambda"
STAND_IN_LABEL = "items-service.lambda-image"
"""The label tools/emulator/lambda_image/build.sh puts on the images it builds."""


class NoEngineError(InputError):
    """No container engine answers: the tier that needs one cannot run."""


def _docker(*arguments: str) -> str:
    docker = shutil.which("docker")
    if docker is None:
        raise NoEngineError(
            "no docker command: `make engine` installs and starts one (Linux, root)"
        )
    done = subprocess.run(
        [docker, *arguments], capture_output=True, text=True, timeout=30, check=False
    )
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise NoEngineError(f"docker {arguments[0]}: {said} (`make engine` starts an engine)")
    return done.stdout.strip()


def engine_version() -> str:
    """The engine's version; raises :class:`NoEngineError` when none answers."""
    return _docker("version", "--format", "{{.Server.Version}}")


def bridge_gateway() -> str | None:
    """The default bridge's gateway when it is an address of this machine (Docker on Linux).

    The engine reports it, or (Debian's 20.10 does not) only the subnet, whose first address the
    engine gives its bridge.
    """
    try:
        config = json.loads(_docker("network", "inspect", "bridge", "--format", "{{json .IPAM}}"))
    except (NoEngineError, ValueError):
        return None
    for entry in config.get("Config") or []:
        gateway = entry.get("Gateway") or (
            str(next(ipaddress.ip_network(entry["Subnet"]).hosts())) if "Subnet" in entry else ""
        )
        if not gateway:
            continue
        with socket.socket() as probe:  # Docker Desktop's gateway lives in its VM, not here
            try:
                probe.bind((gateway, 0))
            except OSError:
                continue
        return gateway
    return None


def architecture(template: dict[str, Any], function_id: str) -> str:
    """The function's Lambda architecture, as the template (or its Globals) declares it."""
    properties = template["Resources"][function_id].get("Properties", {})
    globals_ = template.get("Globals", {}).get("Function", {})
    declared = properties.get("Architectures", globals_.get("Architectures", ["x86_64"]))
    return str(declared[0])


@dataclass(frozen=True)
class Image:
    """The image ``sam local`` runs for a function, and what it really is."""

    tag: str
    architecture: str
    """What its binaries are built for (``docker image inspect``), not what its tag says."""
    stand_in: bool

    def describe(self, wanted: str) -> str:
        what = (
            f"the {self.architecture} stand-in `make engine` built (AWS's runtime client and "
            "SAM's emulator, not AWS's image)"
            if self.stand_in
            else f"{self.architecture}, as pulled"
        )
        line = f"image {self.tag}: {what}"
        if self.architecture != wanted:
            line += (
                f"; the template declares {wanted}: it runs as {self.architecture}, natively, "
                f"and native code built for {wanted} would not load"
            )
        return line


def rapid_image(runtime: str, wanted: str) -> Image | None:
    """The image SAM runs for a zip function of ``runtime`` (e.g. python3.13), if it is here."""
    family, version = re.fullmatch(r"([a-z]+)([0-9.]+)", runtime).groups()  # type: ignore[union-attr]
    tag = f"{RAPID_REPOSITORY}/{family}:{version}-rapid-{wanted}"
    try:
        inspected = json.loads(_docker("image", "inspect", tag))[0]
    except (NoEngineError, ValueError, IndexError):
        return None
    labels = inspected.get("Config", {}).get("Labels") or {}
    machine = {"amd64": "x86_64", "arm64": "arm64"}.get(inspected["Architecture"], "unknown")
    return Image(tag, machine, stand_in=STAND_IN_LABEL in labels)


def env_json(functions: dict[str, dict[str, str]], port: int) -> dict[str, dict[str, str]]:
    """``--env-vars`` content: the endpoint for every function, each function's own variables."""
    return {
        "Parameters": {"AWS_ENDPOINT_URL": f"http://{DOCKER_HOST_NAME}:{port}"},
        **{logical_id: dict(variables) for logical_id, variables in sorted(functions.items())},
    }


def sam_environment(credentials: dict[str, str], region: str) -> dict[str, str]:
    """The SAM process's environment: these credentials and region, none of the developer's."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AWS_") or name in ("AWS_REGION", "AWS_DEFAULT_REGION")
    }
    return {
        **environment,
        **credentials,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "SAM_CLI_TELEMETRY": "0",
    }


def sam_options(env_vars_file: Path, region: str, image: Image | None) -> list[str]:
    """What every ``sam local`` command here takes: template, env.json, network, image."""
    options = ["--template", str(BUILT_TEMPLATE), "--env-vars", str(env_vars_file)]
    options += ["--region", region, "--add-host", f"{DOCKER_HOST_NAME}:host-gateway"]
    if image is not None and image.stand_in:
        options.append("--skip-pull-image")  # it stands in for an image no registry has here
    return options


@contextmanager
def bridge_listener(port: int) -> Iterator[str | None]:
    """The embedded AWS also on the bridge's gateway, same port (moto's state is per process).

    Yields the gateway, or None where the engine's gateway is not on this machine.
    """
    gateway = bridge_gateway()
    if gateway is None:
        yield None
        return
    from tools.emulator import embedded_aws

    with embedded_aws.moto_server(gateway, port):
        yield gateway


def _say(message: str) -> None:
    command_line.say(PROGRAM, message)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__.split("\n\n")[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    commands = parser.add_subparsers(dest="command", required=True)
    invoke = commands.add_parser("invoke", help="sam local invoke FN")
    invoke.add_argument("function_id", metavar="FUNCTION_LOGICAL_ID")
    invoke.add_argument("-e", "--event", type=Path, help="default: the function's default event")
    api = commands.add_parser("start-api", help="sam local start-api, until Ctrl-C")
    api.add_argument("--port", type=int, default=3000)
    for command in (invoke, api):
        command.add_argument("--sam", type=Path, default=SAM, help="the SAM CLI (%(default)s)")
        command.add_argument("sam_args", nargs="*", help="more sam arguments, after --")
    return parser


def run(arguments: argparse.Namespace) -> int:
    """Everything after parsing; input problems raise :class:`InputError`."""
    if not BUILT_TEMPLATE.is_file():
        raise InputError("no sam build artifact (.aws-sam/build): `make build` first")
    if not arguments.sam.is_file():
        raise InputError(f"no SAM CLI at {arguments.sam}: `make .venv-sam/.installed`")
    template = sam_template.load()
    if arguments.command == "invoke":
        if arguments.function_id not in sam_template.functions(template):
            known = ", ".join(sorted(sam_template.functions(template)))
            raise InputError(
                f"unknown function {arguments.function_id!r}; the template has: {known}"
            )
        event = arguments.event or invoke_inputs.default_event(
            sam_template.TEMPLATE, arguments.function_id
        )
        invoke_inputs.load_event(event)  # its one-line error now, not SAM's traceback later
        function_ids = [arguments.function_id]
    else:
        function_ids = sorted(
            logical_id
            for logical_id, resource in sam_template.functions(template).items()
            if any(
                e.get("Type") in ("Api", "HttpApi")
                for e in resource.get("Properties", {}).get("Events", {}).values()
            )
        )
    _say(f"engine: Docker {engine_version()}")

    from tools.emulator import execution_environment, local_lambda

    region = os.environ.get("AWS_REGION") or sam_template.DEFAULT_REGION
    seed_file = invoke_inputs.events_dir(sam_template.TEMPLATE) / "seed.json"
    with local_lambda.embedded(
        seed_file=seed_file if seed_file.exists() else None, region=region
    ) as local:
        port = int(local.aws.endpoint_url.rsplit(":", 1)[-1])
        with bridge_listener(port) as gateway:
            where = f"and on the Docker bridge {gateway}:{port}" if gateway else "only"
            _say(f"embedded AWS at {local.aws.endpoint_url} {where}")
            variables = {
                logical_id: function.environment
                for logical_id, function in local.deployment.functions.items()
            }
            ENV_JSON.parent.mkdir(parents=True, exist_ok=True)
            ENV_JSON.write_text(json.dumps(env_json(variables, port), indent=2) + "\n")
            runtime = local.function(function_ids[0]).runtime
            wanted = architecture(template, function_ids[0])
            image = rapid_image(runtime, wanted)
            _say(
                image.describe(wanted)
                if image
                else f"no {runtime} {wanted} image here: SAM pulls AWS's (needs its registry)"
            )
            role_of = function_ids[0]
            if len(function_ids) > 1:
                _say(
                    f"SAM gives every function the same credentials: {role_of}'s role "
                    f"({', '.join(f for f in function_ids if f != role_of)} too)"
                )
            function = local.function(role_of)
            credentials = execution_environment.role_credentials(local.aws, function)
            _say(f"credentials: {function.role_arn} (assumed in the embedded AWS)")
            environment = sam_environment(credentials, region)
            options = sam_options(ENV_JSON, region, image)
            if arguments.command == "invoke":
                command = [str(arguments.sam), "local", "invoke", arguments.function_id]
                command += ["--event", str(event), *options, *arguments.sam_args]
                return _invoke(command, environment)
            command = [str(arguments.sam), "local", "start-api", "--port", str(arguments.port)]
            command += [*options, *arguments.sam_args]
            return _serve(command, environment)


def invoke_failed(stdout: str) -> bool:
    """Whether ``sam local invoke``'s output is Lambda's error payload (SAM exits 0 either way)."""
    lines = stdout.strip().splitlines()
    try:
        payload = json.loads(lines[-1]) if lines else None
    except ValueError:
        return True
    return not lines or (isinstance(payload, dict) and "errorType" in payload)


def _invoke(command: list[str], environment: dict[str, str]) -> int:
    done = subprocess.run(command, env=environment, stdout=subprocess.PIPE, text=True, check=False)
    print(done.stdout, end="", flush=True)
    if done.returncode != 0:
        return done.returncode
    if invoke_failed(done.stdout):
        _say("the function failed (sam exits 0 even so)")
        return 1
    return 0


def _serve(command: list[str], environment: dict[str, str]) -> int:
    server = subprocess.Popen(command, env=environment)
    try:
        return server.wait()
    except KeyboardInterrupt:
        server.send_signal(signal.SIGINT)
        return server.wait()
    finally:
        remove_warm_containers()


def remove_warm_containers() -> None:
    """``start-api --warm-containers`` leaves its containers behind when it is stopped."""
    try:
        ids = _docker("ps", "-aq", "--filter", "label=sam.cli.container.type=lambda").split()
        if ids:
            _docker("rm", "-f", *ids)
    except NoEngineError:
        pass


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    invoke_inputs.forget_developer_aws_config()
    return command_line.run_command(PROGRAM, lambda: run(arguments), debug=arguments.debug)


if __name__ == "__main__":
    sys.exit(main())
