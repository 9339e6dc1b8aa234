"""``ruche request list|show|approve|reject``."""

from __future__ import annotations

import click

from orchestrator.actions.request_list import request as show_request
from orchestrator.actions.request_list import requests as list_requests
from orchestrator.actions.request_review import approve as approve_request
from orchestrator.actions.request_review import reject as reject_request
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import emit_json, table


@click.group()
def request() -> None:
    """Associations' service requests: pending → approved/rejected → provisioning → done/failed."""


@request.command("list")
@click.option("--state", help="Only requests in this state (pending, approved, provisioning, done, failed, rejected).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def list_(context: Context, state: str | None, as_json: bool) -> None:
    """List requests, newest first."""
    entries = list_requests(context.workspace, state=state)
    if as_json:
        emit_json(entries)
        return
    rows = [(e["id"], e["association"], e["service"], e["name"], e["size"], e["state"], e["created_at"], e["reason"][:40])
            for e in entries]  # fmt: skip
    click.echo(table(rows, ["ID", "ASSOCIATION", "SERVICE", "NAME", "SIZE", "STATE", "REQUESTED", "REASON"]))


@request.command()
@click.argument("request_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def show(context: Context, request_id: int, as_json: bool) -> None:
    """Show request REQUEST_ID with its history and its runs (state, progress)."""
    entry = show_request(context.workspace, request_id)
    if as_json:
        emit_json(entry)
        return
    for key in (
        "id",
        "association",
        "service",
        "name",
        "size",
        "parameters",
        "state",
        "reason",
        "instance",
        "requested_by",
    ):
        click.echo(f"{key}: {entry[key]}")
    for event in entry["history"]:
        click.echo(f"  {event['at']}  {event['kind']:<22} by {event['actor']}")
    for run in entry["runs"]:
        click.echo(f"run {run['id']} on {run['server']}: {run['state']} (attempt {run['attempts']}) {run['progress']}")


@request.command()
@click.argument("request_id", type=int)
@click.option("--server", help="Put the instance on this server instead of letting placement choose.")
@click.option("--over-quota", is_flag=True, help="Approve even beyond the association's offer (recorded).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def approve(context: Context, request_id: int, server: str | None, over_quota: bool, as_json: bool) -> None:
    """Approve REQUEST_ID: plan its instance and queue its run for `ruche worker`."""
    result = approve_request(context.workspace, request_id, over_quota=over_quota, server=server)
    if as_json:
        emit_json(result)
    else:
        entry = result["request"]
        click.echo(
            f"request {entry['id']} approved: {entry['instance']} queued (run {result['queued_run']}) for the worker"
        )


@request.command()
@click.argument("request_id", type=int)
@click.option("--reason", required=True, help="Why (shown to the association).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def reject(context: Context, request_id: int, reason: str, as_json: bool) -> None:
    """Reject REQUEST_ID with a reason the association will read."""
    entry = reject_request(context.workspace, request_id, reason=reason)
    emit_json(entry) if as_json else click.echo(f"request {entry['id']} rejected")
