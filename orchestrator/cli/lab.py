"""``ruche lab up|status|down`` and ``ruche lab dns set|remove|list``."""

from __future__ import annotations

import sys

import click

from orchestrator.actions.lab_dns import list_records, remove_records, set_record
from orchestrator.actions.lab_down import tear_down
from orchestrator.actions.lab_status import inspect
from orchestrator.actions.lab_up import bring_up
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import ProgressPrinter, emit_json, table


@click.group()
def lab() -> None:
    """A local lab of real Debian servers (systemd-nspawn) for tests and demos. Needs root."""


def _print_status(status: dict) -> None:
    if status["registry"]:
        answering = "answering" if status["registry"]["answering"] else "NOT answering"
        click.echo(f"subnet {status['subnet']}, registry {status['registry']['address']} ({answering})")
    if status.get("dns") and status.get("acme"):
        dns_state, acme_state = status["dns"], status["acme"]
        click.echo(
            f"DNS {dns_state['address']} ({'answering' if dns_state['answering'] else 'NOT answering'}), "
            f"ACME {acme_state['directory']} ({'answering' if acme_state['answering'] else 'NOT answering'})"
        )
    rows = [
        (
            s["name"],
            s["role"],
            s["address"],
            "yes" if s.get("ssh_reachable") else "no",
            s.get("systemd") or s.get("error", ""),
        )
        for s in status["servers"]
    ]
    click.echo(table(rows, ["SERVER", "ROLE", "ADDRESS", "SSH", "SYSTEMD"]))
    click.echo("the lab is up" if status["up"] else "the lab is NOT up")


@lab.command()
@click.option(
    "--servers", "app_servers", default=2, show_default=True, help="Application servers (plus one backup server)."
)
@click.option(
    "--service",
    "services",
    multiple=True,
    metavar="SERVICE",
    help="Build and push only the lab images this catalogue service's current version runs (repeatable; default: "
    "every lab image; older versions' images are not built). On a lab already up, adds them.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the resulting status as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@pass_context
def up(context: Context, app_servers: int, services: tuple[str, ...], as_json: bool, quiet: bool) -> None:
    """Boot the lab: servers, local image registry, DNS and ACME server, service images; register the servers.

    The lab's settings (its registry mirror, internal certificates, no resource limits, its backup target and
    mail sink, own domains' ACME server and DNS) go in the lab's own file (lab/settings.toml), which applies over
    ruche.toml until `ruche lab down`; ruche.toml is left as it is. Refused in a workspace holding servers an admin
    registered. Running it again while the lab is up only adds the images its registry lacks.

    A fresh machine builds the server base and each service image once (a few minutes; cached after, under
    $RUCHE_LAB_CACHE or /var/cache/ruche/lab): --service builds only what those services need.
    """
    status = bring_up(
        context.workspace, app_servers=app_servers, services=services, progress=ProgressPrinter(not quiet)
    )
    emit_json(status) if as_json else _print_status(status)
    if not status["up"]:
        sys.exit(1)


@lab.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@pass_context
def status(context: Context, as_json: bool) -> None:
    """Each lab server: address, whether SSH answers, systemd's state. Exits 1 unless all is up."""
    result = inspect(context.workspace)
    emit_json(result) if as_json else _print_status(result)
    if not result["up"]:
        sys.exit(1)


@lab.command()
@click.option("--json", "as_json", is_flag=True, help="Print what was removed as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@pass_context
def down(context: Context, as_json: bool, quiet: bool) -> None:
    """Stop and remove everything the lab created (also after an interrupted `lab up`)."""
    removed = tear_down(context.workspace, progress=ProgressPrinter(not quiet))
    if as_json:
        emit_json(removed)
    else:
        click.echo(
            f"removed {removed['servers']} server(s), {removed['links']} link(s), "
            f"{removed['registry']} registry, {removed['registered']} registry entries"
        )


@lab.group()
def dns() -> None:
    """The lab DNS's records (dnsmasq on the lab bridge, port 53): the names own-domain tests point at lab servers.

    It answers only the names set here (A, AAAA, CNAME, TXT); any other name is NXDOMAIN. Needs root and a lab that
    is up. `ruche lab status` gives its address.
    """


@dns.command("set")
@click.argument("name")
@click.argument("rtype", metavar="TYPE")
@click.argument("value")
@click.option("--add", "append", is_flag=True, help="Keep NAME's other records of TYPE (default: VALUE replaces them).")
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
@pass_context
def dns_set(context: Context, name: str, rtype: str, value: str, append: bool, as_json: bool) -> None:
    """Give NAME a record of TYPE (A, AAAA, CNAME or TXT) with VALUE; the next query sees it.

    Example: ruche lab dns set wiki.amap.test A 10.213.47.11
    """
    record = set_record(context.workspace, name, rtype, value, append=append)
    emit_json(record) if as_json else click.echo(f"{record['name']} {record['type']} {record['value']}")


@dns.command("remove")
@click.argument("name")
@click.argument("rtype", metavar="[TYPE]", required=False)
@pass_context
def dns_remove(context: Context, name: str, rtype: str | None) -> None:
    """Remove NAME's records (of TYPE only, when given); NAME then answers NXDOMAIN."""
    removed = remove_records(context.workspace, name, rtype)
    click.echo(f"removed {removed['removed']} record(s) of {removed['name']}")


@dns.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
@pass_context
def dns_list(context: Context, as_json: bool) -> None:
    """The lab DNS's records."""
    found = list_records(context.workspace)
    if as_json:
        emit_json(found)
    else:
        click.echo(table([(r["name"], r["type"], r["value"]) for r in found], ["NAME", "TYPE", "VALUE"]))
