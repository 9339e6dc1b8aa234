"""``ruche offer list|show``."""

from __future__ import annotations

import click

from orchestrator.actions.offer_list import offer as show_offer
from orchestrator.actions.offer_list import offers as list_offers
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import emit_json, table, user_language


@click.group()
def offer() -> None:
    """The quota packages associations sign up for (defined in ruche.toml under [offers.NAME])."""


@offer.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def list_(context: Context, as_json: bool) -> None:
    """List the offers with their limits and how many associations are on each."""
    entries = list_offers(context.workspace)
    if as_json:
        emit_json(entries)
        return
    rows = [
        (e["name"], e["label"][user_language()], e["max_instances"], f"{e['memory_mb']} MiB", f"{e['disk_gb']} GiB",
         "{daily}/{weekly}/{monthly}".format(**e["backup_retention"]), e["associations"])
        for e in entries
    ]  # fmt: skip
    click.echo(table(rows, ["OFFER", "LABEL", "INSTANCES", "MEMORY", "DISK", "KEEP D/W/M", "ASSOCIATIONS"]))


@offer.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def show(context: Context, name: str, as_json: bool) -> None:
    """Show offer NAME: limits, per-service limits, and what its associations take."""
    entry = show_offer(context.workspace, name)
    if as_json:
        emit_json(entry)
        return
    retention = entry["backup_retention"]
    click.echo(f"{entry['name']} ({entry['label']['fr']} / {entry['label']['en']})")
    click.echo(f"  instances {entry['max_instances']}, memory {entry['memory_mb']} MiB, disk {entry['disk_gb']} GiB")
    click.echo(f"  backups kept: {retention['daily']} daily, {retention['weekly']} weekly, {retention['monthly']} monthly; "
               f"flagged after {entry['backup_window_hours']} h without one")  # fmt: skip
    click.echo(f"  deleted instances' data erased from the servers' trash after {entry['trash_retention_days']} day(s)")
    for service, limits in entry["service_limits"].items():
        for limit, value in limits.items():
            click.echo(f"  {service}.{limit} = {value['value']}  ({value['description']['en']})")
    rows = [(a["slug"], a["instances"], f"{a['memory_mb']} MiB", f"{a['disk_gb']} GiB") for a in entry["associations"]]
    if rows:
        click.echo(table(rows, ["ASSOCIATION", "INSTANCES", "MEMORY", "DISK"]))
