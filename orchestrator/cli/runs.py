"""``ruche runs list|show``."""

from __future__ import annotations

import click

from orchestrator.actions import runs as actions
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import emit_json, table


@click.group()
def runs() -> None:
    """Provisioning runs (newest first), with per-server counts and their artifacts."""


@runs.command("list")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000), help="How many runs.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def list_(context: Context, limit: int, as_json: bool) -> None:
    """List runs, newest first."""
    entries = actions.runs(context.workspace, limit=limit)
    if as_json:
        emit_json(entries)
        return
    rows = [
        (r["id"], r["playbook"], r["target"], r["status"], r["changed"], r["failed"], r["started"]) for r in entries
    ]
    click.echo(table(rows, ["RUN", "PLAYBOOK", "TARGET", "STATUS", "CHANGED", "FAILED", "STARTED"]))


@runs.command()
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def show(context: Context, run_id: str, as_json: bool) -> None:
    """Show run RUN_ID with each server's counts."""
    entry = actions.run(context.workspace, run_id)
    if as_json:
        emit_json(entry)
        return
    for key in ("id", "playbook", "target", "status", "rc", "changed", "failed", "started", "finished", "artifacts"):
        click.echo(f"{key}: {entry[key]}")
    rows = [(h, c["ok"], c["changed"], c["failed"], c["unreachable"]) for h, c in entry["hosts"].items()]
    click.echo(table(rows, ["SERVER", "OK", "CHANGED", "FAILED", "UNREACHABLE"]))
