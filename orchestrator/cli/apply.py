"""``ruche apply``."""

from __future__ import annotations

import sys

import click

from orchestrator.actions.apply import apply as apply_action
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import ProgressPrinter, emit_json, table


@click.command()
@click.option("--server", help="Only this server.")
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@pass_context
def apply(context: Context, server: str | None, as_json: bool, quiet: bool) -> None:
    """Prepare the servers through ansible-runner (Podman, Caddy, directories, registry mirror).

    Exits 1 when the run failed; its artifacts stay in the workspace's runs/RUN_ID/.
    """
    run = apply_action(context.workspace, server=server, progress=ProgressPrinter(not quiet and not as_json))
    if as_json:
        emit_json(run)
    else:
        rows = [(h, c["ok"], c["changed"], c["failed"], c["unreachable"]) for h, c in run["hosts"].items()]
        click.echo(table(rows, ["SERVER", "OK", "CHANGED", "FAILED", "UNREACHABLE"]))
        click.echo(f"run {run['run_id']}: {run['status']}, {run['changed']} changed (artifacts in {run['artifacts']})")
    if not run["succeeded"]:
        sys.exit(1)
