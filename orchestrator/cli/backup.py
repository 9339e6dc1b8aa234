"""``ruche backup run|list|status|restore|verify|expire|control-plane|restore-control-plane``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from orchestrator.actions.backup_expire import expire_backups
from orchestrator.actions.backup_list import backup_status, snapshots
from orchestrator.actions.backup_restore import restore as restore_snapshot
from orchestrator.actions.backup_restore import verify as verify_snapshot
from orchestrator.actions.backup_run import run_backups
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import ProgressPrinter, emit_json, table


def human_bytes(count: int | None) -> str:
    if count is None:
        return "-"
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"


def _retention(detail: dict) -> str:
    """A backup that succeeded but whose retention (forget --prune) did not run: said in its ERROR column."""
    return f"retention not applied: {detail['retention_error']}" if detail.get("retention_error") else ""


@click.group()
def backup() -> None:
    """Restic backups of instances (one encrypted repository per association, see [backup] in ruche.toml) and of
    the control plane."""


@backup.command()
@click.argument("instance", required=False)
@click.option("--server", help="Back up every running instance of this server.")
@click.option("--all", "all_instances", is_flag=True, help="Back up every running instance.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
@pass_context
def run(
    context: Context, instance: str | None, server: str | None, all_instances: bool, as_json: bool, quiet: bool
) -> None:
    """Back up INSTANCE (ASSOCIATION/NAME), --server S or --all now. Exit 1 if one failed."""
    result = run_backups(context.workspace, instance=instance, server=server, all_instances=all_instances,
                         progress=ProgressPrinter(not quiet and not as_json))  # fmt: skip
    if as_json:
        emit_json(result)
    else:
        rows = [
            (r["instance"], r["server"], r["status"], (r["snapshot_id"] or "-")[:8], human_bytes(r["data_added_bytes"]),
             f"{r['duration_seconds']:.1f} s" if r["duration_seconds"] is not None else "-", (r["detail"].get("error") or _retention(r["detail"]))[:80])
            for r in result["results"]
        ]  # fmt: skip
        click.echo(table(rows, ["INSTANCE", "SERVER", "STATUS", "SNAPSHOT", "ADDED", "TIME", "ERROR"]))
        for skipped in result["skipped"]:
            click.echo(f"skipped {skipped['instance']} ({skipped['state']})", err=True)
    if not result["succeeded"]:
        sys.exit(1)


@backup.command("list")
@click.argument("instance")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def list_(context: Context, instance: str, as_json: bool) -> None:
    """List the snapshots of INSTANCE, oldest first (read from its repository)."""
    result = snapshots(context.workspace, instance)
    if as_json:
        emit_json(result)
        return
    rows = [
        (s["short_id"], s["time"][:19].replace("T", " "), next((t[7:] for t in s["tags"] if t.startswith("reason=")), "-"),
         human_bytes(s["data_added"]), human_bytes(s["total_bytes"]))
        for s in result["snapshots"]
    ]  # fmt: skip
    click.echo(table(rows, ["SNAPSHOT", "TIME (UTC)", "REASON", "ADDED", "SIZE"]))


@backup.command()
@click.option(
    "--offline", is_flag=True, help="Use what is recorded; do not read the servers' logs of timer-run backups."
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def status(context: Context, offline: bool, as_json: bool) -> None:
    """Show each instance's last backup; flag those without a good one inside their offer's window (exit 1)."""
    result = backup_status(context.workspace, sync=not offline)
    if as_json:
        emit_json(result)
    else:
        rows = []
        for entry in result["instances"]:
            good = entry["last_success"]
            rows.append((entry["instance"], entry["server"], good["finished_at"] if good else "never",
                         (good["snapshot_id"] or "-")[:8] if good else "-", entry["problem"] or "ok"))  # fmt: skip
        click.echo(table(rows, ["INSTANCE", "SERVER", "LAST GOOD BACKUP", "SNAPSHOT", "STATUS"]))
        for server, error in result["unreachable"].items():
            click.echo(f"{server}: not read ({error})", err=True)
    if result["flagged"]:
        sys.exit(1)


@backup.command()
@click.argument("instance")
@click.option("--snapshot", default="latest", show_default=True, help="Snapshot id (see `ruche backup list`).")
@click.option(
    "--into", "into", metavar="ASSOCIATION/NAME", help="Restore into this instance (created if absent) instead."
)
@click.option("--server", help="With --into a new instance: put it on this server.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
@pass_context
def restore(context: Context, instance: str, snapshot: str, into: str | None, server: str | None, yes: bool,
            as_json: bool, quiet: bool) -> None:  # fmt: skip
    """Restore a snapshot of INSTANCE into it (after a safety backup) or --into another instance."""
    if not yes:
        where = into or instance
        click.confirm(f"This replaces the data of {where} with snapshot {snapshot} of {instance}. Continue?",
                      abort=True, err=True)  # fmt: skip
    result = restore_snapshot(context.workspace, instance, snapshot=snapshot, into=into, server=server,
                              progress=ProgressPrinter(not quiet and not as_json))  # fmt: skip
    answer = result["restore"]
    if as_json:
        emit_json(result)
    elif answer.get("status") == "success":
        click.echo(f"{result['target']}: snapshot {answer['snapshot_id'][:8]} restored; health {answer['health']}")
        if into is not None:
            carried = ", ".join(answer.get("secrets_carried_over") or []) or "none to change"
            click.echo(
                f"{into}: recorded application secrets taken from {instance} ({carried}); "
                f"`ruche instance secrets {into}` opens the restored data"
            )
        if answer.get("owners_moved"):
            click.echo(f"{result['target']}: file owners moved {answer['owners_moved']}")
    else:
        click.echo(f"{result['target']}: restore failed: {answer.get('error')}", err=True)
    if answer.get("status") != "success" or answer.get("health") != "healthy":
        sys.exit(1)


@backup.command()
@click.argument("instance")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
@pass_context
def verify(context: Context, instance: str, as_json: bool, quiet: bool) -> None:
    """Restore INSTANCE's latest snapshot into a scratch instance, check it, destroy it (exit 1 if it fails)."""
    result = verify_snapshot(context.workspace, instance, progress=ProgressPrinter(not quiet and not as_json))
    if as_json:
        emit_json(result)
    elif result["status"] == "success":
        click.echo(f"{instance}: snapshot {result['snapshot_id'][:8]} verified: restored into {result['scratch']}, "
                   f"healthy, {result.get('files', 0)} file(s) and every table's row count as recorded")  # fmt: skip
    else:
        click.echo(f"{instance}: verification FAILED:", err=True)
        for problem in result["problems"]:
            click.echo(f"  - {problem}", err=True)
    if result["status"] != "success":
        sys.exit(1)


