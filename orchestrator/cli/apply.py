"""``ruche apply``."""

from __future__ import annotations

import sys

import click

from orchestrator.actions.apply import apply as apply_action
from orchestrator.actions.instance_upgrade import recover_interrupted_upgrades
from orchestrator.actions.queue import enqueue_apply
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import ProgressPrinter, emit_json, instances_table, table


@click.command()
@click.option("--server", help="Only this server (and its instances).")
@click.option("--instance", metavar="ASSOCIATION/NAME", help="Only this instance (on its server).")
@click.option("--no-health", is_flag=True, help="Skip the health checks through Caddy after the run.")
@click.option(
    "--full",
    is_flag=True,
    help="Converge every server's base and every instance, even those that hold what ruche would apply, undrifted.",
)
@click.option(
    "--enqueue", is_flag=True, help="Queue the run (one per server) for `ruche worker` instead of running it here."
)
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@pass_context
def apply(context: Context, server: str | None, instance: str | None, no_health: bool, full: bool, enqueue: bool,
          as_json: bool, quiet: bool) -> None:  # fmt: skip
    """Converge the servers and their instances through ansible-runner.

    The server base (Podman, Caddy, directories, registry mirror), then each instance: its network,
    quadlet units, environment files, volumes and Caddy site; suspended instances stopped, deleted
    ones removed. Then each running instance is checked through Caddy. `ruche plan` shows what
    would change first.

    An instance is skipped when its server holds, as applied, exactly what ruche would apply now
    (its fingerprint and ruche's roles) and nothing drifted since: its unit, env, site and backup
    files are those ruche wrote, its containers and backup timer in the state ruche left them.
    Drift is reported and the instance converged again; --full converges everything. A server's
    base is skipped the same way: its inputs (ruche.toml's settings for servers, the backup server's
    host key, ruche's roles) are those it last applied, its files (tools, Caddyfile, firewall rules,
    backup units) those ruche wrote, Caddy running and the firewall loaded.

    An upgrade interrupted in the run's scope (ruche killed in the middle of it) is first finished
    or rolled back from its journal, as `ruche upgrades` then shows.

    Exits 1 when the run failed (the failed instances are marked with the run id; the next apply
    retries them); its artifacts stay in the workspace's runs/RUN_ID/.
    """
    if server and instance:
        raise click.UsageError("give --server or --instance, not both")
    if enqueue:
        queued = enqueue_apply(context.workspace, server=server, instance=instance)
        if as_json:
            emit_json(queued)
        else:
            click.echo(
                "\n".join(f"queued run {q['id']} for {q['instance'] or q['server']}" for q in queued)
                or "no server to run"
            )
        return
    progress = ProgressPrinter(not quiet and not as_json)
    # an upgrade interrupted in the scope (ruche killed): finished or rolled back first, from its journal
    recovered = recover_interrupted_upgrades(context.workspace, instance=instance, server=server, by="apply",
                                             progress=progress)  # fmt: skip
    run = apply_action(context.workspace, server=server, instance=instance, check_health=not no_health, full=full,
                       progress=progress)  # fmt: skip
    if recovered:
        run["recovered_upgrades"] = recovered
    if as_json:
        emit_json(run)
    else:
        for upgrade in recovered:
            click.echo(f"interrupted upgrade {upgrade['id']} of {upgrade['instance']} ({upgrade['from']} -> "
                       f"{upgrade['to']}): {upgrade['status']}")  # fmt: skip
        rows = [(h, c["ok"], c["changed"], c["failed"], c["unreachable"]) for h, c in run["hosts"].items()]
        click.echo(table(rows, ["SERVER", "OK", "CHANGED", "FAILED", "UNREACHABLE"]))
        for name, found in run["server_drift"].items():
            click.echo(f"drift on server {name}'s base (converged again): "
                       + "; ".join(f"{d['kind']} {d['object']}" for d in found))  # fmt: skip
        for identifier, found in run["drift"].items():
            click.echo(f"drift on {identifier} (converged again): "
                       + "; ".join(f"{d['kind']} {d['object']}" for d in found))  # fmt: skip
        click.echo(f"run {run['run_id']}: {run['status']}, {run['changed']} changed, "
                   f"{len(run['unchanged'])} instance(s) and {len(run['servers_unchanged'])} server base(s) needed "
                   f"nothing (artifacts in {run['artifacts']})")  # fmt: skip
        if run["instances"]:
            click.echo(instances_table(run["instances"]))
    if not run["succeeded"]:
        sys.exit(1)
