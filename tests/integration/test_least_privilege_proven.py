"""Least privilege, proven with IAM enforced: every inline statement is enough, and each is needed.

``test_least_privilege.py`` reads the policies; this runs them. One embedded AWS serves the module
with moto's IAM enforcement on (``EmbeddedAws.enforcing_iam``, which also fixes moto's known IAM
bugs), so every request a worker makes is judged against the policies of the role it runs as:

* **Enough**: each function runs all its events (``events/<Function>/``) with only its own role's
  policies, and the writer role's for S3 writes, and every event gets its expected response.
  Each SQS event source mapping polls its queue with only its function's role: moto runs no
  mappings, so the proof makes the mapping's calls itself, with the role's credentials, as Lambda
  does (``GetQueueAttributes``, ``ReceiveMessage`` until it has a message the proof sent, then
  ``DeleteMessage``).
* **Needed**: for every inline statement of every role in the translated template, found there
  (so a new statement is covered without touching this file), a variant stack without that one
  statement makes some event of a function using the role fail as AWS would: a 500 from the API
  (no retry fixes a denial), batch item failures from SQS, a function error from a direct
  invocation, or, for the statement the mapping needs, a denied poll. A statement that no event
  or poll needs fails the test: remove it, or add the event that needs it. Each action of a
  statement with several is also removed alone, in a variant of its own; for the actions moto
  does not authorize (``MOTO_DOES_NOT_AUTHORIZE``) that test is a strict xfail, which fails once
  moto starts checking them.
* **Nothing more**, with the roles' own credentials: the function role cannot write to the
  bucket, the writer role cannot read the table, the writer cannot write outside ``exports/``, and
  no function role can poll a queue but its own mapping's (the other function's, the dead-letter
  queues: SAM's AWSLambdaSQSQueueExecutionRole would let it poll every queue of the account).

``ExportTableFunction`` also runs ``{}`` with ``TABLE_EXPORT_RESERVE_SECONDS`` raised above its
timeout, so the run stops before its first page and must queue its continuation: that is the
event that needs ``sqs:SendMessage`` (the normal run finishes without it, and the short run never
scans). It also runs a **fanned-out** export (what ``TableExportFanOut=true`` sets) end to end:
the start, then every segment message the start put on ExportTableQueue, handed over as the
queue's event source mapping would; with only its role it writes the manifest and every item
once, and without any one statement of the Scan, UpdateItem and SendMessage it uses (their
variant stacks) it fails as AWS would.

Each variant is provisioned once, in the module's embedded AWS; all execution environments run
in parallel threads (each a worker process).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import EVENTS, EXPECTED, event_names, load_event
from tests.table_exports import assert_exported_once
from tools.emulator import local_lambda, local_template, sam_template
from tools.emulator.embedded_aws import isolated_session
from tools.emulator.execution_environment import Invocation, role_credentials
from tools.emulator.invoke_inputs import EnvVars
from tools.emulator.local_lambda import LocalAws
from tools.emulator.seed import load_seed
from tools.emulator.sqs_records import receive_records

SEED = EVENTS / "seed.json"
BASE_STACK = "least-privilege"
ROLE_TYPE = "AWS::IAM::Role"
FUNCTION_TYPE = "AWS::Lambda::Function"
ALIAS_TYPE = "AWS::Lambda::Alias"
MAPPING_TYPE = "AWS::Lambda::EventSourceMapping"
QUEUE_TYPE = "AWS::SQS::Queue"
KEY_REUSED = "ExportItemFunction/with_idempotency_key"
"""Sent again with other fields, it is the event that needs the writer's s3:GetObject (HeadObject
of the object the key's first use made)."""
SHORT_RESERVE: EnvVars = {"ExportTableFunction": {"TABLE_EXPORT_RESERVE_SECONDS": "100000"}}
"""More than the function's timeout: the run stops before its first page and must continue."""


