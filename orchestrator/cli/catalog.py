"""``ruche catalog list|show|validate``."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from orchestrator.actions import catalog as actions
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import emit_json, table


@click.group()
def catalog() -> None:
    """The service catalogue: what ruche can deploy, and how."""


@catalog.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def list_(context: Context, as_json: bool) -> None:
    """List the services of the catalogue."""
    services = actions.list_services(context.workspace)
    if as_json:
        emit_json(services)
        return
    rows = [(s["id"], s["name"]["fr"], s["version"], s["database"], s["image"], s["verification"]["summary"]) for s in services]
    click.echo(table(rows, ["ID", "NOM", "VERSION", "DATABASE", "IMAGE", "VERIFIED"]))


@catalog.command()
@click.argument("service_id")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (default: YAML).")
@pass_context
def show(context: Context, service_id: str, as_json: bool) -> None:
    """Show the whole definition of SERVICE_ID."""
    definition = actions.show_service(context.workspace, service_id)
    emit_json(definition) if as_json else click.echo(yaml.safe_dump(definition, sort_keys=False, allow_unicode=True))


@catalog.command()
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
@pass_context
def validate(context: Context, path: Path | None) -> None:
    """Check a catalogue entry or directory; every error is reported with its file and path."""
    ids = actions.validate(path, context.workspace)
    click.echo(f"valid: {', '.join(ids)}")
