"""Generated API Gateway and SQS events, from valid through subtly wrong to garbage.

Each generator labels what it builds with the answer an independent oracle expects (written here
from the API's contract, not imported from app.operations.requests), so the properties are exact:
the right
status for every request, never an unhandled exception, never a 5xx for a client's mistake, a 4xx
whose JSON ``message`` says what was wrong, exactly the bad SQS records reported, and the bucket
unchanged by anything rejected. Each test builds one moto stack and runs every example against it;
the bucket is emptied after each example, so each starts from an empty bucket and must leave only
what it was accepted to write. Runs are derandomized: the same examples every time, everywhere.

Inputs that once hit a bug (bodies that are not UTF-8, lone surrogates, envelopes only a direct
Invoke can send) are pinned by the tests at the end.
"""

import base64
import binascii
import collections
import copy
import itertools
import json
import string
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.handlers.sqs import UnreportableRecordError
from app.services import ExportsBucket, ItemsTable
from app.sessions import RoleSpec, assumed_role_session, base_session
from tests.conftest import LAMBDA_ENVIRONMENT, REGION, Stack, load_event
from tests.handler_calls import call
from tools.emulator.lambda_context import LambdaContext
from tools.emulator.seed import load_seed

SEEDED = {item["item_id"] for item in load_seed()["ItemsTable"]}
MAX_ID = 64
MAX_FIELDS = 20
MAX_BODY_BYTES = 16 * 1024
ID_FIRST = string.ascii_letters + string.digits
ID_REST = ID_FIRST + "_.-"
NAME_FIRST = string.ascii_letters + "_"
NAME_REST = NAME_FIRST + string.digits