# --- What the template grants ----------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    """One statement of one inline policy of one role in the translated template."""

    role: str
    policy: str
    index: int
    actions: tuple[str, ...]
    without: str | None = None
    """Remove only this one of the statement's actions; ``None`` removes the whole statement."""

    @property
    def id(self) -> str:
        granted = f"{self.role}[{self.policy}#{self.index}]"
        return (
            f"{granted}:{','.join(self.actions)}"
            if self.without is None
            else f"{granted}.{self.without}"
        )

    def each_action(self) -> list[Statement]:
        """One variant per action, for a statement with several: each action is needed too."""
        return (
            [replace(self, without=action) for action in self.actions]
            if len(self.actions) > 1
            else []
        )

    def remove(self, template: dict[str, Any]) -> None:
        """The customize hook of this statement's variant stack: the template without it."""
        policies = template["Resources"][self.role]["Properties"]["Policies"]
        (policy,) = [p for p in policies if p["PolicyName"] == self.policy]
        statements = policy["PolicyDocument"]["Statement"]
        assert _actions(statements[self.index]) == self.actions, "the template changed"
        if self.without is None:
            del statements[self.index]
        else:
            statements[self.index]["Action"] = [a for a in self.actions if a != self.without]


def _actions(statement: dict[str, Any]) -> tuple[str, ...]:
    action = statement["Action"]
    return tuple([action] if isinstance(action, str) else action)


def inline_statements(translated: dict[str, Any]) -> list[Statement]:
    """Every Allow statement of every role's inline policies."""
    found = []
    for role, resource in sorted(translated["Resources"].items()):
        if resource["Type"] != ROLE_TYPE:
            continue
        for policy in resource["Properties"].get("Policies", []):
            for index, statement in enumerate(policy["PolicyDocument"]["Statement"]):
                assert statement["Effect"] == "Allow", f"{role}: only Allow statements expected"
                found.append(Statement(role, policy["PolicyName"], index, _actions(statement)))
    return found


def functions_using(translated: dict[str, Any], role: str) -> list[str]:
    """The functions that run as ``role``, or (for another role) whose roles its trust names."""
    resources = translated["Resources"]
    role_of = {
        logical_id: resource["Properties"]["Role"]["Fn::GetAtt"][0]
        for logical_id, resource in resources.items()
        if resource["Type"] == FUNCTION_TYPE and "Fn::GetAtt" in resource["Properties"]["Role"]
    }
    own = [function for function, its_role in role_of.items() if its_role == role]
    if own:
        return sorted(own)
    trusted = local_template.references(resources[role]["Properties"]["AssumeRolePolicyDocument"])
    return sorted(function for function, its_role in role_of.items() if its_role in trusted)


def mapped_queues(translated: dict[str, Any]) -> dict[str, list[str]]:
    """Function -> the queues its SQS event source mappings poll (through its alias)."""
    resources = translated["Resources"]
    mapped: dict[str, list[str]] = {}
    for mapping in resources.values():
        if mapping["Type"] != MAPPING_TYPE:
            continue
        target = mapping["Properties"]["FunctionName"]["Ref"]
        if resources[target]["Type"] == ALIAS_TYPE:
            target = resources[target]["Properties"]["FunctionName"]["Ref"]
        queue = mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]
        assert resources[queue]["Type"] == QUEUE_TYPE, queue
        mapped.setdefault(target, []).append(queue)
    return mapped


TRANSLATED = sam_template.translate(sam_template.load())
PROVEN_ELSEWHERE = {
    "PreTrafficHookFunctionRole": (
        "its statements invoke Lambda versions (moto runs them only in Docker, and its Lambda is "
        "unusable with IAM enforced) and report to CodeDeploy (moto has no lifecycle hooks): "
        "tests/infra/test_least_privilege.py pins each statement to exactly the versions and "
        "deployment groups, tests/integration/test_pre_traffic_hook.py the calls it makes"
    ),
    "DeploymentRole": (
        "CodeDeploy's own role, which no function runs as, for alias shifts moto cannot run: "
        "tests/infra/test_least_privilege.py pins it to the live aliases, the rollback alarms "
        "and the hook"
    ),
}
"""Roles whose statements no event here can exercise, and where they are proven instead."""
STATEMENTS = [s for s in inline_statements(TRANSLATED) if s.role not in PROVEN_ELSEWHERE]
VARIANTS = [*STATEMENTS, *(action for s in STATEMENTS for action in s.each_action())]
MOTO_DOES_NOT_AUTHORIZE = {
    "sts:SetSourceIdentity": (
        "moto 5.2 authorizes sts:AssumeRole only; AWS also requires sts:SetSourceIdentity from a "
        "caller that passes a SourceIdentity, as the functions do"
    ),
}
"""Actions AWS checks and moto does not: their variants are expected to succeed (strictly)."""
FUNCTIONS = sorted(
    logical_id
    for logical_id, resource in TRANSLATED["Resources"].items()
    if resource["Type"] == FUNCTION_TYPE
)
MAPPED_QUEUES = mapped_queues(TRANSLATED)
QUEUES = sorted(
    logical_id
    for logical_id, resource in TRANSLATED["Resources"].items()
    if resource["Type"] == QUEUE_TYPE
)


