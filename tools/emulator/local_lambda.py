"""The local invoke as a library: an embedded AWS built from the template, and invocations in it.

:mod:`tools.emulator.local_invoke` (``make invoke``) and :mod:`tools.emulator.serve_aws` (``make
aws``) are thin command lines over this; tests use it directly to share one embedded AWS between
many invokes. Every problem with the caller's input raises :class:`InputError` with a one-line
message.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tools.emulator import embedded_aws, execution_environment, provision, sam_template
from tools.emulator.embedded_aws import EmbeddedAws
from tools.emulator.execution_environment import Invocation
from tools.emulator.invoke_inputs import DEFAULT_STACK_NAME, EnvVars, InputError, read_json
from tools.emulator.provision import Customize, Deployment, Function
from tools.emulator.seed import load_seed, put_items

TABLE_TYPE = "AWS::DynamoDB::Table"


@dataclass
class LocalAws:
    """An embedded AWS with the template provisioned (and seeded) in it."""

    aws: EmbeddedAws
    deployment: Deployment

    def function(self, function_id: str) -> Function:
        functions = self.deployment.functions
        if function_id in functions:
            return functions[function_id]
        if function_id in self.deployment.not_created:
            reason = self.deployment.not_created[function_id]
            raise InputError(f"function {function_id} is not created: {reason}")
        raise InputError(
            f"unknown function {function_id!r}; the template has: {', '.join(sorted(functions))}"
        )


def check_function_id(template_path: Path, function_id: str) -> None:
    """Fail fast, before starting anything, on a function id the template does not have."""
    known = provision.function_ids(template_path)
    if function_id not in known:
        raise InputError(
            f"unknown function {function_id!r}; {template_path.name} has: {', '.join(known)}"
        )


def function_variables(
    function: Function, env_vars: EnvVars | None
) -> tuple[dict[str, str], list[str]]:
    """The template's variables with overrides, and warnings for overrides it does not declare.

    As in ``sam local invoke``: ``Parameters`` applies to every function, the function's own
    object wins over it, and only variables the template declares are overridden.
    """
    variables = dict(function.environment)
    warnings: list[str] = []
    for scope in ("Parameters", function.logical_id):
        for name, value in (env_vars or {}).get(scope, {}).items():
            if name in variables:
                variables[name] = value
            else:
                warnings.append(
                    f"--env-vars sets {name} ({scope}) but the template does not declare it for "
                    f"{function.logical_id}: ignored, as sam local invoke and Lambda would"
                )
    return variables, warnings


def seed(local: LocalAws, seed_file: Path) -> int:
    """Put the seed file's items into the tables it names by logical id; the item count."""
    read_json(seed_file, "seed file")  # the one-line errors; load_seed reads numbers as Decimal
    documents = load_seed(seed_file)
    if not isinstance(documents, dict):
        raise InputError(f"seed file {seed_file} must map table logical ids to lists of items")
    dynamodb = local.aws.client("dynamodb")
    count = 0
    for logical_id, items in documents.items():
        if local.deployment.resource_types.get(logical_id) != TABLE_TYPE:
            raise InputError(
                f"seed file {seed_file} names {logical_id!r}, which is not a DynamoDB table "
                "in the template"
            )
        put_items(dynamodb, local.deployment.resources[logical_id], items)
        count += len(items)
    return count


@contextmanager
def embedded(
    template_path: Path = sam_template.TEMPLATE,
    *,
    parameters: dict[str, str] | None = None,
    stack_name: str = DEFAULT_STACK_NAME,
    seed_file: Path | None = None,
    endpoint_url: str | None = None,
    region: str = sam_template.DEFAULT_REGION,
    port: int = 0,
    customize: Customize | None = None,
) -> Iterator[LocalAws]:
    """An embedded AWS (or the one at ``endpoint_url``) with the template provisioned and seeded."""
    with embedded_aws.start(region, endpoint_url, port) as aws:
        local = LocalAws(
            aws, provision.deploy(aws, template_path, parameters, stack_name, customize)
        )
        if seed_file is not None:
            seed(local, seed_file)
        yield local


def provision_more(
    local: LocalAws,
    stack_name: str,
    customize: Customize | None = None,
    *,
    parameters: dict[str, str] | None = None,
    seed_file: Path | None = None,
) -> LocalAws:
    """Another stack of the same template in the same embedded AWS (a variant, for a test)."""
    deployment = provision.deploy(
        local.aws, local.deployment.template_path, parameters, stack_name, customize
    )
    variant = LocalAws(local.aws, deployment)
    if seed_file is not None:
        seed(variant, seed_file)
    return variant


def invoke(
    local: LocalAws,
    function_id: str,
    events: list[Any],
    *,
    env_vars: EnvVars | None = None,
    use_build: bool = True,
    warn: Callable[[str], None] | None = None,
    on_invocation: Callable[[Invocation], None] | None = None,
    stderr: IO[str] | int | None = None,
) -> list[Invocation]:
    """Invoke the function once per event in one new execution environment (a fresh process)."""
    function = local.function(function_id)
    if not function.runtime.startswith("python"):
        raise InputError(f"{function_id} runs {function.runtime}; only Python runs locally")
    code = execution_environment.code_for(function, local.deployment.template_path, use_build)
    variables, warnings = function_variables(function, env_vars)
    here = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if function.runtime != here:
        warnings.append(f"{function_id} runs {function.runtime} in Lambda, {here} here")
    if function.layers:
        warnings.append(f"{function_id} has Layers, which the local run does not provide")
    if warn:
        # The stack's warnings name the function they are about: only this one's matter here.
        own = [w for w in local.deployment.warnings if w.startswith(f"{function_id} ")]
        for warning in [*own, *code.warnings, *warnings]:
            warn(warning)
    return execution_environment.run(
        function,
        local.aws,
        events,
        code=code,
        variables=variables,
        on_invocation=on_invocation,
        stderr=stderr,
    )
