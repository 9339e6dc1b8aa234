"""``ruche inventory export``."""

from __future__ import annotations

import click

from orchestrator.actions.inventory_export import export_inventory
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import emit_json


@click.group()
def inventory() -> None:
    """The generated Ansible inventories (inventories/ENVIRONMENT/)."""


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
