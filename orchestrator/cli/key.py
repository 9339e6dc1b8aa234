"""``ruche key show|create``."""

from __future__ import annotations

import click

from orchestrator.actions import key as actions
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import emit_json


def _print(view: dict) -> None:
    click.echo(view["public_key"])
    click.echo(f"key id {view['key_id']} ({view['file']}); a receiving collective gives this line to "
               "`ruche association import --trust`", err=True)  # fmt: skip


@click.group()
def key() -> None:
    """The collective's key: Ed25519 signs its association bundles, X25519 receives secrets sealed for it (--to).

    \b
    The private part is kept vault-encrypted in the workspace (signing/key.vault), the public part beside it
    (signing/key.pub). Give the public key to the collectives that will import your bundles, and check its key id
    with them over another channel (phone, in person).
    """


@key.command()
@click.option("--json", "as_json", is_flag=True, help='Print {"public_key", "key_id", "file"} as JSON.')
@pass_context
def show(context: Context, as_json: bool) -> None:
    """Print the public key (one line, for `ruche association import --trust` elsewhere)."""
    view = actions.show(context.workspace)
    if as_json:
        emit_json(view)
    else:
        _print(view)


@key.command()
@click.option("--json", "as_json", is_flag=True, help="Print the new public key as JSON.")
@pass_context
def create(context: Context, as_json: bool) -> None:
    """Make the signing key of a workspace created without one (`ruche init` makes it for new workspaces)."""
    view = actions.create(context.workspace)
    if as_json:
        emit_json(view)
    else:
        _print(view)
