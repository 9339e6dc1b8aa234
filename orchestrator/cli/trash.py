"""``ruche trash list|empty``: the servers' trash of deleted instances."""

from __future__ import annotations

import click

from orchestrator.cli.backup import human_bytes
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import ProgressPrinter, emit_json, table
from orchestrator.errors import OperationFailed

DUE_RULES = """\b
When an entry is due for erasure:
- its association's offer's trash_retention_days (ruche.toml, default 30) after the deletion; 0: at once;
- at once when its association has no offer, or no longer exists (`ruche association remove`, or removed
  and registered again since), so that a deletion request completes;
- never while its association's offer is missing from ruche.toml (kept until it is defined again);
- never for a name that is not exactly TIMESTAMP-ASSOCIATION--NAME (listed, left alone)."""


@click.group()
def trash() -> None:
    """The servers' trash (/srv/ruche/trash): data of instances deleted without --purge, erased once due.

    `ruche trash empty --yes` is meant to run daily (docs/systemd/ruche-trash.timer).
    """


def _rows(entries: list[dict]) -> str:
    rows = [(e["server"], e["address"] or e["entry"], e["deleted_at"] or "-", human_bytes(e["bytes"]),
             e["due_at"] or "never", "yes" if e["due"] else "no", e["rule"]) for e in entries]  # fmt: skip
    return table(rows, ["SERVER", "INSTANCE", "DELETED", "SIZE", "DUE AT", "DUE", "RULE"])


def _fail_on_errors(result: dict) -> None:
    problems = [f"{server}: {error}" for server, error in result["errors"].items()]
    problems += [f"{e['server']}: {e['entry']}: {e['error']}" for e in result.get("failed", [])]
    if problems:
        raise OperationFailed("; ".join(problems), hint="check the server's SSH access (`ruche server list`)")


@trash.command("list", epilog=DUE_RULES)
@click.option("--server", help="Only this application server.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@pass_context
def list_(context: Context, server: str | None, as_json: bool, quiet: bool) -> None:
    """List each entry of every application server's trash: the deleted instance, its association, when it was
    deleted, its size and when it is due for erasure (and by which rule). Exit 1 if a server cannot be read."""
    from orchestrator.actions.trash_list import list_trash

    result = list_trash(context.workspace, server=server, progress=ProgressPrinter(not quiet and not as_json))
    if as_json:
        emit_json(result)
    elif result["entries"]:
        click.echo(_rows(result["entries"]))
    else:
        click.echo(f"the trash of {len(result['servers'])} server(s) is empty")
    _fail_on_errors(result)


@trash.command(epilog=DUE_RULES)
@click.option("--server", help="Only this application server.")
@click.option("--dry-run", is_flag=True, help="Show what would be erased; change nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@pass_context
def empty(context: Context, server: str | None, dry_run: bool, yes: bool, as_json: bool, quiet: bool) -> None:
    """Erase the trash entries that are due (see below), recording a `trash.erased` event for each
    (`ruche events --kind trash.erased`). Asks first, unless --yes. Exit 1 if a server cannot be read or
    an entry cannot be erased (the others are)."""
    from orchestrator.actions.trash_empty import empty_trash

    progress = ProgressPrinter(not quiet and not as_json)
    confirmed = None
    if not dry_run and not yes:
        preview = empty_trash(context.workspace, server=server, dry_run=True, progress=progress)
        if preview["would_erase"]:
            click.echo(_rows(preview["would_erase"]), err=True)
            click.confirm(f"Erase these {len(preview['would_erase'])} entries for good?", abort=True, err=True)
        confirmed = {(e["server"], e["entry"]) for e in preview["would_erase"]}
    result = empty_trash(context.workspace, server=server, dry_run=dry_run, confirmed=confirmed, progress=progress)
    if as_json:
        emit_json(result)
    else:
        done = result["would_erase"] if dry_run else result["erased"]
        verb = "would erase" if dry_run else "erased"
        for e in done:
            click.echo(f"{verb} {e['address']} on {e['server']} ({e['path']}, {human_bytes(e['bytes'])}, "
                       f"deleted {e['deleted_at']}; {e['rule']})")  # fmt: skip
        upcoming = sorted(e["due_at"] for e in result["kept"] if e["due_at"])
        summary = f"{len(done)} entr{'y' if len(done) == 1 else 'ies'} {verb}, {len(result['kept'])} kept"
        click.echo(summary + (f" (next due at {upcoming[0]})" if upcoming else ""))
    _fail_on_errors(result)
