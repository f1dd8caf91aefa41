"""What the local invoke takes from its caller: events, env-vars files, parameter overrides.

Standard library only, so that a wrong command line is reported at once, before the embedded AWS
and its imports start. Every problem raises :class:`InputError`, one line long.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

DEFAULT_TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
DEFAULT_STACK_NAME = "local-invoke"
EnvVars = dict[str, dict[str, str]]
"""``sam local invoke --env-vars``: ``{"Parameters": {...}, "<FunctionLogicalId>": {...}}``."""


class InputError(Exception):
    """The command line, an event, an env-vars or a seed file is wrong; one line says how."""


def forget_developer_aws_config() -> None:
    """Drop this process's AWS profile, keys and endpoint; point its config files at nothing.

    The runner never talks to real AWS, but libraries that build a default session (the SAM
    translator does) would read a profile that may not exist here, or has expired. The region
    variables stay: they are only a default.
    """
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        if name not in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            del os.environ[name]
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull


def events_dir(template_path: Path) -> Path:
    return template_path.parent / "events"


def default_event(template_path: Path, function_id: str) -> Path:
    """``events/<FunctionLogicalId>/<default>.json``, the default named in events/expected.json."""
    expected = events_dir(template_path) / "expected.json"
    try:
        default = json.loads(expected.read_text())["defaults"][function_id]
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(
            f"no --event given and {expected} names no default event for {function_id}"
        ) from None
    return events_dir(template_path) / function_id / f"{default}.json"


def read_json(path: Path, what: str) -> Any:  # noqa: ANN401 - any JSON document
    """``path`` parsed as Lambda's runtime parses an event: numbers with a fraction as floats,
    which is what a handler gets in Lambda (seed files are read again by ``load_seed``, exactly)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise InputError(f"{what} {path} is a directory, not a file") from None
    except OSError as error:
        raise InputError(f"cannot read {what} {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{what} {path} is not text (UTF-8)") from None
    except json.JSONDecodeError as error:
        raise InputError(
            f"{what} {path} is not JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None


def load_event(path: Path) -> Any:  # noqa: ANN401 - an event is any JSON value
    return read_json(path, "event file")


def load_env_vars(path: Path) -> EnvVars:
    """An env-vars file in ``sam local invoke``'s shape, values as the strings Lambda passes."""
    document = read_json(path, "env-vars file")
    if not isinstance(document, dict):
        raise InputError(
            f'env-vars file {path} must be an object like {{"Parameters": {{"NAME": "value"}}}}'
        )
    env_vars: EnvVars = {}
    for scope, variables in document.items():
        if not isinstance(variables, dict):
            raise InputError(f"env-vars file {path}: {scope!r} must map variable names to values")
        env_vars[scope] = {}
        for name, value in variables.items():
            if isinstance(value, dict | list) or value is None:
                raise InputError(
                    f"env-vars file {path}: {scope}.{name} must be a string, number or boolean"
                )
            env_vars[scope][name] = str(value).lower() if isinstance(value, bool) else str(value)
    return env_vars


def parse_parameter_overrides(text: str | None) -> dict[str, str]:
    """``'K=V K2=V2'`` or ``ParameterKey=K,ParameterValue=V`` pairs, as ``sam`` accepts them."""
    overrides: dict[str, str] = {}
    try:
        tokens = shlex.split(text or "")
    except ValueError as error:
        raise InputError(f"--parameter-overrides: {error}") from None
    for token in tokens:
        if token.startswith("ParameterKey="):
            key_part, _, value_part = token.partition(",")
            key = key_part.removeprefix("ParameterKey=")
            if not value_part.startswith("ParameterValue="):
                raise InputError(f"--parameter-overrides: {token!r} has no ParameterValue=")
            overrides[key] = value_part.removeprefix("ParameterValue=")
            continue
        key, equals, value = token.partition("=")
        if not equals or not key:
            raise InputError(f"--parameter-overrides: {token!r} is not KEY=VALUE")
        overrides[key] = value
    return overrides