def _set_by(function_id: str, parameters: dict[str, str]) -> EnvVars:
    """The function's variables as a stack deployed with ``parameters`` sets them (``!Ref``)."""
    variables = TRANSLATED["Resources"][function_id]["Properties"]["Environment"]["Variables"]
    set_by = {
        name: parameters[value["Ref"]]
        for name, value in variables.items()
        if isinstance(value, dict) and value.get("Ref") in parameters
    }
    assert len(set_by) == len(parameters), f"{function_id} does not read each of {parameters}"
    return {function_id: set_by}


FAN_OUT_FUNCTION = "ExportTableFunction"
FAN_OUT_RUN = "least-privilege-fan-out"
FAN_OUT_SEGMENTS = 2
FAN_OUT = _set_by(
    FAN_OUT_FUNCTION, {"TableExportFanOut": "true", "TableExportSegments": str(FAN_OUT_SEGMENTS)}
)
FAN_OUT_ACTIONS = {"dynamodb:Scan", "dynamodb:UpdateItem", "sqs:SendMessage"}
"""What the fanned-out export calls with the function's own role (S3 goes through the writer's)."""
FAN_OUT_VARIANTS = [
    statement
    for statement in STATEMENTS
    if FAN_OUT_FUNCTION in functions_using(TRANSLATED, statement.role)
    and set(statement.actions) & FAN_OUT_ACTIONS
]


# --- The events that exercise them -----------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One event of a function, with what it returns when the role allows everything it needs."""

    name: str
    function_id: str
    event: dict[str, Any]
    expected: dict[str, Any]
    env_vars: EnvVars | None = None

    @property
    def environment(self) -> tuple[str, bool]:
        """Probes sharing this run in one execution environment, in order."""
        return self.function_id, self.env_vars is not None

    def succeeded(self, invocation: Invocation) -> bool:
        if invocation.error or not isinstance(invocation.response, dict):
            return False
        for key, value in self.expected.items():
            if key == "batchItemFailures":
                failed = [entry["itemIdentifier"] for entry in invocation.response.get(key, [])]
                if sorted(failed) != sorted(value):
                    return False
            elif invocation.response.get(key) != value:
                return False
        return True

    def denied(self, invocation: Invocation) -> bool:
        """Failed the way AWS reports a denied call for this kind of event, and nothing worse."""
        response = invocation.response
        if "requestContext" in self.event:  # API Gateway: a clean 500: no retry fixes a denial
            return not invocation.error and response.get("statusCode") == 500
        if "Records" in self.event:  # SQS: more records reported for retry than expected
            if invocation.error:
                return False
            failed = {entry["itemIdentifier"] for entry in response.get("batchItemFailures", [])}
            return failed > set(self.expected.get("batchItemFailures", []))
        # A direct or scheduled invocation: a function error, so that Lambda retries it
        return invocation.error and response.get("errorType") == "DependencyError"


def probes_for(function_id: str) -> list[Probe]:
    probes = [
        Probe(name, function_id, load_event(name), EXPECTED["responses"][name])
        for name in event_names()
        if name.startswith(f"{function_id}/")
    ]
    if function_id == KEY_REUSED.split("/", maxsplit=1)[0]:
        reused = copy.deepcopy(load_event(KEY_REUSED))
        reused["requestContext"]["requestId"] += "-reused"
        reused["body"] = json.dumps({"fields": ["name"]})
        probes.append(  # after the key's first use: the object is there, made for other fields
            Probe(f"{KEY_REUSED} reused for other fields", function_id, reused, {"statusCode": 409})
        )
    if function_id in SHORT_RESERVE:
        probes.append(
            Probe(
                f"{function_id}/on_demand with a reserve longer than the timeout",
                function_id,
                load_event(f"{function_id}/on_demand"),
                {"status": "continuing", "items": 0},
                SHORT_RESERVE,
            )
        )
    return probes


