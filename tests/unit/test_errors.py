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


def test_workspace_and_debug_are_taken_anywhere_on_the_line():
    from orchestrator.cli.main import hoist_global_options

    assert hoist_global_options(["server", "list", "--workspace", "ws", "--json"]) == [
        "--workspace",
        "ws",
        "server",
        "list",
        "--json",
    ]
    assert hoist_global_options(["-w", "a", "plan"]) == ["-w", "a", "plan"]
    assert hoist_global_options(["backup", "run", "x/y", "--workspace=ws", "--debug"]) == [
        "--workspace=ws",
        "--debug",
        "backup",
        "run",
        "x/y",
    ]
    assert hoist_global_options(["instance", "create", "a", "b", "--param", "note=-w", "--", "-w", "x"]) == [
        "instance", "create", "a", "b", "--param", "note=-w", "--", "-w", "x"]  # fmt: skip
