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
    rows = [
        (s["id"], s["name"]["fr"], s["version"], s["database"], s["image"], s["verification"]["summary"])
        for s in services
    ]
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


def _support(row: dict) -> str:
    if row["support"] == "ended":
        return f"ENDED {row['end_of_support']}"
    if row["support"] == "ending":
        return f"ends {row['end_of_support']} (in {row['support_days']} days)"
    return row["end_of_support"] or "?"


@catalog.command()
@click.argument("services", nargs=-1, metavar="[SERVICE]...")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def outdated(context: Context, services: tuple[str, ...], as_json: bool) -> None:
    """Newer versions of each entry's images, and versions past or near their end of support.

    Each listed version's image repository is read in its registry (through the workspace's mirror when
    it serves that registry, as the servers pull): the newer versions of the same major, then the newer
    majors beside the entry's newest version. Run it monthly, then update the entries (pin the new
    version, with its upgrade rule) and `ruche upgrade SERVICE`. Exit 1 when a registry could not be read."""
    result = actions.outdated(context.workspace, services)
    if as_json:
        emit_json(result)
    else:
        rows = [(r["service"], r["version"] + (" *" if r["default"] else ""), ", ".join(r["newer_same_major"][:5]) or "-",
                 ", ".join(r["newer_majors"][:5]) or "-", _support(r)) for r in result["versions"]]  # fmt: skip
        click.echo(table(rows, ["SERVICE", "VERSION", "NEWER (SAME MAJOR)", "NEWER MAJORS", "SUPPORT"]))
        click.echo("* the version new instances get")
        for row in result["versions"]:
            if row["error"]:
                click.echo(f"{row['service']} {row['version']}: not read: {row['error']}", err=True)
    if result["errors"]:
        raise SystemExit(1)