# --- Running them ----------------------------------------------------------------------------


@dataclass
class Outcome:
    """A stack's probes, each with its invocation, and the logs of their environments."""

    invocations: dict[str, Invocation] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)
    """Probe name -> the log text of the environment it ran in."""
    error: BaseException | None = None
    polls: dict[str, str | None] = field(default_factory=dict)
    """Poll name (``<Function>/polls <Queue>``) -> the action it was denied, ``None`` if none."""
    fan_out: FanOut | None = None
    """The fanned-out export, in the stacks it is run in (the base, ``FAN_OUT_VARIANTS``)."""


@dataclass
class FanOut:
    """A fanned-out table export in one stack: its start, then its segments' messages."""

    local: LocalAws
    steps: list[tuple[Probe, Invocation]]
    log: str

    def denied(self) -> list[str]:
        """The steps that failed as AWS fails a denied call."""
        return [probe.name for probe, invocation in self.steps if probe.denied(invocation)]


def _run_environment(
    local: LocalAws, probes: list[Probe], logs_dir: Path, label: str
) -> tuple[list[Invocation], str]:
    """The probes in order, in one execution environment (they share a function and env vars)."""
    log = logs_dir / f"{label}.log"
    with log.open("w") as stderr:
        invocations = local_lambda.invoke(
            local,
            probes[0].function_id,
            [copy.deepcopy(probe.event) for probe in probes],
            env_vars=probes[0].env_vars,
            use_build=False,
            stderr=stderr,
        )
    return invocations, log.read_text()


def _fan_out(local: LocalAws, logs_dir: Path, label: str) -> FanOut:
    """Start a fanned-out run, then hand each message it sent to the function, as the queue's
    event source mapping would (in one environment, one after another: the last one to run
    finishes the run). A start that was denied sent nothing, and there is nothing more to run."""
    start = Probe(
        "fanned-out start",
        FAN_OUT_FUNCTION,
        {"run_id": FAN_OUT_RUN},
        {"status": "fanned-out"},
        FAN_OUT,
    )
    (started,), log = _run_environment(local, [start], logs_dir, f"{label}-start")
    sqs = local.aws.client("sqs")
    queue_url = local.deployment.resources["ExportTableQueue"]
    records: list[dict[str, Any]] = []
    # Received, a message stays hidden for the queue's visibility timeout: the loop ends.
    while received := receive_records(sqs, queue_url, local.aws.region, MaxNumberOfMessages=10):
        records += [r for r in received if json.loads(r["body"]).get("run_id") == FAN_OUT_RUN]
    segments = [
        Probe(
            f"fanned-out segment message {index}",
            FAN_OUT_FUNCTION,
            {"Records": [record]},
            {"batchItemFailures": []},
            FAN_OUT,
        )
        for index, record in enumerate(records)
    ]
    steps = [(start, started)]
    if segments:
        invocations, segments_log = _run_environment(local, segments, logs_dir, f"{label}-segments")
        steps += zip(segments, invocations, strict=True)
        log += segments_log
    return FanOut(local, steps, log)


