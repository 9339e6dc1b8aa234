"""``ruche instance create|list|show``."""

from __future__ import annotations

import click

from orchestrator.actions.instance_create import create_instance
from orchestrator.actions.instance_list import instance as show_instance
from orchestrator.actions.instance_list import instances as list_instances
from orchestrator.actions.server_add import parse_labels
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import emit_json, table


@click.group()
def instance() -> None:
    """Instances of services, addressed as ASSOCIATION/NAME."""


@instance.command()
@click.argument("association")
@click.argument("service")
@click.option("--name", help="Instance name (default: the service id).")
@click.option("--size", type=click.Choice(["small", "medium", "large"]), default="small", show_default=True)
@click.option("--param", "parameters", multiple=True, metavar="NAME=VALUE", help="A service parameter; repeatable.")
@click.option("--server", help="Put it on this server instead of letting placement choose.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Only servers with this label; repeatable.")
@click.option("--dry-run", is_flag=True, help="Show the placement and its reasons; record nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def create(context: Context, association: str, service: str, labels: tuple[str, ...], as_json: bool, **options) -> None:
    """Plan a new instance of SERVICE for ASSOCIATION on a server with room for it."""
    result = create_instance(context.workspace, association=association, service=service, labels=parse_labels(labels), **options)
    if as_json:
        emit_json(result)
        return
    rows = [(c["server"], "yes" if c["eligible"] else "no", c["reason"]) for c in result["placement"]]
    click.echo(table(rows, ["SERVER", "FITS", "WHY"]))
    created = result["instance"]
    verb = "would be placed" if result["dry_run"] else "planned"
    click.echo(f"{created['address']} ({created['service']}, {created['size']}) {verb} on {created['server']}")


@instance.command("list")
@click.option("--association", help="Only this association's instances.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def list_(context: Context, association: str | None, as_json: bool) -> None:
    """List instances."""
    entries = list_instances(context.workspace, association)
    if as_json:
        emit_json(entries)
        return
    rows = [(e["address"], e["service"], e["size"], e["server"], e["state"]) for e in entries]
    click.echo(table(rows, ["INSTANCE", "SERVICE", "SIZE", "SERVER", "STATE"]))


@instance.command()
@click.argument("address")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def show(context: Context, address: str, as_json: bool) -> None:
    """Show instance ASSOCIATION/NAME."""
    entry = show_instance(context.workspace, address)
    if as_json:
        emit_json(entry)
    else:
        click.echo("\n".join(f"{key}: {value}" for key, value in entry.items()))
