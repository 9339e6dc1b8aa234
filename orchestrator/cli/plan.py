"""``ruche plan``."""

from __future__ import annotations

import click

from orchestrator.actions.plan import plan as plan_action
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import emit_json, table


@click.command()
@click.option("--server", help="Only this server.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def plan(context: Context, server: str | None, as_json: bool) -> None:
    """Show what `ruche apply` would change on each server, and the instances behind their service's
    current version (with the versions `ruche instance upgrade` would take them through); change nothing."""
    result = plan_action(context.workspace, server=server)
    if as_json:
        emit_json(result)
        return
    rows = []
    for entry in result["servers"]:
        if entry["base"] != "up to date":
            rows.append((entry["server"], "(server base)", "", entry["base"]))
        rows += [(entry["server"], c["instance"], c["service"], c["change"]) for c in entry["changes"]]
    if rows:
        click.echo(table(rows, ["SERVER", "INSTANCE", "SERVICE", "CHANGE"]))
    click.echo(
        f"{result['changes']} change(s); `ruche apply` makes them." if result["changes"] else "Nothing to change."
    )
    if result["upgrades"]:
        rows = [(u["instance"], u["service"], u["version"], u["current"],
                 " -> ".join([u["version"], *u["path"]]) if u["path"] is not None else f"blocked: {u['blocked']}")
                for u in result["upgrades"]]  # fmt: skip
        click.echo("")
        click.echo(table(rows, ["INSTANCE", "SERVICE", "RUNS", "CURRENT", "UPGRADE PATH"]))
        click.echo(
            f"{len(rows)} instance(s) behind; `ruche instance upgrade ADDRESS` or `ruche upgrade SERVICE` moves them."
        )
