"""``ruche instance create|list|show|suspend|resume|delete|secrets|upgrade|move``."""

from __future__ import annotations

import sys

import click

from orchestrator.catalog import SIZES
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import ProgressPrinter, emit_json, instances_table, table

# Each command imports its action when it runs: `ruche instance list` loads what a listing needs, not
# what creating or upgrading does (start-up counts when the fleet is large, see benchmarks/).


@click.group()
def instance() -> None:
    """Instances of services, addressed as ASSOCIATION/NAME."""


@instance.command()
@click.argument("association")
@click.argument("service")
@click.option("--name", help="Instance name (default: the service id).")
@click.option("--size", type=click.Choice(SIZES), default="small", show_default=True)
@click.option("--param", "parameters", multiple=True, metavar="NAME=VALUE", help="A service parameter; repeatable.")
@click.option("--server", help="Put it on this server instead of letting placement choose.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Only servers with this label; repeatable.")
@click.option(
    "--over-quota", is_flag=True,
    help="Create it even beyond the association's offer; the override is recorded (`ruche events`).",
)  # fmt: skip
@click.option("--version", help="One of the service's versions (default: the one new instances get).")
@click.option("--dry-run", is_flag=True, help="Show the placement and its reasons; record nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def create(context: Context, association: str, service: str, labels: tuple[str, ...], as_json: bool, **options) -> None:
    """Plan a new instance of SERVICE for ASSOCIATION on a server with room for it."""
    from orchestrator.actions.common import parse_labels
    from orchestrator.actions.instance_create import create_instance

    result = create_instance(
        context.workspace, association=association, service=service, labels=parse_labels(labels), **options
    )
    if as_json:
        emit_json(result)
        return
    rows = [(c["server"], "yes" if c["eligible"] else "no", c["reason"]) for c in result["placement"]]
    click.echo(table(rows, ["SERVER", "FITS", "WHY"]))
    created = result["instance"]
    verb = "would be placed" if result["dry_run"] else "planned"
    click.echo(f"{created['address']} ({created['service']}, {created['size']}) {verb} on {created['server']}")
    for excess in result["quota"]["excesses"]:
        click.echo(f"beyond offer {result['quota']['offer']!r}, overridden: {excess['limit']} {excess['requested']:g} "
                   f"of {excess['allowed']:g} {excess['unit']}".rstrip(), err=True)  # fmt: skip


@instance.command("list")
@click.option("--association", help="Only this association's instances.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def list_(context: Context, association: str | None, as_json: bool) -> None:
    """List instances."""
    from orchestrator.actions.instance_list import instances as list_instances

    entries = list_instances(context.workspace, association)
    if as_json:
        emit_json(entries)
        return
    rows = [(e["address"], e["service"], e["size"], e["server"], e["state"]) for e in entries]
    click.echo(table(rows, ["INSTANCE", "SERVICE", "SIZE", "SERVER", "STATE"]))


@instance.command()
@click.argument("address")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def show(context: Context, address: str, as_json: bool) -> None:
    """Show instance ASSOCIATION/NAME."""
    from orchestrator.actions.instance_list import instance as show_instance

    entry = show_instance(context.workspace, address)
    if as_json:
        emit_json(entry)
    else:
        click.echo("\n".join(f"{key}: {_readable(key, value)}" for key, value in entry.items()))


def _readable(key: str, value) -> str:
    if key == "id_range" and value:
        return f"host IDs {value['start']}-{value['end']} (slot {value['slot']}, {value['size']} IDs, the same on every server)"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "none"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def _lifecycle(
    context: Context, address: str, action: str, *, dry_run: bool, as_json: bool, quiet: bool, final_backup: bool = True
) -> None:
    from orchestrator.actions.instance_lifecycle import change_instance

    result = change_instance(
        context.workspace, address, action, dry_run=dry_run, final_backup=final_backup,
        progress=ProgressPrinter(not quiet and not as_json),
    )  # fmt: skip
    if as_json:
        emit_json(result)
    elif dry_run:
        click.echo(f"would {result['would']}")
    else:
        run = result["run"]
        click.echo(instances_table([result["instance"]]))
        click.echo(f"run {run['run_id']}: {run['status']}" if run else "never deployed: no server to change")
    if result["run"] is not None and not result["run"]["succeeded"]:
        sys.exit(1)


_common_options = [
    click.option("--dry-run", is_flag=True, help="Say what would be done; change nothing."),
    click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
    click.option("--quiet", "-q", is_flag=True, help="No progress lines."),
]


def _with_common_options(command):
    for option in reversed(_common_options):
        command = option(command)
    return command


@instance.command()
@click.argument("address")
@_with_common_options
@pass_context
def suspend(context: Context, address: str, dry_run: bool, as_json: bool, quiet: bool) -> None:
    """Stop ASSOCIATION/NAME's containers and withdraw its site; its data is kept."""
    _lifecycle(context, address, "suspend", dry_run=dry_run, as_json=as_json, quiet=quiet)


@instance.command()
@click.argument("address")
@_with_common_options
@pass_context
def resume(context: Context, address: str, dry_run: bool, as_json: bool, quiet: bool) -> None:
    """Start a suspended ASSOCIATION/NAME again."""
    _lifecycle(context, address, "resume", dry_run=dry_run, as_json=as_json, quiet=quiet)


@instance.command()
@click.argument("address")
@click.option("--purge", is_flag=True, help="Erase its data instead of moving it to the server's trash.")
@click.option("--no-final-backup", is_flag=True, help="Do not take the final backup first (asks to confirm).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@_with_common_options
@pass_context
def delete(context: Context, address: str, purge: bool, no_final_backup: bool, yes: bool, dry_run: bool, as_json: bool,
           quiet: bool) -> None:  # fmt: skip
    """Remove ASSOCIATION/NAME from its server: containers, network, site.

    Its data goes to a dated directory in the server's trash (/srv/ruche/trash), unless --purge; `ruche trash
    empty` erases it once its offer's trash_retention_days are over (`ruche trash list`).
    With backups configured, a final backup is taken first and kept in the association's repository.
    """
    from orchestrator.actions.instance_lifecycle import change_instance

    action = "purge" if purge else "delete"
    if not dry_run and not yes:
        preview = change_instance(context.workspace, address, action, dry_run=True, final_backup=not no_final_backup)
        click.confirm(f"This will {preview['would']}. Continue?", abort=True, err=True)
        if no_final_backup:
            click.confirm("No final backup will be taken: once the data is gone it cannot be restored. Really?",
                          abort=True, err=True)  # fmt: skip
    _lifecycle(
        context, address, action, dry_run=dry_run, as_json=as_json, quiet=quiet, final_backup=not no_final_backup
    )


@instance.command()
@click.argument("address")
@click.option("--to", "to", required=True, metavar="SERVER", help="The application server to move it to.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@_with_common_options
@pass_context
def move(context: Context, address: str, to: str, yes: bool, dry_run: bool, as_json: bool, quiet: bool) -> None:
    """Move ASSOCIATION/NAME to server SERVER, its data with it.

    Its application stopped (no write after the snapshot), a safety backup, the instance deployed on SERVER
    and the snapshot restored there (files and database), its health checked through SERVER's Caddy, then
    its old copy removed (data to the old server's trash). Until it answers on SERVER, a failure undoes it:
    back on its server, started again, SERVER's copy removed. Its domain stays: point its DNS record at
    SERVER (the line is printed), unless a wildcard covers it.

    Exit codes: 0 moved; 1 a step failed and the move was undone (or its old copy could not be removed: the
    same command again removes it); refused before anything changed: 4 unknown instance or server, 5 already
    there, not running, or the server cannot take it (why), 6 no backup repository.
    """
    from orchestrator.actions.instance_move import move_instance, preview

    plan = preview(context.workspace, address, to=to)
    if dry_run:
        emit_json(plan) if as_json else click.echo(_move_plan_text(plan))
        return
    if not yes:
        click.echo(_move_plan_text(plan), err=True)
        click.confirm(f"Move {address} from {plan['from']} to {to}?" if not plan["cleanup_only"]
                      else f"Remove {address}'s copy from {plan['from']}?", abort=True, err=True)  # fmt: skip
    result = move_instance(context.workspace, address, to=to, progress=ProgressPrinter(not quiet and not as_json))
    if as_json:
        emit_json(result)
    else:
        if not result["cleanup_only"]:
            click.echo(f"{address} moved from {result['from']} to {result['to']} (snapshot {result['snapshot'][:8]}): "
                       f"{result['health']}, {result['health_detail']}")  # fmt: skip
            click.echo(f"DNS: {result['dns']} (unless a wildcard record covers it)")
            for line in result["own_domains_dns"]:
                click.echo(f"its association's own domain: {line} (until it points there, it is not served)")
        if result["old_copy_removed"]:
            click.echo(f"its copy on {result['from']} is removed (data in {result['from']}'s trash)")
    if not result["old_copy_removed"]:
        click.echo(f"Error: its copy on {result['from']} could not be removed: {result['old_copy_error']}\n"
                   f"  hint: its containers are stopped; `ruche instance move {address} --to {result['to']}` "
                   "again removes it", err=True)  # fmt: skip
        sys.exit(1)


def _move_plan_text(plan: dict) -> str:
    if plan["cleanup_only"]:
        return f"{plan['instance']}: " + "; ".join(plan["steps"])
    lines = [f"{plan['instance']} ({plan['service']}): {plan['from']} -> {plan['to']} ({plan['placement']['reason']})"]
    lines += [f"  {number}. {step}" for number, step in enumerate(plan["steps"], 1)]
    lines.append(f"  on a failure {plan['on_failure']}")
    lines.append(f"  then DNS: {plan['dns']} (unless a wildcard record covers it)")
    lines += [f"  and the association's own domain: {line}" for line in plan["own_domains_dns"]]
    return "\n".join(lines)


@instance.command("secrets")
@click.argument("address")
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def secrets_(context: Context, address: str, names: tuple[str, ...], as_json: bool) -> None:
    """Reveal the secrets of ASSOCIATION/NAME (all, or NAMES), e.g. the admin password to hand over.

    The only command that prints secrets in clear; it needs the vault password.
    """
    from orchestrator.actions.instance_list import instance_secrets

    revealed = instance_secrets(context.workspace, address, names)
    if as_json:
        emit_json(revealed)
    else:
        click.echo("\n".join(f"{name}: {value}" for name, value in revealed.items()))


@instance.command()
@click.argument("address")
@click.option("--to", "to", metavar="VERSION", help="Target version (default: the service's current version).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--fleet", hidden=True, help="The fleet upgrade this belongs to (set by `ruche upgrade`).")
@_with_common_options
@pass_context
def upgrade(context: Context, address: str, to: str | None, yes: bool, fleet: str | None, dry_run: bool, as_json: bool,
            quiet: bool) -> None:  # fmt: skip
    """Upgrade ASSOCIATION/NAME to a newer version of its service, one allowed step at a time.

    A safety backup first (nothing happens if it fails); then per step: the database moved with its
    engine's own dump and restore when its major changes, the new images deployed, the entry's
    post-start commands, the health check and the entry's data check. On any failure the instance
    is rolled back: previous version, data restored from the safety snapshot, answering again. An
    earlier upgrade of it that was interrupted (ruche killed) is first finished or rolled back from
    its journal, as `ruche upgrades` then shows.

    Exit codes: 0 upgraded (or already current); 1 the safety backup failed (nothing changed), or an
    upgrade step failed and was rolled back (`ruche upgrades` shows the step and its output); refused
    before anything changed: 2 unknown version, downgrade or a step the entry does not allow, 5 the
    instance is not running or not healthy, 6 no backup repository.
    """
    from orchestrator.actions.instance_upgrade import preview as upgrade_preview
    from orchestrator.actions.instance_upgrade import recover_interrupted_upgrades, upgrade_instance

    progress = ProgressPrinter(not quiet and not as_json)
    if not dry_run:  # an upgrade of it that was interrupted is finished or rolled back first, from its journal
        recover_interrupted_upgrades(context.workspace, instance=address, by="instance upgrade", progress=progress)
    plan = upgrade_preview(context.workspace, address, to=to)
    if not plan["steps"]:
        emit_json({**plan, "status": "up to date"}) if as_json else click.echo(f"{address} already runs {plan['from']}")
        return
    if dry_run:
        if as_json:
            emit_json({**plan, "status": "would upgrade"})
        else:
            click.echo(_upgrade_plan_text(plan))
        return
    if not yes:
        click.echo(_upgrade_plan_text(plan), err=True)
        click.confirm(f"Upgrade {address} from {plan['from']} to {plan['to']}?", abort=True, err=True)
    result = upgrade_instance(context.workspace, address, to=to, fleet=fleet, progress=progress)
    if as_json:
        emit_json(result)
    else:
        click.echo(f"{address}: {result['status']} ({result['from']} -> {result['to']})"
                   + (f": {result['detail'].get('error')}" if result["status"] != "succeeded" else ""))  # fmt: skip
    if result["status"] != "succeeded":
        sys.exit(1)


def _upgrade_plan_text(plan: dict) -> str:
    lines = [f"{plan['instance']} ({plan['service']} on {plan['server']}): {plan['from']} -> {plan['to']}"]
    for step in plan["steps"]:
        extra = f"; database {step['database']} moved by dump and restore" if step["database_move"] else ""
        lines.append(f"  step {step['from']} -> {step['to']}: {step['image']}{extra}")
    for command in plan["after_start"]:
        lines.append(f"  then: {' '.join(command)}")
    lines.append("  a safety backup first; automatic rollback on failure")
    return "\n".join(lines)
