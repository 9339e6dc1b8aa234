"""``ruche mail show|set|set-password|unset``."""

from __future__ import annotations

import sys

import click

from orchestrator.actions import mail as actions
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import emit_json


def _print(view: dict, as_json: bool) -> None:
    if as_json:
        emit_json(view)
        return
    if not view["configured"]:
        click.echo("no mail relay: services are given no mail settings (`ruche mail set --help`)")
    else:
        login = (
            f"{view['username']} (password {'set' if view['password_set'] else 'not set'})"
            if view["username"]
            else "none"
        )
        click.echo(f"relay {view['host']}:{view['port']} ({view['security']}), senders NAME-ASSOCIATION@{view['sender_domain']}, "
                   f"login {login}")  # fmt: skip
    if view.get("from_lab"):
        click.echo(f"this is the lab's relay (its SMTP sink), from {view['source']}: ruche.toml's [mail] applies "
                   "again after `ruche lab down`")  # fmt: skip
    elif view.get("lab_relay_applies"):
        click.echo(f"saved in ruche.toml; while the lab is up its own relay ({view['lab_relay_applies']}) applies "
                   "instead, until `ruche lab down`")  # fmt: skip


@click.group()
def mail() -> None:
    """The collective's outgoing mail relay, which every instance sends through.

    \b
    Kept in ruche.toml under [mail]; the password only as vault ciphertext.
    While the lab is up, its own relay (an SMTP sink, in the lab's settings) applies instead.
    Catalogue entries read it as ${mail.host}, ${mail.port}, ${mail.from}, ${mail.password}, ...
    A change reaches the servers at the next `ruche apply`.
    """


@mail.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def show(context: Context, as_json: bool) -> None:
    """Show the relay in use (never the password) and whether it is the lab's."""
    _print(actions.show(context.workspace), as_json)


@mail.command("set")
@click.option("--host", help="SMTP relay's host name or address.")
@click.option("--port", type=int, help="SMTP port (587 STARTTLS, 465 TLS, 25).")
@click.option("--security", type=click.Choice(["starttls", "tls", "none"]), help="How the connection is protected.")
@click.option("--sender-domain", help="Instances send as NAME-ASSOCIATION@DOMAIN.")
@click.option("--username", help="SMTP user name (then `ruche mail set-password`).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def set_(context: Context, host, port, security, sender_domain, username, as_json: bool) -> None:
    """Set (or change) the relay; fields not given keep their value."""
    _print(actions.configure(context.workspace, host=host, port=port, security=security,
                             sender_domain=sender_domain, username=username), as_json)  # fmt: skip


@mail.command("set-password")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the password from standard input instead of a prompt.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def set_password(context: Context, from_stdin: bool, as_json: bool) -> None:
    """Keep the relay's SMTP password, encrypted with the workspace's vault password."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("SMTP password", hide_input=True, confirmation_prompt=True, err=True)
    _print(actions.set_password(context.workspace, password), as_json)


@mail.command()
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_context
def unset(context: Context, yes: bool) -> None:
    """Remove the relay: services get no mail settings at the next apply."""
    if not yes:
        click.confirm(
            "Instances will no longer be able to send mail after the next apply. Continue?", abort=True, err=True
        )
    _print(actions.unset(context.workspace), False)
