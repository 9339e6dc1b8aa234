"""``ruche doctor``."""

from __future__ import annotations

import sys

import click

from orchestrator.actions.doctor import doctor as run_doctor
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import ProgressPrinter, emit_json

MARKS = {"ok": "ok", "warning": "WARN", "error": "FAIL", "skipped": "skip"}


@click.command()
@click.option("--server", help="Check only this server (and the names of its instances).")
@click.option(
    "--resolver",
    "resolvers",
    multiple=True,
    metavar="ADDRESS[:PORT]",
    help="Ask this DNS server instead of the system's (repeatable), e.g. your zone's authoritative server.",
)
@click.option("--json", "as_json", is_flag=True, help="Print {ok, checks, counts, zone} as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="Show only warnings and failures.")
@pass_context
def doctor(context: Context, server: str | None, resolvers: tuple[str, ...], as_json: bool, quiet: bool) -> None:
    """Check, read-only, what `ruche apply` relies on; exit 1 when anything would fail.

    Each server: SSH with its recorded key and a verified host key, Debian 13, Podman and systemd
    versions, cgroup v2 controllers, free disk; application servers also: ports 80 and 443 answering
    from this machine, the mail relay and the backup target reached from the server. The workspace:
    the state database, the vault password (it opens the recorded secrets), and each instance's name
    resolving to its server; the records missing are printed as zone-file lines to publish.

    Each problem comes with how to fix it. Run it after `server add`, before the first `apply`, and
    whenever something changed around the servers (DNS, firewall, keys)."""
    progress = ProgressPrinter(enabled=not as_json and not quiet)
    result = run_doctor(context.workspace, server=server, resolvers=list(resolvers) or None, progress=progress)
    if as_json:
        emit_json(result)
    else:
        for check in result["checks"]:
            if quiet and check["status"] in ("ok", "skipped"):
                continue
            click.echo(f"{MARKS[check['status']]:4}  {check['object']}  {check['check']}: {check['detail']}")
            if check["fix"] and check["status"] in ("warning", "error"):
                click.echo(f"      fix: {check['fix']}")
        if result["zone"]:
            click.echo("\nDNS records to publish (zone-file lines):")
            for line in result["zone"]:
                click.echo(f"  {line}")
        counts = result["counts"]
        click.echo(f"{counts['ok']} ok, {counts['warning']} warning(s), {counts['error']} failure(s)"
                   + (f", {counts['skipped']} skipped" if counts["skipped"] else ""))  # fmt: skip
    if not result["ok"]:
        sys.exit(1)
