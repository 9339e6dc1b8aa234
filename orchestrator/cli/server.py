"""``ruche server add|set|list|show|drain|undrain|remove``."""

from __future__ import annotations

import click

from orchestrator.actions.server_add import register_server
from orchestrator.actions.server_drain import set_draining
from orchestrator.actions.server_list import server as show_server
from orchestrator.actions.server_list import servers as list_servers
from orchestrator.actions.server_remove import unregister_server
from orchestrator.actions.server_set import set_server
from orchestrator.actions.server_trust import trust_server
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import emit_json, table
from orchestrator.units import format_mib


@click.group()
def server() -> None:
    """The collective's servers (lab servers are registered by `ruche lab up`)."""


def _describe(entry: dict) -> str:
    labels = ",".join(f"{k}={v}" for k, v in entry["labels"].items()) or "-"
    lines = [f"{key}: {value}" for key, value in entry.items() if key != "labels"]
    return "\n".join(lines + [f"labels: {labels}"])


@server.command("add")
@click.argument("name")
@click.option("--address", required=True, help="IP address or DNS name reachable over SSH.")
@click.option("--ssh-user", default="root", show_default=True)
@click.option("--ssh-port", default=22, show_default=True, type=int)
@click.option("--ssh-key", help="Private key file (default: the SSH agent and ~/.ssh).")
@click.option("--cpu", default=2, show_default=True, type=int, help="CPU cores offered to instances.")
@click.option("--memory", default="4G", show_default=True, help="Memory offered to instances (e.g. 8G).")
@click.option("--disk", default="50G", show_default=True, help="Disk offered to instance volumes (e.g. 500G).")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="A placement label; repeatable.")
@click.option("--role", type=click.Choice(["apps", "backup"]), default="apps", show_default=True)
@click.option("--known-hosts", help="A known_hosts file holding its host key (else it is read from the server).")
@click.option("--no-connect", is_flag=True, help="Do not contact it: no host key recorded (`server trust` later).")
@click.option("--yes", "-y", is_flag=True, help="Trust the host key it offers without asking.")
@click.option("--json", "as_json", is_flag=True, help="Print the new entry as JSON.")
@pass_context
def add(context: Context, as_json: bool, no_connect: bool, yes: bool, **options) -> None:
    """Register server NAME.

    Its SSH host key is read from it now: check the fingerprint shown against the server's own
    (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on its console) before accepting it. It is kept
    in WORKSPACE/known_hosts/NAME, and every connection (Ansible, doctor, backups) verifies it.
    Then `ruche doctor --server NAME` checks what `ruche apply` needs there."""
    if options["known_hosts"] and no_connect:
        raise click.UsageError("--known-hosts and --no-connect exclude each other")
    entry = register_server(
        context.workspace, connect=not no_connect, confirm_host_key=_confirm_host_key(options["address"], yes),
        **options,
    )  # fmt: skip
    if as_json:
        emit_json(entry)
        return
    click.echo(f"server {entry['name']} registered ({entry['address']})")
    if no_connect:
        click.echo(f"no host key recorded: `ruche server trust {entry['name']}` once it answers", err=True)


def _confirm_host_key(address: str, yes: bool):
    def confirm(key_type: str, fingerprint: str) -> bool:
        click.echo(f"{address} offers the SSH host key {key_type} {fingerprint}", err=True)
        return yes or click.confirm("Is it the server's (compare on its console), and trusted?", err=True, abort=True)

    return confirm


@server.command()
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Trust the host key it offers without asking.")
@click.option("--json", "as_json", is_flag=True, help="Print {server, fingerprint, known_hosts} as JSON.")
@pass_context
def trust(context: Context, name: str, yes: bool, as_json: bool) -> None:
    """Read server NAME's SSH host key, show its fingerprint and record it once accepted.

    For a server added with --no-connect, or whose key changed (reinstalled, new address): ruche
    refuses to connect to a server whose key is not the recorded one."""
    entry = show_server(context.workspace, name)  # NotFound before connecting
    result = trust_server(context.workspace, name, _confirm_host_key(entry["address"], yes))
    if as_json:
        emit_json(result)
    else:
        click.echo(f"server {name}: host key {result['fingerprint']} recorded in {result['known_hosts']}")


