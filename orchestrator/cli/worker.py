"""``ruche worker`` and ``ruche queue list|show``."""

from __future__ import annotations

import os
import signal
import sys
import threading
from datetime import timedelta

import click

from orchestrator.actions.queue import queued_run, queued_runs
from orchestrator.actions.worker import new_worker_name, run_worker, stop_own_processes, watch_interval
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import ProgressPrinter, emit_json, table


@click.command()
@click.option("--once", is_flag=True, help="Stop when no run is queued or running any more (for tests and cron).")
@click.option(
    "--concurrency", default=4, show_default=True, type=click.IntRange(1, 64), help="Runs at once (different servers)."
)
@click.option(
    "--poll", default=2.0, show_default=True, type=click.FloatRange(0.1, 60), help="Seconds between looks at the queue."
)
@click.option("--stale-after", default=60, show_default=True, type=click.IntRange(10, 3600),
              help="Seconds without a heartbeat after which another worker's run is taken back.")  # fmt: skip
@click.option("--domain-retry", default=5, show_default=True, type=click.IntRange(0, 1440),
              help="Minutes between two proofs of the pending own domains and looks at the attached ones' "
              "certificates (0: never; not with --once).")  # fmt: skip
@click.option("--watch", "watch_minutes", type=click.IntRange(0, 1440),
              help="Minutes between two watches (`ruche watch`: alerts recorded and told; 0: none; default: "
              "[alerts] interval_minutes; not with --once).")  # fmt: skip
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
@pass_context
def worker(context: Context, once: bool, concurrency: int, poll: float, stale_after: int, domain_retry: int,
           watch_minutes: int | None, quiet: bool) -> None:  # fmt: skip
    """Carry out queued runs: at most one per server at a time, servers in parallel. Every --domain-retry
    minutes, prove the pending own domains again (queuing a run for each instance that gets one); every --watch
    minutes, watch the fleet (`ruche watch`).

    SIGTERM or Ctrl-C: take no new run and finish the current ones; a second one stops the runs'
    ansible-playbook processes and exits at once (the cut-off runs are taken back and retried by
    the next worker once their heartbeats are --stale-after old).
    """
    stop, abandon = threading.Event(), threading.Event()
    name = new_worker_name()

    def on_signal(_number, _frame) -> None:
        if stop.is_set():
            abandon.set()  # first, so that the runs about to be cut off are not recorded as failed
            stopped = stop_own_processes(name)
            click.echo(f"worker {name}: stopped at once ({len(stopped)} process(es) of its runs ended)", err=True)
            os._exit(1)  # not sys.exit: the runs' threads would keep the process alive until they end
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if watch_minutes is None:
        watch_minutes = watch_interval(context.workspace)
    outcome = run_worker(context.workspace, once=once, concurrency=concurrency, poll_seconds=poll,
                         stale_after=timedelta(seconds=stale_after), stop=stop, progress=ProgressPrinter(not quiet), name=name,
                         abandon=abandon, domain_retry=timedelta(minutes=domain_retry) if domain_retry else None,
                         watch_every=timedelta(minutes=watch_minutes) if watch_minutes else None)  # fmt: skip
    click.echo(f"worker {outcome['worker']}: {len(outcome['done'])} done, {len(outcome['failed'])} failed, "
               f"{len(outcome['recovered'])} taken back from stopped workers")  # fmt: skip
    if outcome["failed"]:
        sys.exit(1)


@click.group()
def queue() -> None:
    """Runs waiting for, or carried out by, `ruche worker`."""


@queue.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def list_(context: Context, as_json: bool) -> None:
    """List queued runs, newest first."""
    entries = queued_runs(context.workspace)
    if as_json:
        emit_json(entries)
        return
    rows = [(e["id"], e["instance"] or e["server"], e["state"], e["attempts"], e["requested_by"], e["run_id"] or "-",
             e["progress"][:60]) for e in entries]  # fmt: skip
    click.echo(table(rows, ["ID", "TARGET", "STATE", "ATTEMPTS", "BY", "RUN", "PROGRESS"]))


@queue.command()
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def show(context: Context, run_id: int, as_json: bool) -> None:
    """Show queued run RUN_ID."""
    entry = queued_run(context.workspace, run_id)
    emit_json(entry) if as_json else click.echo("\n".join(f"{key}: {value}" for key, value in entry.items()))
