import pytest

from orchestrator import errors


@pytest.mark.parametrize(
    "error_class, code",
    [
        (errors.OperationFailed, 1),
        (errors.InvalidInput, 2),
        (errors.ConfigError, 3),
        (errors.NotFound, 4),
        (errors.Conflict, 5),
        (errors.MissingPrerequisite, 6),
        (errors.TimedOut, 7),
    ],
)
def test_each_error_kind_has_its_exit_code(error_class, code):
    assert issubclass(error_class, errors.RucheError)
    assert error_class("x").exit_code == code


def test_hint_is_shown_after_the_message():
    assert str(errors.Conflict("taken", hint="pick another")) == "taken\n  hint: pick another"