@backup.command()
@click.option("--dry-run", is_flag=True, help="Say which snapshots would be forgotten; forget nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def expire(context: Context, dry_run: bool, yes: bool, as_json: bool) -> None:
    """Forget the snapshots of deleted instances whose offer's retention is over (recorded)."""
    if not dry_run and not yes:
        preview = expire_backups(context.workspace, dry_run=True)
        if preview["expired"]:
            names = ", ".join(e["instance"] for e in preview["expired"])
            click.confirm(f"This forgets every snapshot of {names}: they cannot be restored afterwards. Continue?",
                          abort=True, err=True)  # fmt: skip
    result = expire_backups(context.workspace, dry_run=dry_run)
    if as_json:
        emit_json(result)
        return
    verb = "would forget" if dry_run else "forgot"
    for entry in result["expired"]:
        click.echo(f"{verb} the snapshots of {entry['instance']} (last backup {entry['last_backup']})"
                   + (f": {entry['error']}" if entry.get("error") else ""))  # fmt: skip
    for entry in result["kept"]:
        click.echo(f"kept until {entry['keep_until']}: {entry['instance']}")
    if any(e.get("status") == "failed" for e in result["expired"]):
        sys.exit(1)


@backup.command("control-plane")
@click.option("--to", "to", metavar="REPOSITORY",
              help="restic repository (path, sftp:USER@HOST:/PATH, s3:...); default: [backup] control_plane_repository.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
@pass_context
def control_plane(context: Context, to: str | None, as_json: bool, quiet: bool) -> None:
    """Snapshot what only the control machine holds: the state (a portable dump), ruche.toml, the inventories'
    history, the servers' host keys and SSH keys, into a restic repository whose password derives from the vault
    password (never the vault password itself)."""
    from orchestrator.actions.control_plane_backup import backup_control_plane

    result = backup_control_plane(context.workspace, to=to, progress=ProgressPrinter(not quiet and not as_json))
    if as_json:
        emit_json(result)
        return
    holds, rows = result["holds"], result["holds"]["state_rows"]
    click.echo(f"snapshot {result['snapshot_id']} in {result['repository']}"
               f"{' (repository created)' if result['repository_created'] else ''}: {human_bytes(result['bytes'])}, "
               f"{human_bytes(result['data_added_bytes'])} new")  # fmt: skip
    click.echo(f"  state (revision {result['revision']}): {sum(rows.values())} rows, {rows.get('associations', 0)} "
               f"association(s), {rows.get('instances', 0)} instance(s), {rows.get('servers', 0)} server(s), "
               f"{rows.get('events', 0)} event(s)")  # fmt: skip
    click.echo(f"  inventories: {holds['inventory_files']} file(s), {holds['inventory_commits']} commit(s); "
               f"{holds['known_hosts_files']} known_hosts file(s); {holds['ssh_keys']} SSH key(s)"
               + (f"; catalogue: {holds['catalog_files']} file(s)" if holds["catalog_files"] is not None else ""))  # fmt: skip
    for missing in result["missing"]:
        click.echo(f"not backed up: {missing['server']}'s {missing['what']} {missing['path']} ({missing['error']})",
                   err=True)  # fmt: skip


@backup.command("restore-control-plane")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--from", "repository", required=True, metavar="REPOSITORY",
              help="The restic repository `ruche backup control-plane` wrote to.")  # fmt: skip
@click.option("--snapshot", default="latest", show_default=True, help="Snapshot id (or its first characters).")
@click.option("--state-url", metavar="URL",
              help="Load the state into this (empty) database instead of ruche.toml's state_url, and write it there "
                   "(e.g. from SQLite to PostgreSQL).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
def restore_control_plane(directory: Path, repository: str, snapshot: str, state_url: str | None, as_json: bool,
                          quiet: bool) -> None:  # fmt: skip
    """Make the workspace DIRECTORY (new or empty) on this machine from a control-plane backup. The vault password
    comes from $RUCHE_VAULT_PASSWORD_FILE (or $RUCHE_VAULT_PASSWORD): the repository opens with it."""
    from orchestrator.actions.control_plane_backup import restore_control_plane as restore

    result = restore(directory, repository=repository, snapshot=snapshot, state_url=state_url,
                     progress=ProgressPrinter(not quiet and not as_json))  # fmt: skip
    if as_json:
        emit_json(result)
        return
    rows = result["rows"]
    click.echo(f"{result['workspace']}: restored from snapshot {result['snapshot_id'][:8]} of {result['repository']} "
               f"(made {result['made_at'][:19]} from {result['from_workspace']})")  # fmt: skip
    click.echo(f"  state: {result['state_url']}, revision {result['revision']}, {sum(rows.values())} rows; the vault "
               f"password opens {result['secrets_checked']} recorded secret(s)")  # fmt: skip
    for key in result["keys"]:
        click.echo(f"  SSH key of {', '.join(key['servers'])}: {key['path']}")
    for change in result["servers_changed"]:
        click.echo(
            f"  server {change['server']}: " + ", ".join(f"{k} = {v}" for k, v in change.items() if k != "server")
        )
    for note in result["notes"]:
        click.echo(f"note: {note}", err=True)
