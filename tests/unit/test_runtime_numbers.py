"""How the functions read a number from their environment (mutation survivors: the callers are
cached at init, so only a direct call shows the rule): blank or unset is the default, anything else
must be a number, and a wrong value names its variable."""

import pytest

from app import runtime

VARIABLE = "TABLE_EXPORT_READ_UNITS_PER_SEGMENT"


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_an_unset_or_blank_variable_is_the_default(
    monkeypatch: pytest.MonkeyPatch, raw: str | None
) -> None:
    if raw is None:
        monkeypatch.delenv(VARIABLE, raising=False)
    else:
        monkeypatch.setenv(VARIABLE, raw)
    assert runtime._number(VARIABLE, "4") == 4.0


def test_a_set_variable_is_read_around_its_blanks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VARIABLE, " 12.5 ")
    assert runtime._number(VARIABLE, "4") == 12.5


def test_a_variable_that_is_no_number_is_a_configuration_error_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(VARIABLE, "many")
    with pytest.raises(runtime.ConfigurationError) as raised:
        runtime._number(VARIABLE, "4")
    assert str(raised.value) == f"environment variable {VARIABLE} must be a number, not 'many'"
