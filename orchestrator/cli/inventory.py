"""``ruche inventory export``."""

from __future__ import annotations

import click

from orchestrator.actions.inventory_diff import inventory_diff
from orchestrator.actions.inventory_export import export_inventory
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import emit_json


@click.group()
def inventory() -> None:
    """The generated Ansible inventories (inventories/ENVIRONMENT/) and their history.

    inventories/ is a Git repository: one commit per apply (tagged run/RUN_ID) and per export that
    changed something, so `git -C inventories log -p` shows every change, who made it and when."""


@inventory.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def export(context: Context, as_json: bool) -> None:
    """Write the fleet's inventory from the state (byte-identical when nothing changed)."""
    result = export_inventory(context.workspace)
    if as_json:
        emit_json(result)
    else:
        state = "written" if result["changed"] else "unchanged"
        click.echo(f"{result['directory']}: {len(result['files'])} file(s) {state}")


@inventory.command()
@click.argument("before", required=False)
@click.argument("after", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def diff(context: Context, before: str | None, after: str | None, as_json: bool) -> None:
    """What changed in the inventories between BEFORE and AFTER, in terms of associations, instances and
    servers. Each is a run id (of an apply) or a Git revision; by default the last recorded inventories
    and the ones before them. Secrets show only as changed."""
    result = inventory_diff(context.workspace, before, after)
    if as_json:
        emit_json(result)
        return
    click.echo(f"{(result['from'] or 'nothing')[:12]} -> {result['to'][:12]}: {result['summary']}")
    for line in result["lines"]:
        click.echo(f"  {line}")
