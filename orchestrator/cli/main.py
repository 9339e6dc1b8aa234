"""Entry point of the ``ruche`` command and its one error boundary."""

from __future__ import annotations

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


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


def _register_commands() -> None:
    from orchestrator.cli import (
        admin, apply, association, audit, backup, catalog, events, export, init, instance, inventory, lab, mail, offer, plan, report, request, runs, serve, server, status, upgrade, usage, worker,
    )  # fmt: skip

    cli.add_command(admin.admin)
    cli.add_command(apply.apply)
    cli.add_command(association.association)
    cli.add_command(audit.audit)
    cli.add_command(backup.backup)
    cli.add_command(catalog.catalog)
    cli.add_command(events.events)
    cli.add_command(export.export)
    cli.add_command(instance.instance)
    cli.add_command(inventory.inventory)
    cli.add_command(init.init)
    cli.add_command(lab.lab)
    cli.add_command(mail.mail)
    cli.add_command(offer.offer)
    cli.add_command(report.report)
    cli.add_command(request.request)
    cli.add_command(runs.runs)
    cli.add_command(serve.serve)
    cli.add_command(plan.plan)
    cli.add_command(server.server)
    cli.add_command(status.status)
    cli.add_command(usage.usage)
    cli.add_command(usage.quota)
    cli.add_command(upgrade.upgrade)
    cli.add_command(upgrade.upgrades)
    cli.add_command(worker.worker)
    cli.add_command(worker.queue)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; every RucheError becomes a message on stderr and its exit code."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
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