def _poll(local: LocalAws, function_id: str, queue_id: str) -> str | None:
    """What Lambda's event source mapping calls for one batch of ``queue_id``, with the function's
    role as Lambda makes them: the first action denied, or ``None`` when all were allowed. The
    message polled is one this sends (as the runner); whatever else it receives first it leaves
    hidden, as a mapping would. AWS authorizes the mapping's batch deletes as sqs:DeleteMessage;
    moto names the action after the call, so this deletes one message at a time."""
    url = local.deployment.resources[queue_id]
    body = json.dumps({"least_privilege_poll": f"{function_id}/{queue_id}/{time.monotonic_ns()}"})
    local.aws.client("sqs").send_message(QueueUrl=url, MessageBody=body)
    sqs = _function_session(local, function_id).client("sqs", endpoint_url=local.aws.endpoint_url)
    action = "sqs:GetQueueAttributes"
    try:
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
        action = "sqs:ReceiveMessage"
        receipt = None
        while receipt is None:
            received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
            assert received.get("Messages"), f"{queue_id}: the message sent to poll never came"
            receipt = next(
                (m["ReceiptHandle"] for m in received["Messages"] if m["Body"] == body), None
            )
        action = "sqs:DeleteMessage"
        sqs.delete_message(QueueUrl=url, ReceiptHandle=receipt)
    except ClientError as error:
        if error.response["ResponseMetadata"]["HTTPStatusCode"] != 403:
            raise
        return action
    return None


def _polls(local: LocalAws, function_ids: list[str]) -> dict[str, str | None]:
    """Every SQS event source mapping of these functions, each polled once (``_poll``)."""
    return {
        f"{function_id}/polls {queue_id}": _poll(local, function_id, queue_id)
        for function_id in function_ids
        for queue_id in MAPPED_QUEUES.get(function_id, [])
    }


def _run_probes(
    local: LocalAws, function_ids: list[str], logs_dir: Path, label: str, pool: ThreadPoolExecutor
) -> Outcome:
    outcome = Outcome()
    environments: dict[tuple[str, bool], list[Probe]] = {}
    for function_id in function_ids:
        for probe in probes_for(function_id):
            environments.setdefault(probe.environment, []).append(probe)
    runs = {
        key: pool.submit(_run_environment, local, probes, logs_dir, f"{label}-{index}")
        for index, (key, probes) in enumerate(environments.items())
    }
    for key, run in runs.items():
        invocations, text = run.result()
        for probe, invocation in zip(environments[key], invocations, strict=True):
            outcome.invocations[probe.name] = invocation
            outcome.logs[probe.name] = text
    return outcome


@dataclass
class Proof:
    local: LocalAws
    base: Outcome
    variants: dict[str, Outcome]
    seconds: float
    fan_out: FanOut


@pytest.fixture(scope="module")
def proof(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proof]:
    """The template and one variant per statement, every relevant probe run with IAM enforced."""
    logs_dir = tmp_path_factory.mktemp("least-privilege-logs")
    began = time.monotonic()
    with local_lambda.embedded(seed_file=SEED, stack_name=BASE_STACK) as local:
        for service in ("cloudformation", "dynamodb", "iam", "s3", "sqs", "sts"):
            local.aws.client(service)  # built once, before threads share them
        with local.aws.enforcing_iam():
            for service in ("cloudformation", "dynamodb", "iam", "s3", "sqs", "sts"):
                local.aws.client(service)  # the runner's IAM user's clients, likewise
            with ThreadPoolExecutor(max_workers=4) as pool:

                def variant(statement: Statement, index: int) -> Outcome:
                    try:
                        stack = local_lambda.provision_more(
                            local, f"{BASE_STACK}-{index}", statement.remove, seed_file=SEED
                        )
                        outcome = _run_probes(
                            stack,
                            functions_using(TRANSLATED, statement.role),
                            logs_dir,
                            f"variant-{index}",
                            pool,
                        )
                        if statement in FAN_OUT_VARIANTS:
                            outcome.fan_out = _fan_out(stack, logs_dir, f"variant-{index}-fan-out")
                        # After the fan-out, which reads the same queue.
                        outcome.polls = _polls(stack, functions_using(TRANSLATED, statement.role))
                        return outcome
                    except Exception as error:  # noqa: BLE001 - reported by that statement's test
                        return Outcome(error=error)

                with ThreadPoolExecutor(max_workers=4) as provisioning:
                    pending = {
                        statement.id: provisioning.submit(variant, statement, index)
                        for index, statement in enumerate(VARIANTS)
                    }
                    fan_out = provisioning.submit(_fan_out, local, logs_dir, "base-fan-out")
                    base = _run_probes(
                        local, sorted(local.deployment.functions), logs_dir, "base", pool
                    )
                    variants = {key: future.result() for key, future in pending.items()}
                    fanned_out = fan_out.result()
                    base.polls = _polls(local, sorted(local.deployment.functions))
            yield Proof(local, base, variants, time.monotonic() - began, fanned_out)


