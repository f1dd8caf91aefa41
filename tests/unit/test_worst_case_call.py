"""The worst case of one AWS call, exactly (a mutation survivor: the template test only checks that
it fits in each function's timeout)."""

from app.sessions import config


def test_worst_case_is_every_attempt_timing_out_plus_both_backoffs() -> None:
    # 3 attempts x (1 s connect + 2 s read), plus at most 1 s and 2 s of backoff before retries.
    assert config.worst_case_call_seconds() == 3 * (1.0 + 2.0) + 1.0 + 2.0


def test_a_synchronous_invoke_waits_for_the_invoked_function_twice_at_most() -> None:
    # 2 attempts x (1 s connect + 20 s read), plus at most 1 s of backoff before the retry.
    assert config.worst_case_invoke_seconds() == 2 * (1.0 + 20.0) + 1.0
    assert config.INVOKE_CONFIG.read_timeout == 20.0
    assert config.INVOKE_CONFIG.retries == {"mode": "standard", "total_max_attempts": 2}
    assert config.CLIENT_CONFIG.read_timeout == 2.0
    assert config.INVOKE_CONFIG.connect_timeout == config.CLIENT_CONFIG.connect_timeout == 1.0


def test_a_bounded_config_is_what_the_worst_case_assumes() -> None:
    # The module's configs are built at import, before mutmut switches a mutant on: build one here.
    built = config._bounded_config(7.0, 4)
    assert (built.connect_timeout, built.read_timeout) == (config.CONNECT_TIMEOUT_SECONDS, 7.0)
    # Standard mode: the jittered backoff the worst case bounds, and total_max_attempts counts
    # the first attempt (legacy mode's max_attempts would not).
    assert built.retries == {"mode": "standard", "total_max_attempts": 4}
    assert built.tcp_keepalive is True
