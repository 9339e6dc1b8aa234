"""``ruche events``."""

from __future__ import annotations

import json

import click

from orchestrator.actions.events import events as list_events
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import emit_json, table


@click.command()
@click.option("--subject", help="Only events about this association or instance (e.g. amap/nextcloud).")
@click.option("--kind", help="Only events of this kind (quota.override, offer.set, ...).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def events(context: Context, subject: str | None, kind: str | None, as_json: bool) -> None:
    """Show the audit trail, newest first: who did what, and when."""
    entries = list_events(context.workspace, subject=subject, kind=kind)
    if as_json:
        emit_json(entries)
        return
    rows = [(e["at"], e["actor"], e["kind"], e["subject"], json.dumps(e["detail"], ensure_ascii=False)[:100]) for e in entries]
    click.echo(table(rows, ["AT", "WHO", "KIND", "SUBJECT", "DETAIL"]))