def test_every_function_and_the_writer_have_statements_to_prove() -> None:
    proven = {f for statement in STATEMENTS for f in functions_using(TRANSLATED, statement.role)}
    elsewhere = {f for role in PROVEN_ELSEWHERE for f in functions_using(TRANSLATED, role)}
    assert elsewhere == {"PreTrafficHookFunction"}
    assert proven == set(FUNCTIONS) - elsewhere
    assert "WriterRole" in {statement.role for statement in STATEMENTS}
    assert MAPPED_QUEUES, "the SQS event source mappings, whose polls are proven too"


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_each_function_succeeds_with_only_its_own_roles(proof: Proof, function_id: str) -> None:
    probes = probes_for(function_id)
    assert probes, f"{function_id} has no events in events/{function_id}/"
    for probe in probes:
        invocation = proof.base.invocations[probe.name]
        assert probe.succeeded(invocation), (
            probe.name,
            invocation.response,
            proof.base.logs[probe.name][-3000:],
        )
        assert "AccessDenied" not in proof.base.logs[probe.name], probe.name
    polls = {
        name: denied
        for name, denied in proof.base.polls.items()
        if name.startswith(f"{function_id}/")
    }
    assert list(polls) == [f"{function_id}/polls {q}" for q in MAPPED_QUEUES.get(function_id, [])]
    assert all(denied is None for denied in polls.values()), polls


def _denied_probes(proof: Proof, statement: Statement) -> list[str]:
    """The events that failed as in AWS without ``statement``; every other one must succeed."""
    outcome = proof.variants[statement.id]
    if outcome.error is not None:
        raise outcome.error
    denied = []
    for function_id in functions_using(TRANSLATED, statement.role):
        for probe in probes_for(function_id):
            invocation = outcome.invocations[probe.name]
            if probe.denied(invocation):
                denied.append(probe.name)
                assert "AccessDenied" in outcome.logs[probe.name], probe.name
            else:  # unaffected events still succeed: only the denied call failed
                assert probe.succeeded(invocation), (probe.name, invocation.response)
    removed = statement.actions if statement.without is None else (statement.without,)
    for name, denied_action in outcome.polls.items():
        if denied_action is not None:  # denied exactly what the variant took away
            assert denied_action in removed, (name, denied_action)
            denied.append(name)
    return denied


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param(
            statement,
            id=statement.id,
            marks=[
                pytest.mark.xfail(
                    raises=AssertionError, reason=MOTO_DOES_NOT_AUTHORIZE[statement.without]
                )
            ]
            if statement.without in MOTO_DOES_NOT_AUTHORIZE
            else [],
        )
        for statement in VARIANTS
    ],
)
def test_removing_the_statement_makes_an_event_fail_as_in_aws(
    proof: Proof, statement: Statement
) -> None:
    functions = functions_using(TRANSLATED, statement.role)
    assert functions, f"no function runs as or assumes {statement.role}"
    assert _denied_probes(proof, statement), (
        f"no event or poll of {', '.join(functions)} needs {statement.id}: remove the statement, "
        "or add the event that needs it to events/"
    )


def _fan_out_prefix(local: LocalAws) -> str:
    return f"{local.function(FAN_OUT_FUNCTION).environment['EXPORT_PREFIX']}table/{FAN_OUT_RUN}/"


def test_a_fanned_out_table_export_finishes_with_only_its_roles(proof: Proof) -> None:
    fan_out = proof.fan_out
    for probe, invocation in fan_out.steps:
        assert probe.succeeded(invocation), (probe.name, invocation.response, fan_out.log[-3000:])
    assert len(fan_out.steps) == 1 + FAN_OUT_SEGMENTS, "one message a segment"
    assert "AccessDenied" not in fan_out.log
    local = fan_out.local
    ids = sorted(item["item_id"] for item in load_seed(SEED)["ItemsTable"])
    assert_exported_once(
        local.aws.client("s3"),
        local.deployment.resources["ExportsBucket"],
        _fan_out_prefix(local),
        ids,
        FAN_OUT_SEGMENTS,
    )


