"""``make aws``: keep an embedded AWS, provisioned from template.yaml and seeded, in the foreground.

For the real ``sam local invoke`` (with Docker) and for ``make invoke ARGS=--endpoint-url=...``.
It writes an env.json in ``sam local invoke --env-vars`` shape: each function's variables as the
embedded AWS resolved them, and ``AWS_ENDPOINT_URL`` via ``host.docker.internal``. Where a Docker
engine runs on this machine it also listens on the Docker bridge's gateway, which only this
machine's containers reach (``make sam-local`` does all this by itself). Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from tools.emulator import command_line, invoke_inputs, local_lambda, sam_local, sam_template
from tools.emulator.invoke_inputs import InputError
from tools.emulator.local_invoke import PROGRAM as INVOKE_PROGRAM
from tools.emulator.local_lambda import LocalAws

PROGRAM = "aws"
DEFAULT_ENV_JSON = sam_template.ROOT / ".aws-local" / "env.json"
DOCKER_HOST = "host.docker.internal"


def sam_env_vars(local: LocalAws, docker_host: str = DOCKER_HOST) -> dict[str, dict[str, str]]:
    """An env.json for ``sam local invoke --env-vars`` pointing the functions at ``local``.

    ``sam local invoke`` only overrides variables the template declares: template.yaml declares
    ``AWS_ENDPOINT_URL`` (an ``!If`` SAM cannot resolve), and ``Parameters`` applies to every
    function. The runner sets it regardless.
    """
    port = local.aws.endpoint_url.rsplit(":", 1)[-1]
    env_vars: dict[str, dict[str, str]] = {
        "Parameters": {"AWS_ENDPOINT_URL": f"http://{docker_host}:{port}"}
    }
    for logical_id, function in sorted(local.deployment.functions.items()):
        env_vars[logical_id] = dict(function.environment)
    return env_vars


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__)
    parser.add_argument("-t", "--template", type=Path, default=sam_template.TEMPLATE)
    parser.add_argument("--parameter-overrides", metavar="'K=V K2=V2'")
    parser.add_argument("--stack-name", default=invoke_inputs.DEFAULT_STACK_NAME)
    parser.add_argument(
        "--region",
        default=os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or sam_template.DEFAULT_REGION,
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: free)")
    parser.add_argument("--seed", type=Path, help="seed file (default: events/seed.json)")
    parser.add_argument("--env-json", type=Path, default=DEFAULT_ENV_JSON)
    return parser


def _say(message: str) -> None:
    command_line.say(PROGRAM, message)


def _stop_on_sigterm(stopped: threading.Event) -> None:
    def stop(_signal: int, _frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    invoke_inputs.forget_developer_aws_config()
    template = arguments.template.resolve()
    seed_file = arguments.seed or invoke_inputs.events_dir(template) / "seed.json"
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    stopped = threading.Event()
    _stop_on_sigterm(stopped)
    try:
        parameters = invoke_inputs.parse_parameter_overrides(arguments.parameter_overrides)
        with (
            local_lambda.embedded(
                template,
                parameters=parameters,
                stack_name=arguments.stack_name,
                seed_file=seed_file if seed_file.exists() or arguments.seed else None,
                region=arguments.region,
                port=arguments.port,
            ) as local,
            sam_local.bridge_listener(int(local.aws.endpoint_url.rsplit(":", 1)[-1])) as gateway,
        ):
            env_json: Path = arguments.env_json
            env_json.parent.mkdir(parents=True, exist_ok=True)
            env_json.write_text(json.dumps(sam_env_vars(local), indent=2) + "\n")
            endpoint = local.aws.endpoint_url
            print(endpoint, flush=True)
            _say(f"embedded AWS at {endpoint}; stack {arguments.stack_name} provisioned and seeded")
            for logical_id, physical_id in sorted(local.deployment.resources.items()):
                _say(f"  {logical_id}: {physical_id}")
            skipped = {
                logical_id: reason
                for logical_id, reason in local.deployment.not_created.items()
                if not local.deployment.resource_types[logical_id].startswith("AWS::Lambda::")
            }
            if skipped:
                names = ", ".join(sorted(skipped))
                _say(f"  not created here (moto cannot, or only Lambda uses them): {names}")
            _say(f"env.json for sam local invoke: {env_json}")
            port = endpoint.rsplit(":", 1)[-1]
            if gateway:
                _say(f"  also on the Docker bridge: {gateway}:{port}")
            _say(
                f"  sam local invoke FN --env-vars {env_json} --add-host {DOCKER_HOST}:host-gateway"
                " --skip-pull-image   (after sam build)"
            )
            _say(
                "  (SAM passes your shell's own AWS credentials in; make sam-local passes the "
                "function role's, from this AWS)"
            )
            _say(
                f"  make invoke FN=... ARGS='--endpoint-url {endpoint}'  "
                f"({INVOKE_PROGRAM} against this AWS)"
            )
            _say("Ctrl-C stops it")
            stopped.wait()
    except InputError as error:
        _say(str(error))
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
