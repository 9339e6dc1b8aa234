"""``ruche alerts [--all] [--json]``, ``ruche alerts ack|notify``, ``ruche watch``."""

from __future__ import annotations

import signal
import sys
import threading

import click

from orchestrator.actions.alert_ack import ack as ack_alert
from orchestrator.actions.alert_list import alerts as list_alerts
from orchestrator.actions.alert_notify import add, channels, remove, test
from orchestrator.actions.watch import watch as watch_once
from orchestrator.actions.watch import watch_forever
from orchestrator.alerts import KINDS
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import ProgressPrinter, emit_json, table

KIND_HELP = "\n".join(f"  {name}: {kind.description}" for name, kind in KINDS.items())


def _rows(entries: list[dict]) -> str:
    rows = [(e["id"], e["state"], e["kind"], e["subject"], (e["first_seen"] or "")[:16].replace("T", " "),
             (e["last_seen"] or "")[:16].replace("T", " "), e["summary"][:70]) for e in entries]  # fmt: skip
    return table(rows, ["ID", "STATE", "KIND", "SUBJECT", "FIRST SEEN", "LAST SEEN", "SUMMARY"])


@click.group(invoke_without_command=True, epilog="\b\nKinds:\n" + KIND_HELP)
@click.option("--all", "everything", is_flag=True, help="Cleared alerts too.")
@click.option("--association", help="Only this association's alerts.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def alerts(click_context: click.Context, everything: bool, association: str | None, as_json: bool) -> None:
    """List the open alerts the watcher (`ruche watch`, `ruche worker`) found, newest first.

    Exit status 0 when none is open, 1 when one is (acknowledged ones count).
    """
    if click_context.invoked_subcommand is not None:
        return
    context: Context = click_context.obj
    entries = list_alerts(context.workspace, everything=everything, association=association)
    if as_json:
        emit_json(entries)
    else:
        click.echo(_rows(entries) if entries else "no alert" + ("" if everything else " open"))
    if any(e["state"] != "cleared" for e in entries):
        sys.exit(1)


@alerts.command("ack")
@click.argument("alert_id", type=int)
@click.option("--reason", required=True, help="Why it may stay open (kept in the audit trail).")
@click.option("--json", "as_json", is_flag=True, help="Print the alert as JSON.")
@pass_context
def ack_(context: Context, alert_id: int, reason: str, as_json: bool) -> None:
    """Acknowledge alert ALERT_ID: no more reminders; it still clears, and that is told."""
    entry = ack_alert(context.workspace, alert_id, reason=reason)
    emit_json(entry) if as_json else click.echo(f"alert {alert_id} ({entry['kind']} {entry['subject']}) acknowledged")


@alerts.group()
def notify() -> None:
    """The admins' channels: Apprise URLs (kept encrypted) and addresses mailed through the relay."""


@notify.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def notify_list(context: Context, as_json: bool) -> None:
    """List the channels, secrets masked."""
    entries = channels(context.workspace)
    if as_json:
        emit_json(entries)
        return
    click.echo(table([(e["number"], e["kind"], e["channel"] + ("" if e.get("known", True) else " (Apprise does not know it)"))
                      for e in entries],
                     ["NUMBER", "KIND", "CHANNEL"]) if entries else "no channel: `ruche alerts notify add URL|ADDRESS`")  # fmt: skip


@notify.command("add")
@click.argument("channel", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def notify_add(context: Context, channel: str | None, as_json: bool) -> None:
    """Add CHANNEL: an Apprise URL (https://github.com/caronc/apprise/wiki: ntfy://, matrixs://, xmpps://,
    json:// for a webhook, mailtos://...) or an admin's e-mail address. Without CHANNEL it is asked for
    without echo (an URL with a token stays out of the shell's history)."""
    if channel is None:
        channel = click.prompt("Apprise URL or address", hide_input=True, err=True)
    entry = add(context.workspace, channel)
    if as_json:
        emit_json(entry)
        return
    click.echo(f"added {entry['kind']} {entry['added']}")
    if entry["warning"]:
        click.echo(f"warning: {entry['warning']}", err=True)


@notify.command("remove")
@click.argument("number", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def notify_remove(context: Context, number: int, as_json: bool) -> None:
    """Remove channel NUMBER (as `ruche alerts notify list` numbers them)."""
    entry = remove(context.workspace, number)
    emit_json(entry) if as_json else click.echo(f"removed {entry['kind']} {entry['removed']}")


@notify.command("test")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def notify_test(context: Context, as_json: bool) -> None:
    """Send a test notice on every channel (exit 1 when one did not take it)."""
    result = test(context.workspace)
    if as_json:
        emit_json(result)
    else:
        click.echo(f"sent on {len(result['channels'])} channel(s)" if result["ok"] else f"failed: {result['error']}")
    if not result["ok"]:
        sys.exit(1)


@click.command(epilog="\b\nKinds:\n" + KIND_HELP)
@click.option("--once", is_flag=True, help="One watch, then exit (for a systemd timer or cron).")
@click.option("--interval", type=click.IntRange(10, 86400), help="Seconds between watches (default: [alerts] "
              "interval_minutes).")  # fmt: skip
@click.option("--no-notify", is_flag=True, help="Record the alerts, tell no one (with --once).")
@click.option("--json", "as_json", is_flag=True, help="With --once: print the outcome as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
@pass_context
def watch(context: Context, once: bool, interval: int | None, no_notify: bool, as_json: bool, quiet: bool) -> None:
    """Look at everything that can go wrong (instances' health, servers, backups, quotas, runs, the queue,
    own domains' certificates), record what is as alerts, and tell the admins (and associations that opted in,
    of their own instances) when one opens, is still open after [alerts] remind_hours, and clears.

    `ruche worker` watches too (--watch); run this where no worker runs (docs/systemd/ruche-watch.timer). One
    watch at a time across processes and machines: another one running, this one is skipped. Exit status with
    --once: 1 when a notice could not be delivered (it is tried again at the next watch); `ruche alerts` exits 1
    while an alert is open.
    """
    if not once and (no_notify or as_json):
        raise click.UsageError("--no-notify and --json go with --once")
    progress = ProgressPrinter(not quiet and not as_json)
    if once:
        outcome = watch_once(context.workspace, tell=not no_notify, progress=progress)
        if outcome["skipped"] and not as_json:
            click.echo(f"watch skipped: {outcome['skipped']}", err=True)
        if as_json:
            emit_json(outcome)
        else:
            click.echo(_rows(outcome["alerts"]) if outcome["alerts"] else "no alert open")
            failed = [n for n in outcome["notices"] if n["error"]]
            click.echo(f"{len(outcome['opened'])} opened, {len(outcome['cleared'])} cleared, "
                       f"{len(outcome['notices'])} notice(s) sent, {len(failed)} failed, in {outcome['seconds']} s")  # fmt: skip
            for notice in failed:
                click.echo(f"warning: alert {notice['alert']}: {notice['error']}", err=True)
        if any(n["error"] for n in outcome["notices"]):
            sys.exit(1)  # a notice could not be delivered (it is tried again at the next watch)
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    watch_forever(context.workspace, interval_seconds=interval, stop=stop, progress=ProgressPrinter(not quiet))
