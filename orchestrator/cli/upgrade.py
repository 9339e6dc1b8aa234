"""``ruche upgrade SERVICE`` and ``ruche upgrades``."""

from __future__ import annotations

import sys

import click

from orchestrator.actions.fleet_upgrade import fleet_upgrade
from orchestrator.actions.upgrade_list import list_upgrades
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import ProgressPrinter, emit_json, table


@click.command()
@click.argument("service")
@click.option("--to", "to", metavar="VERSION", help="Target version (default: the service's current version).")
@click.option("--canary", type=click.IntRange(min=0), default=1, show_default=True,
              help="Instances upgraded first, alone; the others start only if they all succeed.")  # fmt: skip
@click.option("--parallel", type=click.IntRange(min=1), default=1, show_default=True,
              help="Most upgrades at once after the canaries (never two on one server).")  # fmt: skip
@click.option("--ignore-window", is_flag=True, help="Upgrade even outside the offers' maintenance windows.")
@click.option(
    "--enqueue", is_flag=True, help="Queue the upgrades for `ruche worker` (same rules) instead of running them here."
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="List what would be upgraded and what is skipped; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@pass_context
def upgrade(context: Context, service: str, to: str | None, canary: int, parallel: int, ignore_window: bool, enqueue: bool,
            yes: bool, dry_run: bool, as_json: bool, quiet: bool) -> None:  # fmt: skip
    """Upgrade every instance of SERVICE: canaries first, then --parallel at a time, stopping at the first failure.

    Each instance is upgraded as `ruche instance upgrade` does (safety backup, steps, automatic
    rollback); those already upgraded stay upgraded when a later one fails. Instances outside their
    offer's maintenance window, suspended or failed are skipped and listed. Exit 1 if any failed.
    """
    if not dry_run and not yes:
        preview = fleet_upgrade(context.workspace, service, to=to, canary=canary, parallel=parallel, dry_run=True,
                                ignore_window=ignore_window)  # fmt: skip
        click.echo(_text(preview), err=True)
        if not preview["candidates"]:
            return
        click.confirm(
            f"Upgrade {len(preview['candidates'])} instance(s) of {service} to {preview['to']}?", abort=True, err=True
        )
    result = fleet_upgrade(context.workspace, service, to=to, canary=canary, parallel=parallel, dry_run=dry_run,
                           ignore_window=ignore_window, enqueue=enqueue, progress=ProgressPrinter(not quiet and not as_json))  # fmt: skip
    if as_json:
        emit_json(result)
    elif "queued" in result:
        click.echo(
            "\n".join(
                f"queued upgrade run {q['id']} for {q['instance']}" + (" (canary)" if q["payload"]["canary"] else "")
                for q in result["queued"]
            )
            + f"\nfleet upgrade {result['fleet']}: `ruche worker` carries it out"
        )
    else:
        click.echo(_text(result))
    if not result["succeeded"]:
        sys.exit(1)


def _text(result: dict) -> str:
    lines = []
    if result["results"]:
        rows = [(r["instance"], r["server"], "yes" if r["canary"] else "", r["status"], r.get("to", ""), r["seconds"],
                 (r.get("detail") or {}).get("error") or r.get("error") or "") for r in result["results"]]  # fmt: skip
        lines.append(table(rows, ["INSTANCE", "SERVER", "CANARY", "STATUS", "TO", "SECONDS", "ERROR"]))
    elif result["candidates"]:
        rows = [(c["instance"], c["server"], " -> ".join([c["version"], *c["path"]])) for c in result["candidates"]]
        lines.append(table(rows, ["INSTANCE", "SERVER", "PATH"]))
    for skipped in result["skipped"]:
        lines.append(f"skipped {skipped['instance']}: {skipped['reason']}")
    for address in result["not_started"]:
        lines.append(f"not started (stopped at the first failure): {address}")
    if not result["candidates"]:
        lines.append(f"no instance of {result['service']} to upgrade to {result['to']}")
    return "\n".join(lines)


def _status(upgrade: dict) -> str:
    """The status as recorded, saying when an upgrade was interrupted and what became of it."""
    if upgrade["interrupted"]:
        return "interrupted (its process is gone): the next upgrade or apply of it rolls it back"
    recovered_by = (upgrade["detail"] or {}).get("recovered_by")
    if recovered_by:
        return f"{upgrade['status']} after an interruption, by {recovered_by}"
    return upgrade["status"]


@click.command()
@click.argument("address", required=False)
@click.option("--fleet", help="Only the upgrades of this fleet upgrade.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (with each step's output).")
@pass_context
def upgrades(context: Context, address: str | None, fleet: str | None, limit: int, as_json: bool) -> None:
    """List recorded upgrades (of ADDRESS only), newest first, with the step that failed.

    An upgrade whose process is gone (ruche killed, the machine rebooted) shows as interrupted until the next
    `ruche instance upgrade` of that instance, `ruche apply` or the worker finishes it (every step had passed)
    or rolls it back from its journal; it then says which, and who did."""
    found = list_upgrades(context.workspace, instance=address, fleet=fleet, limit=limit)
    if as_json:
        emit_json(found)
        return
    rows = [(u["id"], u["instance"], u["from"], u["to"], _status(u), u["step"], u["started_at"], u["requested_by"])
            for u in found]  # fmt: skip
    click.echo(
        table(rows, ["ID", "INSTANCE", "FROM", "TO", "STATUS", "STEP", "STARTED", "BY"])
        if rows
        else "no upgrade recorded"
    )
