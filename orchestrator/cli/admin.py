"""``ruche admin add|list|remove``."""

from __future__ import annotations

import sys

import click

from orchestrator.actions.admin import add as add_admin
from orchestrator.actions.admin import admins as list_admins
from orchestrator.actions.admin import remove as remove_admin
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import emit_json, table


@click.group()
def admin() -> None:
    """Admins of the web app (they review requests at /admin)."""


@admin.command()
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (first line).")
@pass_context
def add(context: Context, name: str, password_stdin: bool) -> None:
    """Add admin NAME; asks for a password (12 characters at least), kept only as an Argon2id hash."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    entry = add_admin(context.workspace, name, password)
    click.echo(f"admin {entry['name']} added")


@admin.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def list_(context: Context, as_json: bool) -> None:
    """List the admins."""
    entries = list_admins(context.workspace)
    emit_json(entries) if as_json else click.echo(
        table([(e["name"], e["created_at"]) for e in entries], ["NAME", "SINCE"])
    )


@admin.command()
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_context
def remove(context: Context, name: str, yes: bool) -> None:
    """Remove admin NAME (their sessions end)."""
    if not yes:
        click.confirm(f"Remove admin {name}?", abort=True, err=True)
    remove_admin(context.workspace, name)
    click.echo(f"admin {name} removed")
