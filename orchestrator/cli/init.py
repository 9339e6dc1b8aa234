"""``ruche init``."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.actions.init import init_workspace
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import emit_json


@click.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--collective", default="Collectif exemple", show_default=True, help="The collective's name.")
@click.option("--domain", default="ruche.test", show_default=True, help="Base domain of instance addresses.")
@click.option("--state-url", help="SQLAlchemy URL of the state database (default: SQLite file in the workspace).")
@click.option(
    "--base-url",
    help="Public address of `ruche serve`, written as [web] base_url: invite links name it "
    "(default: https://ruche.DOMAIN).",
)
@click.option(
    "--vault-password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Existing file holding the vault password (default: a new one under ~/.config/ruche/vault/).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def init(
    context: Context, directory: Path | None, collective: str, domain: str, state_url: str | None,
    base_url: str | None, vault_password_file: Path | None, as_json: bool,
) -> None:  # fmt: skip
    """Create a workspace in DIRECTORY (default: --workspace, else the current directory)."""
    path = directory or context.workspace or Path.cwd()
    result = init_workspace(
        path, collective=collective, base_domain=domain, state_url=state_url, base_url=base_url,
        vault_password_file=vault_password_file,
    )  # fmt: skip
    if as_json:
        emit_json(result)
    else:
        click.echo(f"Workspace created in {result['workspace']}")
        click.echo(f"Vault password: {result['vault_password']} (keep a copy: without it the secrets are lost)")
        click.echo(
            f"Signing key: {result['key_id']} (`ruche key show` prints it for collectives importing your bundles)"
        )
