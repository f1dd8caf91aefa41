"""``app.handlers.sqs.partial_batch_response``: what Powertools' batch processor reported, in the
batch's order, without raising when every record failed (README "Performance" says why it is
built here)."""

from collections.abc import Callable

import pytest

from app.handlers.sqs import partial_batch_response
from app.operations import InvalidRequestError


def _raise(error: BaseException) -> Callable[[], int]:
    def outcome() -> int:
        raise error

    return outcome


def test_failed_records_are_reported_alone_in_the_batch_s_order() -> None:
    succeeded: list[tuple[str, int]] = []
    response = partial_batch_response(
        [
            ("a", _raise(InvalidRequestError("bad body"))),
            ("b", lambda: 2),
            ("c", _raise(KeyError("body"))),
            ("d", lambda: 4),
        ],
        lambda message_id, result: succeeded.append((message_id, result)),
    )
    assert response == {"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "c"}]}
    assert succeeded == [("b", 2), ("d", 4)]


def test_a_batch_whose_every_record_failed_is_reported_whole_not_raised() -> None:
    response = partial_batch_response(
        [("a", _raise(RuntimeError("x"))), ("b", _raise(InvalidRequestError("y")))],
        lambda _id, _result: pytest.fail("nothing succeeded"),
    )
    assert response == {"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "b"}]}


def test_an_empty_batch_reports_nothing() -> None:
    assert partial_batch_response([], lambda _id, _result: None) == {"batchItemFailures": []}


def test_what_is_not_an_exception_still_stops_the_invocation() -> None:
    with pytest.raises(KeyboardInterrupt):
        partial_batch_response([("a", _raise(KeyboardInterrupt()))], lambda _id, _r: None)