FUZZ = settings(
    max_examples=120,
    derandomize=True,
    database=None,
    deadline=None,
    # One moto stack per test, shared by its examples: the bucket is checked around each example.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_request_ids = itertools.count()

# --- Values the contract accepts, and values it must refuse ------------------------------------


def _text(alphabet: str, min_size: int, max_size: int) -> st.SearchStrategy[str]:
    return st.text(st.sampled_from(alphabet), min_size=min_size, max_size=max_size)


seeded_ids = st.sampled_from(sorted(SEEDED))
valid_ids = st.one_of(
    seeded_ids,
    st.builds(str.__add__, _text(ID_FIRST, 1, 1), _text(ID_REST, 0, MAX_ID - 1)),
)
invalid_ids = st.one_of(
    st.builds(str.__add__, _text(ID_FIRST, 1, 1), _text(ID_REST, MAX_ID, 4 * MAX_ID)),  # long
    st.just("a" * 20_000),  # huge
    st.builds(str.__add__, st.sampled_from("_.-"), _text(ID_REST, 0, 10)),  # bad first character
    st.builds(  # one character the contract forbids, anywhere: unicode, controls, '/', '%', ' '
        lambda head, bad, tail: head + bad + tail,
        _text(ID_FIRST, 1, 5),
        st.characters(exclude_characters=ID_REST, codec="utf-8"),
        _text(ID_REST, 0, 5),
    ),
    st.sampled_from(
        ["../../etc/passwd", "42 ", " 42", "4\n2", "٤٢", "42\x00", "\uff21\uff22", "😀"]
    ),
)

field_names = st.builds(str.__add__, _text(NAME_FIRST, 1, 1), _text(NAME_REST, 0, 63))
valid_fields = st.one_of(
    st.none(), st.lists(field_names, min_size=1, max_size=MAX_FIELDS, unique=True)
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
invalid_fields = st.one_of(
    st.just([]),
    st.lists(field_names, min_size=MAX_FIELDS + 1, max_size=MAX_FIELDS + 5, unique=True),
    field_names.map(lambda name: [name, name]),
    st.builds(str.__add__, st.sampled_from(string.digits + "-$ é"), _text(NAME_REST, 0, 8)).map(
        lambda name: [name]
    ),
    _text(NAME_REST, MAX_ID + 1, MAX_ID + 10).map(lambda name: [f"a{name}"]),
    json_values.filter(lambda value: value is not None and not isinstance(value, list)),
    st.lists(st.integers() | st.none() | st.lists(st.text()), min_size=1, max_size=3),
)


@dataclass(frozen=True)
class Body:
    """A request body as API Gateway delivers it, and whether the contract accepts it."""

    text: str | None
    accepted: bool
    base64: bool = False


def _document(fields: object) -> dict[str, object]:
    return {} if fields is None else {"fields": fields}


good_bodies = st.builds(
    lambda fields, indent, explicit_null: Body(
        json.dumps({"fields": None} if explicit_null else _document(fields), indent=indent), True
    ),
    valid_fields,
    st.sampled_from([None, 0, 2]),
    st.booleans(),  # {"fields": null} means the whole item, like {}
)


def _not_a_json_object(text: str) -> bool:
    try:
        return not isinstance(json.loads(text), dict)
    except ValueError:
        return True


BASE64_ALPHABET = set(string.ascii_letters + string.digits + "+/")


def _bad_base64(text: str) -> bool:
    """Text base64 decoding must refuse (a length no padding can fix) rather than decode."""
    return "=" not in text and sum(char in BASE64_ALPHABET for char in text) % 4 == 1


bad_bodies = st.one_of(
    st.sampled_from([None, "", "   ", "\n"]).map(lambda text: Body(text, False)),
    st.text(max_size=200).filter(_not_a_json_object).map(lambda text: Body(text, False)),
    json_values.filter(lambda value: not isinstance(value, dict)).map(
        lambda value: Body(json.dumps(value), False)
    ),
    st.builds(  # keys the contract does not have, alone or beside a valid "fields"
        lambda extra, fields: Body(json.dumps({**_document(fields), **extra}), False),
        st.dictionaries(
            st.text(min_size=1, max_size=10).filter(lambda k: k not in {"fields", "item_id"}),
            json_values,
            min_size=1,
            max_size=3,
        ),
        valid_fields,
    ),
    invalid_fields.map(lambda fields: Body(json.dumps({"fields": fields}), False)),
    st.builds(  # a valid document padded past the size limit
        lambda fields, padding: Body(json.dumps(_document(fields)) + padding, False),
        valid_fields,
        st.sampled_from([" " * MAX_BODY_BYTES, "\n" * (MAX_BODY_BYTES + 1)]),
    ),
    st.just(Body(json.dumps({"fields": ["é" * 30] * 300}), False)),  # over the limit in bytes
    st.just(Body("[" * 8000 + "]" * 8000, False)),  # deep nesting under the size limit
    st.text(max_size=50).filter(_bad_base64).map(lambda text: Body(text, False, base64=True)),
)


def _base64(body: Body) -> Body:
    """The same body sent with a binary content type: API Gateway base64-encodes it."""
    assert body.text is not None
    return Body(base64.b64encode(body.text.encode()).decode(), body.accepted, base64=True)


@st.composite
def bodies(draw: st.DrawFn) -> Body:
    """Accepted or refused bodies, some sent base64 as API Gateway does for binary types."""
    body = draw(good_bodies if draw(st.booleans()) else bad_bodies)
    if body.text and not body.base64 and draw(st.booleans()):
        body = _base64(body)
    return body


# --- API events --------------------------------------------------------------------------------

noise_headers = st.dictionaries(
    st.text(string.ascii_lowercase + "-", min_size=1, max_size=20),
    st.text(max_size=100) | st.just("x" * 8000),
    max_size=3,
)
noise_queries = st.dictionaries(st.text(max_size=10), st.text(max_size=30), max_size=3)


def _api_event(
    template: str, item_id: str, suffix: str, headers: dict[str, str], query: dict[str, str]
) -> dict[str, Any]:
    """An HTTP API v2 event as API Gateway builds it for a client's request."""
    event = copy.deepcopy(load_event(template))
    path = f"/items/{urllib.parse.quote(item_id, safe='')}{suffix}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["pathParameters"] = {"item_id": item_id}
    event["headers"] = {**event["headers"], **headers}
    if query:
        event["rawQueryString"] = urllib.parse.urlencode(query)
        event["queryStringParameters"] = query
    event["requestContext"]["requestId"] = f"fuzz-{next(_request_ids)}"
    return event


@dataclass(frozen=True)
class ApiCase:
    event: dict[str, Any]
    expected: int

    def __repr__(self) -> str:  # what hypothesis prints for a failing example
        keys = ("rawPath", "body", "isBase64Encoded")
        return f"ApiCase(expected={self.expected}, { ({k: self.event.get(k) for k in keys}) })"


def _route_status(item_id: str, found: int) -> int:
    if not item_id:
        return 404  # "/items//...": no route matches
    if not (item_id[0] in ID_FIRST and set(item_id) <= set(ID_REST) and len(item_id) <= MAX_ID):
        return 400
    return found if item_id in SEEDED else 404


@st.composite
def get_cases(draw: st.DrawFn) -> ApiCase:
    item_id = draw(st.one_of(valid_ids, invalid_ids, st.just("")))
    event = _api_event(
        "GetItemFunction/found", item_id, "", draw(noise_headers), draw(noise_queries)
    )
    body = draw(st.none() | bodies())  # a GET may carry any body; it is never read
    if body is not None:
        event["body"], event["isBase64Encoded"] = body.text, body.base64
    return ApiCase(event, _route_status(item_id, found=200))


@st.composite
def export_cases(draw: st.DrawFn) -> ApiCase:
    item_id = draw(st.one_of(valid_ids, invalid_ids, st.just("")))
    body = draw(bodies())
    event = _api_event(
        "ExportItemFunction/created", item_id, "/exports", draw(noise_headers), draw(noise_queries)
    )
    event["isBase64Encoded"] = body.base64
    if body.text is None:
        event.pop("body", None)
    else:
        event["body"] = body.text
    expected = _route_status(item_id, found=201)
    if item_id and not body.accepted:
        expected = 400  # the body is checked first: a bad body is a 400 even for a missing item
    return ApiCase(event, expected)


# --- The properties ----------------------------------------------------------------------------


@dataclass
class Bucket:
    """The exports bucket as the fuzz tests watch it: emptied after every example, so checking
    that an example wrote nothing is a listing of an empty bucket, not of everything so far."""

    stack: Stack

    def __post_init__(self) -> None:
        self._s3 = self.stack.admin.client("s3")
        self.name = self.stack.exports.bucket_name

    def keys(self) -> set[str]:
        listing = self._s3.list_objects_v2(Bucket=self.name)
        return {entry["Key"] for entry in listing.get("Contents", [])}

    def take(self) -> set[str]:
        """The keys written since the last call, removed from the bucket."""
        keys = self.keys()
        if keys:
            objects: Any = [{"Key": key} for key in keys]
            self._s3.delete_objects(Bucket=self.name, Delete={"Objects": objects})
        return keys


def _assert_api_answer(response: dict[str, Any], expected: int) -> dict[str, Any]:
    assert response["statusCode"] == expected, response
    assert response["headers"]["Content-Type"] == "application/json"
    body: dict[str, Any] = json.loads(response["body"])
    if expected >= 400:
        assert set(body) == {"message"}
        assert isinstance(body["message"], str)
        assert len(body["message"].strip()) >= 10, "a helpful message, not a bare code"
    return body


@pytest.fixture
def bucket(stack: Stack) -> Bucket:
    return Bucket(stack)


@pytest.fixture
def no_data(aws: None) -> Stack:
    """The API functions' services on an AWS with no table and no bucket, for requests that must
    be rejected before any call: a call would fail (a 500), never reach a real endpoint."""
    base = base_session(REGION)
    writer = assumed_role_session(base, RoleSpec(LAMBDA_ENVIRONMENT["WRITER_ROLE_ARN"], "fuzz"))
    services = SimpleNamespace(
        items=ItemsTable(base, LAMBDA_ENVIRONMENT["TABLE_NAME"]),
        exports=ExportsBucket(writer, LAMBDA_ENVIRONMENT["BUCKET_NAME"]),
    )
    return cast(Stack, services)


# binascii.Error answers 400 without a metric: pinned by test_undecodable_body_publishes_a_metric.
@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
def test_get_item_answers_every_generated_request_as_the_contract_says(
    bucket: Bucket, context: LambdaContext
) -> None:
    seen: collections.Counter[int] = collections.Counter()

    @FUZZ
    @given(case=get_cases())
    def run(case: ApiCase) -> None:
        seen[case.expected] += 1
        response = call("GetItemFunction", case.event, bucket.stack, invocation(context))
        body = _assert_api_answer(response, case.expected)
        if case.expected == 200:
            assert body["item_id"] == case.event["pathParameters"]["item_id"]
        assert bucket.take() == set(), "a read must not write"

    run()
    assert set(seen) == {200, 400, 404}, seen


@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
def test_export_answers_every_generated_request_and_writes_only_when_accepted(
    bucket: Bucket, context: LambdaContext
) -> None:
    seen: collections.Counter[int] = collections.Counter()

    @FUZZ
    @given(case=export_cases())
    def run(case: ApiCase) -> None:
        seen[case.expected] += 1
        body = _assert_api_answer(
            call("ExportItemFunction", case.event, bucket.stack, invocation(context)), case.expected
        )
        written = bucket.take()
        if case.expected == 201:
            assert written == {body["key"]}
        else:
            assert written == set(), "a rejected request must not write"

    run()
    assert set(seen) == {201, 400, 404}, seen


def test_every_valid_export_of_an_existing_item_writes_exactly_its_object(
    bucket: Bucket, context: LambdaContext
) -> None:
    """The accepted path on its own: mixed in with garbage, hypothesis reaches it only rarely."""

    @settings(FUZZ, max_examples=40)
    @given(
        item_id=seeded_ids,
        body=good_bodies.flatmap(lambda body: st.sampled_from([body, _base64(body)])),
        headers=noise_headers,
        query=noise_queries,
    )
    def run(item_id: str, body: Body, headers: dict[str, str], query: dict[str, str]) -> None:
        event = _api_event("ExportItemFunction/created", item_id, "/exports", headers, query)
        event["body"], event["isBase64Encoded"] = body.text, body.base64
        answer = _assert_api_answer(
            call("ExportItemFunction", event, bucket.stack, invocation(context)), 201
        )
        assert bucket.take() == {answer["key"]}
        assert answer["key"] == f"exports/{item_id}/{event['requestContext']['requestId']}.json"

    run()


# --- SQS batches -------------------------------------------------------------------------------


def _message(item_id: object, fields: object) -> str:
    document: dict[str, object] = {"item_id": item_id}
    if fields is not None:
        document["fields"] = fields
    return json.dumps(document)


good_messages = st.builds(_message, seeded_ids, valid_fields)
bad_messages = st.one_of(
    st.builds(_message, valid_ids.filter(lambda i: i not in SEEDED), valid_fields),  # absent
    st.builds(_message, invalid_ids, valid_fields),
    st.builds(_message, json_values.filter(lambda v: not isinstance(v, str)), valid_fields),
    st.builds(_message, seeded_ids, invalid_fields),
    st.builds(lambda fields: json.dumps(_document(fields)), valid_fields),  # no item_id
    st.builds(
        lambda i, extra: json.dumps({"item_id": i, **extra}),
        st.sampled_from(sorted(SEEDED)),
        st.dictionaries(
            st.text(max_size=5).filter(lambda k: k not in {"item_id", "fields"}),
            json_values,
            min_size=1,
            max_size=2,
        ),
    ),
    bad_bodies.filter(lambda body: not body.base64).map(lambda body: body.text),
)


@dataclass(frozen=True)
class Record:
    record: dict[str, Any]
    good: bool


@st.composite
def records(draw: st.DrawFn) -> Record:
    template = load_event("ExportQueueFunction/batch")["Records"][0]
    record = copy.deepcopy(template)
    record["messageId"] = f"fuzz-{next(_request_ids)}"
    good = draw(st.booleans())
    body = draw(good_messages if good else bad_messages)
    if body is None and draw(st.booleans()):
        del record["body"]  # a record missing its body
    elif not good and draw(st.integers(0, 4)) == 0:
        # A direct Invoke's body may be JSON itself rather than text holding it.
        record["body"] = draw(
            json_values.filter(lambda v: v is not None and not isinstance(v, str))
        )
    else:
        record["body"] = body
    for key in draw(
        st.sets(
            st.sampled_from(
                ["attributes", "md5OfBody", "messageAttributes", "receiptHandle", "eventSourceARN"]
            ),
            max_size=2,
        )
    ):
        del record[key]  # fields the function does not need may be missing
    return Record(record, good)


def _reported(response: dict[str, Any]) -> set[str]:
    return {entry["itemIdentifier"] for entry in response["batchItemFailures"]}


def test_queue_reports_exactly_the_bad_records_and_exports_the_rest(
    bucket: Bucket, context: LambdaContext, caplog: pytest.LogCaptureFixture
) -> None:
    """...and says why for each, as rejected input: none is reported in silence or as a defect."""
    seen: collections.Counter[bool] = collections.Counter()

    @settings(FUZZ, max_examples=60)
    @given(batch=st.lists(records(), min_size=1, max_size=10))
    def run(batch: list[Record]) -> None:
        seen.update(entry.good for entry in batch)
        event = {"Records": [entry.record for entry in batch]}
        caplog.clear()
        response = call("ExportQueueFunction", event, bucket.stack, invocation(context))
        bad = {e.record["messageId"] for e in batch if not e.good}
        assert _reported(response) == bad
        said = [(r.getMessage(), getattr(r, "message_id", None)) for r in caplog.records]
        assert sorted(m for text, m in said if text == "message rejected") == sorted(bad), said
        assert not [m for text, m in said if text == "message failed unexpectedly"], said
        written = {key.rpartition("/")[2].removesuffix(".json") for key in bucket.take()}
        assert written == {entry.record["messageId"] for entry in batch if entry.good}

    run()
    assert min(seen[True], seen[False]) >= 50, seen


def test_a_record_sqs_could_not_have_sent_fails_the_whole_batch(
    bucket: Bucket, context: LambdaContext
) -> None:
    """Without a messageId no failure can be reported, and acknowledging would delete messages
    nobody exported: raising makes SQS redeliver the batch, and redelivery is idempotent."""
    event = load_event("ExportQueueFunction/batch")
    del event["Records"][0]["messageId"]
    with pytest.raises(UnreportableRecordError, match="string messageId is required"):
        call("ExportQueueFunction", event, bucket.stack, invocation(context))


# --- Known bugs: each starts passing, and so fails, once its fix lands ----------------------------

NOT_UTF8 = base64.b64encode(b"\xff\xfe{}").decode()


def _export_event(**changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(load_event("ExportItemFunction/created"))
    event.update(changes)
    return event


def invocation(context: LambdaContext) -> LambdaContext:
    """A context of its own for each generated example, as each is an invocation of its own: one
    context's 15 s shared by 60 examples ran out on a loaded machine, and the calls after that
    answered 503 (the deadline) instead of what the example expects."""
    return replace(context)


def _outcome(function_id: str, event: dict[str, Any], stack: Stack, context: LambdaContext) -> Any:
    try:
        return call(function_id, event, stack, context)
    except Exception as error:  # noqa: BLE001 - the unhandled exception is what we report
        return error


@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
def test_base64_body_that_is_not_utf8_is_a_400(no_data: Stack, context: LambdaContext) -> None:
    event = _export_event(body=NOT_UTF8, isBase64Encoded=True)
    outcome = _outcome("ExportItemFunction", event, no_data, context)
    assert isinstance(outcome, dict), repr(outcome)
    _assert_api_answer(outcome, 400)


@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
def test_body_with_a_lone_surrogate_is_a_400(no_data: Stack, context: LambdaContext) -> None:
    outcome = _outcome(
        "ExportItemFunction", _export_event(body='{"fields": ["\ud800"]}'), no_data, context
    )
    assert isinstance(outcome, dict), repr(outcome)
    _assert_api_answer(outcome, 400)


def test_undecodable_body_publishes_a_metric(no_data: Stack, context: LambdaContext) -> None:
    event = _export_event(body="not base64!", isBase64Encoded=True)
    _assert_api_answer(call("ExportItemFunction", event, no_data, context), 400)


ENVELOPES: dict[str, Callable[[dict[str, Any]], object]] = {
    "body-not-a-string": lambda e: e.update(body=42),
    "body-an-object": lambda e: e.update(body={"fields": ["name"]}),
    "no-request-id": lambda e: e["requestContext"].pop("requestId"),
    "no-request-context": lambda e: e.pop("requestContext"),
}


@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
@pytest.mark.parametrize("mutation", ENVELOPES.values(), ids=ENVELOPES.keys())
def test_a_malformed_envelope_is_a_400(
    mutation: Callable[[dict[str, Any]], object], no_data: Stack, context: LambdaContext
) -> None:
    event = _export_event()
    mutation(event)
    outcome = _outcome("ExportItemFunction", event, no_data, context)
    assert isinstance(outcome, dict), repr(outcome)
    _assert_api_answer(outcome, 400)


@FUZZ
@given(text=st.text(max_size=50).filter(_bad_base64))
def test_the_bad_base64_generator_only_makes_what_the_decoder_refuses(text: str) -> None:
    with pytest.raises(binascii.Error):
        base64.b64decode(text.encode())


# --- Not even an object ---------------------------------------------------------------------------
# A direct Invoke may send any JSON; the triggers never do. Each function says what it expected.

NOT_OBJECTS = {"list": [], "string": "GET /items/42", "number": 42, "null": None, "true": True}


@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
@pytest.mark.parametrize("event", NOT_OBJECTS.values(), ids=NOT_OBJECTS.keys())
@pytest.mark.parametrize(
    "function_id",
    ["GetItemFunction", "ExportItemFunction", "ExportQueueFunction", "ExportTableFunction"],
)
def test_an_event_that_is_not_a_json_object_is_rejected_with_a_message(
    function_id: str, event: object, stack: Stack, context: LambdaContext
) -> None:
    objects = stack.objects()
    outcome = _outcome(function_id, cast(dict[str, Any], event), stack, context)
    assert isinstance(outcome, dict), repr(outcome)
    if function_id == "ExportQueueFunction":
        assert outcome == {"batchItemFailures": []}  # nothing SQS could redeliver
    elif function_id == "ExportTableFunction":
        assert outcome["status"] == "rejected"
        assert "JSON object" in outcome["message"]
    else:
        assert "JSON object" in _assert_api_answer(outcome, 400)["message"]
    assert stack.objects() == objects
