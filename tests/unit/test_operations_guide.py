"""Every `ruche` command of the operator's guide (docs/operations.md, docs/operations.fr.md) exists as written.

Each line of a ```sh block that starts with `ruche ` (after an optional `$ ` or `sudo `) is split as the shell
would, and parsed by Click against ruche's own command tree, without running anything: the command path must
exist and every option given must be one of that command's, with a value it accepts. Both guides follow the same
path: the same commands, in the same order.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from orchestrator.cli.main import cli, hoist_global_options

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
GUIDES = [ROOT / "docs" / "operations.md", ROOT / "docs" / "operations.fr.md"]
FENCE = re.compile(r"^\s*```(\S*)")
PREFIX = re.compile(r"^(?:\$ )?(?:sudo )?(?=ruche )")


def guide_commands(path: Path) -> list[tuple[int, list[str]]]:
    """The `ruche` command lines of ``path``'s sh blocks: (line number, arguments after `ruche`)."""
    commands: list[tuple[int, list[str]]] = []
    language: str | None = None  # the current block's language; None outside blocks
    pending: tuple[int, str] | None = None  # a command continued on the next line with a backslash
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fence = FENCE.match(line)
        if fence:
            language = None if language is not None else fence.group(1)
            continue
        if language != "sh":
            continue
        if pending is not None:
            start, text = pending
            line, number = text + " " + line.strip(), start
            pending = None
        stripped = line.strip()
        if stripped.endswith("\\"):
            pending = (number, stripped[:-1])
            continue
        match = PREFIX.match(stripped)
        if match is None:
            continue
        arguments = shlex.split(stripped[match.end() :], comments=True)
        commands.append((number, arguments[1:]))
    return commands


def check_command(arguments: list[str]) -> str:
    """Parse ``arguments`` (what follows `ruche`) as ruche would, running nothing; give the command path
    (e.g. "backup run"). Raises click.UsageError (NoSuchOption, BadParameter, MissingParameter...) when the guide's
    command is not one of ruche's."""
    arguments = hoist_global_options(list(arguments))
    context = cli.make_context("ruche", arguments, resilient_parsing=False)
    command: click.Command = cli
    path: list[str] = []
    while isinstance(command, click.Group):
        # what the group left for a subcommand: Click 8.2 renamed protected_args to _protected_args
        protected = context._protected_args if hasattr(context, "_protected_args") else context.protected_args
        rest = [*protected, *context.args]
        if not rest:
            break
        name = rest[0]
        subcommand = command.get_command(context, name)
        if subcommand is None:
            raise click.UsageError(f"no such command {' '.join([*path, name])!r}", context)
        path.append(name)
        context = subcommand.make_context(name, rest[1:], parent=context, resilient_parsing=False)
        command = subcommand
    if isinstance(command, click.Group) and not command.invoke_without_command:  # `ruche events` lists itself
        raise click.UsageError(f"`ruche {' '.join(path)}` names no command", context)
    return " ".join(path)


def test_both_guides_have_commands():
    for guide in GUIDES:
        assert len(guide_commands(guide)) >= 40, f"{guide.name}: fewer ruche commands than a guide holds"


@pytest.mark.parametrize("guide", GUIDES, ids=lambda path: path.name)
def test_every_command_of_the_guide_exists_with_its_options(guide: Path):
    problems = []
    for number, arguments in guide_commands(guide):
        try:
            check_command(arguments)
        except click.exceptions.Exit:
            pass  # --version, --help: Click answered them while parsing
        except click.UsageError as error:
            problems.append(
                f"{guide.relative_to(ROOT)}:{number}: ruche {shlex.join(arguments)}: {error.format_message()}"
            )
    assert not problems, "\n".join(problems)


def command_path(arguments: list[str]) -> str:
    """The command path of ``arguments`` ("" for `ruche --version`; the first words, marked, for one Click refuses)."""
    try:
        return check_command(arguments)
    except click.exceptions.Exit:
        return ""
    except click.UsageError:
        return "(refused) " + " ".join(word for word in arguments[:2] if not word.startswith("-"))


def test_the_french_guide_follows_the_same_path():
    english, french = (guide_commands(guide) for guide in GUIDES)
    assert len(english) == len(french), f"{len(english)} ruche commands in operations.md, {len(french)} in the French"
    for (line, one), (french_line, other) in zip(english, french, strict=True):
        assert command_path(one) == command_path(other), (
            f"operations.md:{line} runs `ruche {command_path(one)}` where operations.fr.md:{french_line} runs "
            f"`ruche {command_path(other)}`"
        )


def test_the_readme_points_to_both_guides():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/operations.md" in readme and "docs/operations.fr.md" in readme
