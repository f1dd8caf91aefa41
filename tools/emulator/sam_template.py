"""Read ``template.yaml`` and translate it offline, the way CloudFormation's SAM transform would.

The tests and the local runner work on the translated template: that is what CloudFormation
deploys, and some errors (circular dependencies, for one) only exist there.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
from pathlib import Path
from typing import Any

import boto3
import botocore.session
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

# Managed policies SAM may attach by name; translating offline cannot list them from IAM.
_MANAGED_POLICIES = {
    name: f"arn:aws:iam::aws:policy/service-role/{name}"
    for name in ("AWSLambdaBasicExecutionRole", "AWSLambdaSQSQueueExecutionRole")
}


DEFAULT_REGION = "eu-west-1"

# Offline there is no feature toggle config: the translator says so on every DeploymentPreference
# ("Feature 'deployment_preference_condition_fix' not available"), and uses the default.
logging.getLogger("samtranslator.feature_toggle.feature_toggle").setLevel(logging.ERROR)


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as a dict, with short-form intrinsics (``!Ref``) in their long form."""
    document = yaml_parse(path.read_text())
    if not isinstance(document, dict) or "Resources" not in document:
        raise ValueError(f"{path} is not a CloudFormation/SAM template (no Resources)")
    return document


def _as_packaged(template: dict[str, Any]) -> dict[str, Any]:
    """A copy whose local ``CodeUri`` folders point at S3, as ``sam package`` would leave them."""
    packaged = copy.deepcopy(template)
    holders = [packaged.get("Globals", {}).get("Function", {})]
    holders += [resource.get("Properties", {}) for resource in functions(packaged).values()]
    for properties in holders:
        code_uri = properties.get("CodeUri")
        if isinstance(code_uri, str) and not code_uri.startswith("s3://"):
            properties["CodeUri"] = f"s3://local-artifacts/{code_uri.strip('/')}.zip"
    return packaged


def translate(
    template: dict[str, Any],
    parameter_overrides: dict[str, str] | None = None,
    region: str = DEFAULT_REGION,
) -> dict[str, Any]:
    """The CloudFormation template the SAM transform produces, for these parameters and region."""
    # Translating needs no credentials: a missing or expired AWS_PROFILE must not break it.
    offline = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
    session = boto3.Session(region_name=region, botocore_session=offline)
    translator = Translator(None, Parser(), boto_session=session)
    translated: dict[str, Any] = translator.translate(
        _as_packaged(template),
        parameter_values=dict(parameter_overrides or {}),
        get_managed_policy_map=lambda: dict(_MANAGED_POLICIES),
    )
    return translated


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``AWS::Serverless::Function`` resources, by logical id."""
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource.get("Type") == "AWS::Serverless::Function"
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m tools.emulator.sam_template OUT [Name=Value ...]``: the translation, to scan."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("out", type=Path, help="where to write the translated template (JSON)")
    parser.add_argument("parameters", nargs="*", metavar="Name=Value", help="parameter overrides")
    arguments = parser.parse_args(argv)
    overrides = dict(parameter.split("=", 1) for parameter in arguments.parameters)
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(translate(load(), overrides), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
