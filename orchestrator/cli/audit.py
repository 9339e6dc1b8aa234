"""``ruche audit``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from orchestrator.actions.audit import audit as run_audit
from orchestrator.actions.audit import render_findings
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import emit_json


@click.command()
@click.option("--server", help="Inspect only this server over SSH (the state-level rules all run).")
@click.option("--no-servers", is_flag=True, help="Inspect no server: the state-level rules only (no SSH).")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option(
    "--format", "format_", type=click.Choice(["md", "html"]), help="Write a report readable without ruche (with -o)."
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Where --format writes the report."
)
@pass_context
def audit(
    context: Context, server: str | None, no_servers: bool, as_json: bool, format_: str | None, output: Path | None
) -> None:
    """Check, read-only, that the fleet keeps the collective's rules; exit 1 on any finding.

    Inventories on disk equal what the state generates; no secret in clear in inventories, runs or
    events; no two instances share an ID range, port or domain; every running instance has a good
    backup inside its offer's window and a recent passed `backup verify`; no association over its
    offer without a recorded override; no instance on a version its entry no longer supports (a
    warning, which does not fail the audit, 90 days before its end of support); the audit trail's
    chain holds.

    Then each application server over SSH (read-only, one command): every instance runs what the
    inventory describes, no file ruche wrote (units, env files by digest only, Caddy site, backup
    settings) was changed by hand, containers and backup timers are in the state ruche left them,
    containers run their inventory's image, no unknown container, site or instance, the firewall
    table is loaded, the ID pool registered. Each finding: rule, object, evidence, how to fix it."""
    if (format_ is None) != (output is None):
        raise click.UsageError("--format and -o go together")
    if server and no_servers:
        raise click.UsageError("give --server or --no-servers, not both")
    result = run_audit(context.workspace, servers=not no_servers, server=server)
    if output is not None:
        output.write_text(render_findings(result, format=format_))
    if as_json:
        emit_json(result)
    else:
        for finding in result["findings"]:
            click.echo(f"{finding['rule']}: {finding['object']}: {finding['evidence']}")
            click.echo(f"  fix: {finding['fix']}")
        for warning in result["warnings"]:
            click.echo(f"warning: {warning['rule']}: {warning['object']}: {warning['evidence']}")
            click.echo(f"  fix: {warning['fix']}")
        for note in result["notes"]:
            click.echo(f"note: {note}")
        checked = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in result["checked"].items())
        click.echo(f"{len(result['findings'])} finding(s), {len(result['warnings'])} warning(s) ({checked} checked)"
                   + (f"; report: {output}" if output else ""))  # fmt: skip
    if not result["ok"]:
        sys.exit(1)
