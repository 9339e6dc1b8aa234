"""``ruche usage collect`` and ``ruche quota report``."""

from __future__ import annotations

import csv
import io
import sys

import click

from orchestrator.actions.quota_report import quota_report
from orchestrator.actions.usage_collect import collect_usage
from orchestrator.cli.backup import human_bytes
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import ProgressPrinter, emit_json, table


@click.group()
def usage() -> None:
    """What instances really use on the servers."""


@usage.command()
@click.option("--json", "as_json", is_flag=True, help="Print the samples as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
@pass_context
def collect(context: Context, as_json: bool, quiet: bool) -> None:
    """Measure every instance (disk, database, memory, CPU time) on all servers in parallel and record it; roll up
    old samples ([usage])."""
    result = collect_usage(context.workspace, progress=ProgressPrinter(not quiet and not as_json))
    if as_json:
        emit_json(result)
    else:
        rows = [(s["instance"], s["server"], human_bytes(s["disk_bytes"]), human_bytes(s["database_bytes"]),
                 human_bytes(s["memory_bytes"]), "-" if s["cpu_usec"] is None else f"{s['cpu_usec'] / 1e6:.1f} s",
                 s["error"][:60]) for s in result["samples"]]  # fmt: skip
        click.echo(table(rows, ["INSTANCE", "SERVER", "DISK", "DATABASE", "MEMORY", "CPU TIME", "ERROR"]))
        click.echo(
            f"{len(result['samples'])} instance(s) on {result['servers']} server(s) in {result['seconds']:.1f} s"
        )
    if result["skipped"]:
        click.echo(f"error: {result['skipped']}; try again in a moment", err=True)
        sys.exit(5)
    if result["errors"]:
        for server, error in result["errors"].items():
            click.echo(f"{server}: {error}", err=True)
        sys.exit(1)


@click.group()
def quota() -> None:
    """Offers' limits against what associations and servers hold."""


@quota.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print as CSV (one row per association, then per server).")
@pass_context
def report(context: Context, as_json: bool, as_csv: bool) -> None:
    """Per association and per server: limit, allocated, measured (latest `usage collect`), percent, flags."""
    result = quota_report(context.workspace)
    if as_json:
        emit_json(result)
        return
    association_rows = [
        (a["association"], a["offer"] or "-",
         f"{a['allocated']['instances']}/{a['limit']['instances']}" if a["limit"] else a["allocated"]["instances"],
         f"{a['allocated']['memory_mb']}/{a['limit']['memory_mb']} MiB" if a["limit"] else f"{a['allocated']['memory_mb']} MiB",
         f"{a['allocated']['disk_gb']}/{a['limit']['disk_gb']} GiB" if a["limit"] else f"{a['allocated']['disk_gb']} GiB",
         human_bytes(a["measured"]["disk_bytes"]),
         "-" if a["percent"]["disk_measured"] is None else f"{a['percent']['disk_measured']}%",
         ",".join(a["flags"]) or "ok")
        for a in result["associations"]
    ]  # fmt: skip
    server_rows = [
        (s["server"], s["instances"], f"{s['allocated']['cpu']}/{s['capacity']['cpu']}",
         f"{s['allocated']['memory_mb']}/{s['capacity']['memory_mb']} MiB", f"{s['allocated']['disk_gb']}/{s['capacity']['disk_gb']} GiB",
         human_bytes(s["measured"]["disk_bytes"]),
         "-" if s["percent"]["disk_measured"] is None else f"{s['percent']['disk_measured']}%", ",".join(s["flags"]) or "ok")
        for s in result["servers"]
    ]  # fmt: skip
    if as_csv:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            [
                "kind",
                "name",
                "offer",
                "instances",
                "instances_limit",
                "memory_mb",
                "memory_mb_limit",
                "disk_gb",
                "disk_gb_limit",
                "measured_disk_bytes",
                "measured_memory_bytes",
                "disk_measured_percent",
                "flags",
            ]
        )
        for a in result["associations"]:
            limit = a["limit"] or {}
            writer.writerow(
                [
                    "association",
                    a["association"],
                    a["offer"] or "",
                    a["allocated"]["instances"],
                    limit.get("instances", ""),
                    a["allocated"]["memory_mb"],
                    limit.get("memory_mb", ""),
                    a["allocated"]["disk_gb"],
                    limit.get("disk_gb", ""),
                    a["measured"]["disk_bytes"] if a["measured"]["disk_bytes"] is not None else "",
                    a["measured"]["memory_bytes"] if a["measured"]["memory_bytes"] is not None else "",
                    a["percent"]["disk_measured"] if a["percent"]["disk_measured"] is not None else "",
                    " ".join(a["flags"]),
                ]
            )
        for s in result["servers"]:
            writer.writerow(
                [
                    "server",
                    s["server"],
                    "",
                    s["instances"],
                    "",
                    s["allocated"]["memory_mb"],
                    s["capacity"]["memory_mb"],
                    s["allocated"]["disk_gb"],
                    s["capacity"]["disk_gb"],
                    s["measured"]["disk_bytes"] if s["measured"]["disk_bytes"] is not None else "",
                    s["measured"]["memory_bytes"] if s["measured"]["memory_bytes"] is not None else "",
                    s["percent"]["disk_measured"] if s["percent"]["disk_measured"] is not None else "",
                    " ".join(s["flags"]),
                ]
            )
        click.echo(out.getvalue(), nl=False)
        return
    click.echo(
        table(
            association_rows,
            ["ASSOCIATION", "OFFER", "INSTANCES", "MEMORY", "DISK", "MEASURED DISK", "OF OFFER", "FLAGS"],
        )
    )
    click.echo()
    click.echo(
        table(server_rows, ["SERVER", "INSTANCES", "CPU", "MEMORY", "DISK", "MEASURED DISK", "OF DISK", "FLAGS"])
    )
