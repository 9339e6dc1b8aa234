"""Entry point of the ``ruche`` command and its one error boundary."""

from __future__ import annotations

import importlib
import sys
import traceback
from pathlib import Path

import click

from orchestrator import __version__
from orchestrator.errors import RucheError


class Context:
    """Options shared by every command."""

    def __init__(self, workspace: Path | None, debug: bool) -> None:
        self.workspace = workspace
        self.debug = debug


pass_context = click.make_pass_decorator(Context)


# Commands by name -> "module:attribute" under orchestrator.cli, imported when run (or listed in
# --help): `ruche instance list` loads what listing instances needs, not the web app nor Ansible.
COMMANDS = {
    "admin": "admin:admin", "alerts": "alerts:alerts", "apply": "apply:apply", "association": "association:association", "audit": "audit:audit",
    "backup": "backup:backup", "catalog": "catalog:catalog", "doctor": "doctor:doctor", "domain": "domain:domain", "events": "events:events", "export": "export:export", "footprint": "footprint:footprint",
    "images": "images:images", "init": "init:init", "instance": "instance:instance", "inventory": "inventory:inventory", "key": "key:key", "lab": "lab:lab",
    "mail": "mail:mail", "metrics": "metrics:metrics", "offer": "offer:offer", "plan": "plan:plan", "queue": "worker:queue", "quota": "usage:quota",
    "report": "report:report", "request": "request:request", "runs": "runs:runs", "schema": "schema:schema", "serve": "serve:serve",
    "server": "server:server", "status": "status:status", "trash": "trash:trash", "upgrade": "upgrade:upgrade", "upgrades": "upgrade:upgrades",
    "usage": "usage:usage", "watch": "alerts:watch", "worker": "worker:worker",
}  # fmt: skip


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when one is used or listed (Click's lazy loading)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name].split(":")
        return getattr(importlib.import_module(f"orchestrator.cli.{module}"), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ruche")
@click.option(
    "--workspace",
    "-w",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="RUCHE_WORKSPACE",
    help="Workspace directory (default: $RUCHE_WORKSPACE, else the current directory).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
@click.pass_context
def cli(click_context: click.Context, workspace: Path | None, debug: bool) -> None:
    """ruche: run a hosting collective's pool of servers for its associations.

    \b
    Start with:   ruche init DIR --collective NAME --domain DOMAIN
    A local lab:  ruche lab up   (then `ruche lab status`, `ruche lab down`)
    """
    click_context.obj = Context(workspace, debug)


GLOBAL_FLAGS = {"--debug"}
GLOBAL_WITH_VALUE = {"--workspace", "-w"}


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move ``--workspace DIR`` (``-w DIR``, ``--workspace=DIR``) and ``--debug`` given after a subcommand to the
    front, where Click reads them: `ruche server list -w DIR` works as `ruche -w DIR server list`. Nothing
    after ``--`` moves, and the value of another option never does (no subcommand takes these names)."""
    front: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(argv):
        token = argv[index]
        if token == "--":
            rest += argv[index:]
            break
        if token in GLOBAL_FLAGS:
            front.append(token)
        elif token in GLOBAL_WITH_VALUE and index + 1 < len(argv):
            front += [token, argv[index + 1]]
            index += 1
        elif token.startswith("--workspace="):
            front.append(token)
        else:
            rest.append(token)
        index += 1
    return front + rest


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; every RucheError becomes a message on stderr and its exit code."""
    argv = hoist_global_options(list(argv if argv is not None else sys.argv[1:]))
    debug = "--debug" in argv
    try:
        cli.main(args=argv, prog_name="ruche", standalone_mode=False)
    except RucheError as error:
        if debug:
            traceback.print_exc()
        click.echo(f"Error: {error}", err=True)
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Exit as exit_:
        sys.exit(exit_.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    sys.exit(0)