@pytest.mark.parametrize("statement", FAN_OUT_VARIANTS, ids=[s.id for s in FAN_OUT_VARIANTS])
def test_a_fanned_out_table_export_fails_as_in_aws_without_each_statement_it_uses(
    proof: Proof, statement: Statement
) -> None:
    outcome = proof.variants[statement.id]
    if outcome.error is not None:
        raise outcome.error
    fan_out = outcome.fan_out
    assert fan_out is not None
    denied = fan_out.denied()
    assert denied, f"the fanned-out export does not need {statement.id}"
    for probe, invocation in fan_out.steps:  # the others succeed: only the denied call failed
        assert probe.name in denied or probe.succeeded(invocation), (probe.name, invocation)
    assert "AccessDenied" in fan_out.log
    local = fan_out.local
    manifest = _fan_out_prefix(local) + "manifest.json"
    listed = local.aws.client("s3").list_objects_v2(
        Bucket=local.deployment.resources["ExportsBucket"], Prefix=manifest
    )
    assert listed["KeyCount"] == 0, "the run finished"


def test_the_fan_out_variants_are_the_statements_it_needs() -> None:
    """Each action the fan-out calls is proven needed; none of its statements is left out."""
    assert {a for s in FAN_OUT_VARIANTS for a in s.actions} == FAN_OUT_ACTIONS
    assert FAN_OUT == {
        FAN_OUT_FUNCTION: {"TABLE_EXPORT_FAN_OUT": "true", "TABLE_EXPORT_SEGMENTS": "2"}
    }


def _by_function(names: list[str]) -> str:
    grouped: dict[str, list[str]] = {}
    for name in names:
        function_id, _, event = name.partition("/")
        grouped.setdefault(function_id, []).append(event)
    return "; ".join(f"{f}: {', '.join(events)}" for f, events in grouped.items()) or "nothing"


def test_figures(proof: Proof, capsys: pytest.CaptureFixture[str]) -> None:
    """What the proof established, printed even when pytest captures output."""
    fan_outs = [proof.fan_out, *(o.fan_out for o in proof.variants.values() if o.fan_out)]
    invocations = sum(len(o.invocations) for o in [proof.base, *proof.variants.values()]) + sum(
        len(f.steps) for f in fan_outs
    )
    actions = [v for v in VARIANTS if v.without is not None]
    unprovable = [v for v in actions if v.without in MOTO_DOES_NOT_AUTHORIZE]
    lines = [
        f"least privilege: {len(STATEMENTS)} inline statements of "
        f"{len({s.role for s in STATEMENTS})} roles each needed; of the {len(actions)} actions "
        f"of their multi-action statements, {len(actions) - len(unprovable)} each needed and "
        f"{len(unprovable)} ({', '.join(sorted({v.without or '' for v in unprovable}))}) not "
        f"checked by moto. {len(VARIANTS)} variant stacks, {invocations} invocations with IAM "
        f"enforced, {proof.seconds:.1f} s",
    ]
    for statement in VARIANTS:
        if statement.without in MOTO_DOES_NOT_AUTHORIZE:
            continue
        lines.append(f"  {statement.id} fails {_by_function(_denied_probes(proof, statement))}")
    for statement in FAN_OUT_VARIANTS:
        fan_out = proof.variants[statement.id].fan_out
        assert fan_out is not None
        lines.append(f"  {statement.id} fails the fanned-out export: {', '.join(fan_out.denied())}")
    with capsys.disabled():
        print("\n" + "\n".join(lines))


# --- Nothing more, with the roles' own credentials -------------------------------------------

EXPORTERS = ["ExportItemFunction", "ExportQueueFunction", "ExportTableFunction"]


def _denied(call: Any, *args: Any, **kwargs: Any) -> str:
    """The error code of a call that must be refused."""
    with pytest.raises(ClientError) as refused:
        call(*args, **kwargs)
    return str(refused.value.response["Error"]["Code"])


def _function_session(local: LocalAws, function_id: str) -> Any:
    credentials = role_credentials(local.aws, local.function(function_id))
    return isolated_session(
        local.aws.region,
        credentials["AWS_ACCESS_KEY_ID"],
        credentials["AWS_SECRET_ACCESS_KEY"],
        credentials["AWS_SESSION_TOKEN"],
    )


