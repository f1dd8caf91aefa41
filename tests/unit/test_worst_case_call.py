"""The worst case of one AWS call, exactly (a mutation survivor: the template test only checks that
it fits in each function's timeout)."""

from app.sessions import config


def test_worst_case_is_every_attempt_timing_out_plus_both_backoffs() -> None:
    # 3 attempts x (1 s connect + 2 s read), plus at most 1 s and 2 s of backoff before retries.
    assert config.worst_case_call_seconds() == 3 * (1.0 + 2.0) + 1.0 + 2.0


def test_a_synchronous_invoke_waits_for_the_invoked_function_twice_at_most() -> None:
    # 2 attempts x (1 s connect + 20 s read of the invoked function's answer), plus 1 s of backoff.
    assert config.worst_case_invoke_seconds() == 2 * (1.0 + 20.0) + 1.0
