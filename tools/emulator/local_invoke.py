"""``sam local invoke`` without Docker or an AWS account:
``python -m tools.emulator.local_invoke FN``.

Starts an embedded AWS (a moto server on 127.0.0.1), provisions the template's resources in it
from template.yaml, seeds events/seed.json, and invokes the function the way Lambda would: a fresh
process, the template's handler and variables, its own role's credentials. Responses go to stdout
(one JSON document per line), logs and Lambda's START/END/REPORT lines to stderr.

Exit status: 0 when every invocation succeeded, 1 when the function failed (an unhandled error,
a failed init, a timeout), 2 when the command line or one of its files is wrong (one line on
stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from tools.emulator import command_line, invoke_inputs
from tools.emulator.invoke_inputs import DEFAULT_STACK_NAME, DEFAULT_TEMPLATE, InputError

if TYPE_CHECKING:
    from tools.emulator.execution_environment import Invocation

PROGRAM = "local-invoke"


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (its default prints the whole usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog=PROGRAM,
        description="Invoke a function of template.yaml locally, as Lambda would, against an "
        "embedded AWS provisioned from the template. Mirrors `sam local invoke`.",
    )
    parser.add_argument("function_id", metavar="FUNCTION_LOGICAL_ID")
    parser.add_argument(
        "-e",
        "--event",
        type=Path,
        help="event file, or - for stdin (default: events/FN/<default>.json, the default "
        "named in events/expected.json)",
    )
    parser.add_argument(
        "-n",
        "--env-vars",
        type=Path,
        help='JSON overrides, as for sam local invoke: {"Parameters": {...}, "FN": {...}}; only '
        "variables the template declares are overridden",
    )
    parser.add_argument("--parameter-overrides", metavar="'K=V K2=V2'", help="template parameters")
    parser.add_argument("-t", "--template", type=Path, default=DEFAULT_TEMPLATE)
    parser.add_argument(
        "--endpoint-url",
        help="use this running embedded AWS (say, `make aws`) instead of starting one",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="invoke N times in one execution environment (one init, then warm invocations)",
    )
    parser.add_argument(
        "--enforce-iam",
        action="store_true",
        help="make the embedded AWS check every call against the roles' IAM policies",
    )
    parser.add_argument("--seed", type=Path, help="seed file (default: events/seed.json)")
    parser.add_argument("--stack-name", default=DEFAULT_STACK_NAME, help="%(default)s by default")
    parser.add_argument(
        "--region",
        default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
        help="default: AWS_REGION, AWS_DEFAULT_REGION, else the template tools' region",
    )
    parser.add_argument(
        "--no-build",
        action="store_true",
        help="run CodeUri (src/) even when a `sam build` artifact exists",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    return parser


def _say(message: str) -> None:
    command_line.say(PROGRAM, message)


def _print_response(invocation: Invocation) -> None:
    """Each response on stdout as soon as it arrives, one JSON document per line: the payload
    as the runtime wrote it (a response's numbers exact, as Lambda returns them)."""
    print(invocation.payload, flush=True)


def _read_event(path: Path) -> object:
    if str(path) == "-":
        try:
            return json.loads(sys.stdin.read())
        except json.JSONDecodeError as error:
            raise InputError(f"the event on stdin is not JSON: {error.msg}") from None
    return invoke_inputs.load_event(path)


def run(arguments: argparse.Namespace) -> int:
    """Everything after parsing. Input errors raise before anything heavy is imported."""
    if arguments.repeat < 1:
        raise InputError("--repeat must be at least 1")
    template = arguments.template.resolve()
    if not template.is_file():
        raise InputError(f"template {arguments.template} does not exist")
    # An event file may hold any JSON, null included (Lambda passes None): only no -e means the
    # function's default event.
    event = _read_event(arguments.event) if arguments.event is not None else None
    env_vars = invoke_inputs.load_env_vars(arguments.env_vars) if arguments.env_vars else None
    parameters = invoke_inputs.parse_parameter_overrides(arguments.parameter_overrides)
    seed_file = arguments.seed or invoke_inputs.events_dir(template) / "seed.json"
    if arguments.enforce_iam and arguments.endpoint_url:
        raise InputError("--enforce-iam needs the embedded AWS: drop --endpoint-url")

    from tools.emulator import (  # boto3, moto...: ~1 s
        execution_environment,
        local_lambda,
        sam_template,
    )

    local_lambda.check_function_id(template, arguments.function_id)
    if arguments.event is None:
        event = invoke_inputs.load_event(
            invoke_inputs.default_event(template, arguments.function_id)
        )
    logging.getLogger("samtranslator").setLevel(logging.ERROR)  # "unpublished metrics" noise
    with local_lambda.embedded(
        template,
        parameters=parameters,
        stack_name=arguments.stack_name,
        seed_file=seed_file if seed_file.exists() or arguments.seed else None,
        endpoint_url=arguments.endpoint_url,
        region=arguments.region or sam_template.DEFAULT_REGION,
    ) as local:
        function = local.function(arguments.function_id)
        code = execution_environment.code_for(function, template, not arguments.no_build)
        _say(
            f"{function.logical_id}: {function.handler} from "
            f"{os.path.relpath(code.directory)} "
            f"({'sam build artifact' if code.from_build else 'source'}), "
            f"as {function.name}, AWS at {local.aws.endpoint_url} (stack {arguments.stack_name})"
        )
        with local.aws.enforcing_iam() if arguments.enforce_iam else contextlib.nullcontext():
            invocations = local_lambda.invoke(
                local,
                arguments.function_id,
                [event] * arguments.repeat,
                env_vars=env_vars,
                use_build=not arguments.no_build,
                warn=lambda message: _say(f"warning: {message}"),
                on_invocation=_print_response,
            )
    return 1 if any(invocation.error for invocation in invocations) else 0


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    invoke_inputs.forget_developer_aws_config()
    return command_line.run_command(PROGRAM, lambda: run(arguments), debug=arguments.debug)


if __name__ == "__main__":
    sys.exit(main())