@server.command("set")
@click.argument("name")
@click.option("--address", help="New IP address or DNS name reachable over SSH.")
@click.option("--ssh-user", help="New SSH user (root: the playbooks and server tools run as it, without sudo).")
@click.option("--ssh-port", type=int, help="New SSH port.")
@click.option("--ssh-key", help="New private key file (checked as `server add` checks it).")
@click.option("--cpu", type=int, help="CPU cores offered to instances.")
@click.option("--memory", help="Memory offered to instances (e.g. 8G).")
@click.option("--disk", help="Disk offered to instance volumes (e.g. 500G).")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Set a placement label; repeatable.")
@click.option("--unlabel", "unlabels", multiple=True, metavar="KEY", help="Remove a placement label; repeatable.")
@click.option("--force", is_flag=True, help="Lower capacity below what its instances hold (recorded).")
@click.option("--dry-run", is_flag=True, help="Say what would change (before -> after); change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print {server, before, after, changed, ...} as JSON.")
@pass_context
def set_(context: Context, name: str, as_json: bool, **options) -> None:
    """Change server NAME: address, SSH settings, capacity, labels (lab servers: `ruche lab up`).

    Lowering --cpu, --memory or --disk below what its instances hold (as placement counts it) is
    refused unless --force. The change is recorded in the audit trail (`ruche events`); the
    inventory follows at the next `ruche apply` or `ruche inventory export`.
    """
    result = set_server(context.workspace, name, **options)
    if as_json:
        emit_json(result)
        return
    if not result["changed"]:
        click.echo(f"server {name}: nothing changed (the values given are its current ones)")
        return
    click.echo(f"server {name}{' would change' if result['dry_run'] else ' changed'}:")
    for field in result["changed"]:
        click.echo(f"  {field}: {_value(result['before'][field])} -> {_value(result['after'][field])}")
    for over in result["over_capacity"]:
        click.echo(f"  over capacity, {'would be ' if result['dry_run'] else ''}recorded: {over['text']}")
    if result["dry_run"]:
        click.echo("dry run: nothing changed")
    elif result["connection_changed"]:
        click.echo("the inventory follows at the next `ruche apply` or `ruche inventory export`")
        after = result["after"]
        if {"address", "ssh_port"} & set(result["changed"]):
            click.echo(f"host keys are verified: record {after['address']}'s with `ruche server trust {name}`")


def _value(value) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "-"
    return "-" if value is None else str(value)


@server.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def list_(context: Context, as_json: bool) -> None:
    """List the registered servers."""
    entries = list_servers(context.workspace)
    if as_json:
        emit_json(entries)
        return
    rows = [
        (e["name"], e["address"], e["role"], e["cpu"], format_mib(e["memory_mb"]), f"{e['disk_gb']}G",
         "draining" if e["draining"] else "active", e["origin"])
        for e in entries
    ]  # fmt: skip
    click.echo(table(rows, ["NAME", "ADDRESS", "ROLE", "CPU", "MEMORY", "DISK", "STATE", "ORIGIN"]))


@server.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def show(context: Context, name: str, as_json: bool) -> None:
    """Show server NAME."""
    entry = show_server(context.workspace, name)
    emit_json(entry) if as_json else click.echo(_describe(entry))


@server.command()
@click.argument("name")
@pass_context
def drain(context: Context, name: str) -> None:
    """Place no new instance on server NAME."""
    set_draining(context.workspace, name, True)
    click.echo(f"server {name} is draining: no new instance goes there")


@server.command()
@click.argument("name")
@pass_context
def undrain(context: Context, name: str) -> None:
    """Let placement use server NAME again."""
    set_draining(context.workspace, name, False)
    click.echo(f"server {name} takes new instances again")


@server.command()
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_context
def remove(context: Context, name: str, yes: bool) -> None:
    """Unregister server NAME (nothing on the server itself is touched)."""
    show_server(context.workspace, name)  # NotFound before asking
    if not yes:
        click.confirm(f"Unregister server {name}?", abort=True)
    unregister_server(context.workspace, name)
    click.echo(f"server {name} unregistered")
