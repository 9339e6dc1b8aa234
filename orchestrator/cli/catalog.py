"""``ruche catalog list|show|validate|outdated|check``."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from orchestrator.actions import catalog as actions
from orchestrator.actions import catalog_check as checks
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import ProgressPrinter, emit_json, table, user_language


@click.group()
def catalog() -> None:
    """The service catalogue: what ruche can deploy, and how."""


@catalog.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def list_(context: Context, as_json: bool) -> None:
    """List the services of the catalogue."""
    services = actions.list_services(context.workspace)
    latest = checks.latest_checks(context.workspace)
    for entry in services:
        entry["last_check"] = latest.get(entry["id"])
    if as_json:
        emit_json(services)
        return
    rows = [(s["id"], s["name"][user_language()], s["version"], s["database"], s["image"], _checked(s["last_check"]),
             s["verification"]["summary"]) for s in services]  # fmt: skip
    click.echo(table(rows, ["ID", "NAME", "VERSION", "DATABASE", "IMAGE", "CHECKED", "VERIFIED"]))


def _checked(record: dict | None) -> str:
    """One cell: the newest `catalog check` of an entry."""
    if record is None:
        return "never run (ruche catalog check)"
    when = record["started_at"][:10]
    if record["status"] == "passed":
        skipped = f" ({', '.join(record['skipped'])} skipped)" if record.get("skipped") else ""
        return f"ran on {record['server']} on {when}: {record['version']} passed{skipped}"
    return f"ran on {record['server'] or '?'} on {when}: {record['version']} FAILED at {record['failed_step']}"


@catalog.command()
@click.argument("service_id")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (default: YAML).")
@pass_context
def show(context: Context, service_id: str, as_json: bool) -> None:
    """Show the whole definition of SERVICE_ID."""
    definition = actions.show_service(context.workspace, service_id)
    definition["checks"] = [
        {key: record[key] for key in ("id", "version", "server", "status", "steps_passed", "steps_total",
                                      "failed_step", "started_at", "ruche_version")}
        for record in checks.checks_of(context.workspace, service_id)[:5]
    ]  # fmt: skip
    emit_json(definition) if as_json else click.echo(yaml.safe_dump(definition, sort_keys=False, allow_unicode=True))


@catalog.command()
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
@pass_context
def validate(context: Context, path: Path | None) -> None:
    """Check a catalogue entry or directory; every error is reported with its file and path."""
    ids = actions.validate(path, context.workspace)
    click.echo(f"valid: {', '.join(ids)}")


def _support(row: dict) -> str:
    if row["support"] == "ended":
        return f"ENDED {row['end_of_support']}"
    if row["support"] == "ending":
        return f"ends {row['end_of_support']} (in {row['support_days']} days)"
    return row["end_of_support"] or "?"


@catalog.command()
@click.argument("services", nargs=-1, metavar="[SERVICE]...")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def outdated(context: Context, services: tuple[str, ...], as_json: bool) -> None:
    """Newer versions of each entry's images, and versions past or near their end of support.

    Each listed version's image repository is read in its registry (through the workspace's mirror when
    it serves that registry, as the servers pull): the newer versions of the same major, then the newer
    majors beside the entry's newest version. Run it monthly, then update the entries (pin the new
    version, with its upgrade rule) and `ruche upgrade SERVICE`. Exit 1 when a registry could not be read."""
    result = actions.outdated(context.workspace, services)
    if as_json:
        emit_json(result)
    else:
        rows = [(r["service"], r["version"] + (" *" if r["default"] else ""), ", ".join(r["newer_same_major"][:5]) or "-",
                 ", ".join(r["newer_majors"][:5]) or "-", _support(r)) for r in result["versions"]]  # fmt: skip
        click.echo(table(rows, ["SERVICE", "VERSION", "NEWER (SAME MAJOR)", "NEWER MAJORS", "SUPPORT"]))
        click.echo("* the version new instances get")
        for row in result["versions"]:
            if row["error"]:
                click.echo(f"{row['service']} {row['version']}: not read: {row['error']}", err=True)
    if result["errors"]:
        raise SystemExit(1)


@catalog.command("check")
@click.argument("service_id", metavar="SERVICE")
@click.option("--version", "version", help="The version to check (default: the one new instances get).")
@click.option("--server", help="Run it on this server (default: placement's choice).")
@click.option(
    "--keep",
    is_flag=True,
    help="After a failure, leave what the check made in place, to look at it "
    "(a check that passes always ends by deleting it).",
)
@click.option(
    "--skip",
    "skip",
    multiple=True,
    type=click.Choice(checks.SKIPPABLE),
    help="Leave this step out (repeatable): a quicker check, recorded as such.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
@pass_context
def check(context: Context, service_id: str, version: str | None, server: str | None, keep: bool,
          skip: tuple[str, ...], as_json: bool, quiet: bool) -> None:  # fmt: skip
    """Run SERVICE's whole lifecycle for real on a server, in a throwaway association, and record the outcome.

    Steps: create and converge, health through Caddy, a datum written and read back through the service's
    own CLI or API (the entry's `check` hook), every unit restarted (files keep their owners), backup,
    restore in place, restore into a new instance, backup verify, suspend and resume, an upgrade from each
    version the entry accepts, delete, and the association removed. The first failing step ends the check,
    named with the commands to reproduce it; its output is kept under the workspace's checks/ directory.
    `catalog list` shows the outcome. Exit 1 when a step fails."""
    record = checks.catalog_check(context.workspace, service_id, version=version, server=server, keep=keep,
                                  skip=skip, progress=ProgressPrinter(not quiet and not as_json))  # fmt: skip
    if as_json:
        emit_json(record)
    else:
        rows = [(step["name"], step["status"], "-" if step["seconds"] is None else f"{step['seconds']} s")
                for step in record["steps"]]  # fmt: skip
        click.echo(table(rows, ["STEP", "STATUS", "TIME"]))
        click.echo(f"{record['service']} {record['version']} on {record['server']}: {record['status']} "
                   f"({record['steps_passed']}/{record['steps_total']} steps); output in {record['log_dir']}")  # fmt: skip
        if record["status"] != "passed":
            failed = next(step for step in record["steps"] if step["status"] == "failed")
            click.echo(f"failed at {failed['name']}: {failed['error']}", err=True)
            if record.get("reproduce"):
                click.echo("to reproduce:\n" + record["reproduce"], err=True)
            if record.get("cleanup_problems"):
                click.echo("not cleaned up: " + "; ".join(record["cleanup_problems"]), err=True)
    if record["status"] != "passed":
        raise SystemExit(1)