def _writer_session(local: LocalAws, function_id: str) -> Any:
    """The writer role, assumed from the function role as the function assumes it."""
    function = local.function(function_id)
    sts = _function_session(local, function_id).client("sts", endpoint_url=local.aws.endpoint_url)
    credentials = sts.assume_role(
        RoleArn=function.environment["WRITER_ROLE_ARN"],
        RoleSessionName=f"{function.name[:40]}.least-privilege",
        SourceIdentity=function.name[:64],
    )["Credentials"]
    return isolated_session(
        local.aws.region,
        credentials["AccessKeyId"],
        credentials["SecretAccessKey"],
        credentials["SessionToken"],
    )


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_a_function_role_cannot_write_to_the_bucket(proof: Proof, function_id: str) -> None:
    local = proof.local
    s3 = _function_session(local, function_id).client("s3", endpoint_url=local.aws.endpoint_url)
    bucket = local.deployment.resources["ExportsBucket"]
    key = f"exports/least-privilege/{function_id}.json"
    assert _denied(s3.put_object, Bucket=bucket, Key=key, Body=b"{}") == "AccessDenied"


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_a_function_role_cannot_poll_any_queue_but_its_own_mappings(
    proof: Proof, function_id: str
) -> None:
    """Not the other function's queue, nor a dead-letter queue: no role may receive (and so
    delete) what the dead-letter alarms and the runbook rely on finding there. Its own queue it
    polls in every stack (``test_each_function_succeeds_with_only_its_own_roles``)."""
    local = proof.local
    sqs = _function_session(local, function_id).client("sqs", endpoint_url=local.aws.endpoint_url)
    others = [q for q in QUEUES if q not in MAPPED_QUEUES.get(function_id, [])]
    assert len(others) >= len(QUEUES) - 1
    for queue_id in others:
        url = local.deployment.resources[queue_id]
        for call, arguments in [
            (sqs.get_queue_attributes, {"AttributeNames": ["All"]}),
            (sqs.receive_message, {"MaxNumberOfMessages": 10}),
            (sqs.delete_message, {"ReceiptHandle": "not-received"}),
        ]:
            with pytest.raises(ClientError) as refused:
                call(QueueUrl=url, **arguments)
            status = refused.value.response["ResponseMetadata"]["HTTPStatusCode"]
            assert status == 403, (queue_id, call.__name__, refused.value)


@pytest.mark.parametrize("function_id", EXPORTERS)
def test_the_writer_cannot_read_the_table(proof: Proof, function_id: str) -> None:
    local = proof.local
    dynamodb = _writer_session(local, function_id).client(
        "dynamodb", endpoint_url=local.aws.endpoint_url
    )
    table = local.deployment.resources["ItemsTable"]
    key = {"item_id": {"S": "42"}}
    assert _denied(dynamodb.get_item, TableName=table, Key=key) == "AccessDeniedException"
    assert _denied(dynamodb.scan, TableName=table) == "AccessDeniedException"
    # the function role can: the denial is about the writer, not the table
    own = _function_session(local, function_id).client(
        "dynamodb", endpoint_url=local.aws.endpoint_url
    )
    if function_id == "ExportTableFunction":
        own.scan(TableName=table)
    else:
        own.get_item(TableName=table, Key=key)


@pytest.mark.parametrize(
    "key",
    ["elsewhere/x.json", "exports", "exportsx/y.json", "Exports/x.json", "table/exports/x.json"],
)
def test_the_writer_cannot_write_outside_the_export_prefix(proof: Proof, key: str) -> None:
    local = proof.local
    s3 = _writer_session(local, "ExportItemFunction").client(
        "s3", endpoint_url=local.aws.endpoint_url
    )
    bucket = local.deployment.resources["ExportsBucket"]
    assert _denied(s3.put_object, Bucket=bucket, Key=key, Body=b"{}") == "AccessDenied"
    # and inside it, it can
    s3.put_object(Bucket=bucket, Key=f"exports/least-privilege/{key}", Body=b"{}")
