"""``ruche status``."""

from __future__ import annotations

import sys

import click

from orchestrator.actions.status import failing_domains, unhealthy
from orchestrator.actions.status import status as status_action
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import emit_json, instances_table


@click.command()
@click.option("--association", help="Only this association's instances.")
@click.option(
    "--no-check",
    is_flag=True,
    help="Check nothing: show the health last recorded and when (health_checked_at in --json).",
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def status(context: Context, association: str | None, no_check: bool, as_json: bool) -> None:
    """Check every instance through Caddy now; show its server, state and health.

    Own domains follow, with their state (pending, verified, serving, failing) and certificate as a TLS
    handshake shows it now. Exits 1 when an instance that should run does not answer as its catalogue entry
    expects, or one of its own domains is failing (with --no-check: as last checked).
    """
    entries = status_action(context.workspace, association=association, check=not no_check)
    if as_json:
        emit_json(entries)
    else:
        click.echo(instances_table(entries))
        for domain in [d for e in entries for d in e.get("own_domains", [])]:
            certificate = domain["certificate"]
            seen = (
                f"certificate by {certificate['issuer']} until {certificate['not_after'][:10]}"
                if (certificate["issuer"] and certificate["not_after"])
                else (domain["problem"] or "no certificate seen")
            )
            click.echo(f"  {domain['shown']} -> {domain['instance']}: {domain['state']}, {seen}")  # fmt: skip
        for entry in unhealthy(entries):
            click.echo(f"{entry['address']}: {entry['health_detail']}", err=True)
        for domain in failing_domains(entries):
            click.echo(f"{domain['shown']} ({domain['instance']}): {domain['certificate']['detail']}", err=True)
    if unhealthy(entries) or failing_domains(entries):
        sys.exit(1)
