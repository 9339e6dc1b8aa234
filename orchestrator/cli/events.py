"""``ruche events``, ``ruche events verify``, ``ruche events head``."""

from __future__ import annotations

import json
import sys

import click

from orchestrator.actions import events as actions
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import emit_json, table


@click.group(invoke_without_command=True)
@click.option("--association", help="Only events of this association (its instances, requests, ... included).")
@click.option("--instance", help="Only events about this instance (ASSOCIATION/NAME).")
@click.option("--subject", help="Only events about this subject, as the SUBJECT column shows it (e.g. request/12).")
@click.option(
    "--actor", help="Only events by an actor whose name contains this (e.g. camille, 'member of amap', worker)."
)
@click.option(
    "--kind",
    help="Only events of this kind (quota.override, instances.changed, ...; 'instances.*' for all of a table).",
)
@click.option("--since", help="Only events at or after this time (2026-11-27 or 2026-11-27T10:00, UTC by default).")
@click.option("--until", help="Only events at or before this time.")
@click.option("--limit", type=click.IntRange(1), help="Only the newest N.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (each event with its chain digest).")
@pass_context
@click.pass_context
def events(click_context: click.Context, context: Context, association, instance, subject, actor, kind, since, until, limit,
           as_json: bool) -> None:  # fmt: skip
    """The audit trail, newest first: every change of state, who made it and when, and the decisions that say
    why (quota overrides, offer changes, upgrades). Secrets never appear: only that they changed.

    Events form a hash chain: `ruche events verify` recomputes it; `ruche events head` gives its head, to keep
    elsewhere and check later with `ruche events verify --head`."""
    if click_context.invoked_subcommand is not None:
        return
    entries = actions.events(context.workspace, subject=subject, kind=kind, association=association, instance=instance,
                             actor=actor, since=since, until=until, limit=limit)  # fmt: skip
    if as_json:
        emit_json(entries)
        return
    rows = [(e["seq"], e["at"], e["actor"], e["kind"], e["subject"], json.dumps(e["detail"], ensure_ascii=False)[:100])
            for e in entries]  # fmt: skip
    click.echo(table(rows, ["#", "AT", "WHO", "KIND", "SUBJECT", "DETAIL"]))


@events.command()
@click.option(
    "--head",
    "expected_head",
    metavar="LENGTH:DIGEST|FILE",
    help="A head exported earlier (`ruche events head --json > FILE`): the chain must still hold it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def verify(context: Context, expected_head: str | None, as_json: bool) -> None:
    """Recompute the audit trail's hash chain; name the first event edited, deleted or inserted (exit 1)."""
    result = actions.verify(context.workspace, expected_head=expected_head)
    if as_json:
        emit_json(result)
    elif result["ok"]:
        click.echo(f"audit trail intact: {result['length']} event(s), head {result['head']}")
    else:
        click.echo(f"audit trail BROKEN: {result['problem']}", err=True)
        click.echo("  events are only appended by ruche: compare with a backup of the state database and ask who "
                   "could write to it", err=True)  # fmt: skip
    if not result["ok"]:
        sys.exit(1)


@events.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (the file `events verify --head` reads).")
@pass_context
def head(context: Context, as_json: bool) -> None:
    """The chain's head: its length and last digest. Keep it outside ruche (mail it, print it, commit it)."""
    result = actions.head(context.workspace)
    if as_json:
        emit_json(result)
    else:
        click.echo(f"{result['length']}:{result['digest']}")
