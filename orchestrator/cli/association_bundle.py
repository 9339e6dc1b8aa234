"""``ruche association export|import``: an association's signed bundle, to leave for another collective."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import ProgressPrinter, emit_json


@click.command("export")
@click.argument("slug")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The bundle to write (e.g. amap.ruche-bundle); refused if it exists.")  # fmt: skip
@click.option("--to", "to", metavar="KEY",
              help="The receiving collective's public key (its `ruche key show` line, or a file holding it): the "
                   "application secrets travel sealed for it. Without it they are left out (the receiver resets "
                   "the admins' passwords).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
@pass_context
def export_(context: Context, slug: str, output: Path, to: str | None, as_json: bool, quiet: bool) -> None:
    """Write SLUG's bundle: every instance's data (dumps, files), a manifest, signed with this collective's key.

    \b
    Each service is quiesced while its data is read (maintenance or read-only mode, as for a backup). The bundle
    is a .tar.gz another collective imports with `ruche association import` (after checking the signature with
    your public key, `ruche key show`), or reads by hand (docs/bundle-format.md).
    """
    from orchestrator.actions.association_export import export_bundle

    result = export_bundle(context.workspace, slug, output, to=to, progress=ProgressPrinter(not quiet and not as_json))
    if as_json:
        emit_json(result)
        return
    services = ", ".join(f"{i['name']} ({i['service']} {i['version']})" for i in result["instances"])
    click.echo(f"{result['output']}: {services}; {result['size']} bytes, sha256 {result['sha256']}, signed by key "
               f"{result['key_id']}; application secrets {result['secrets']}")  # fmt: skip


@click.command("import")
@click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--as", "as_slug", metavar="SLUG", help="Register it under another slug (its own is taken here).")
@click.option("--offer", help="The offer it goes on (default: the bundle's, if this collective has one of that "
                               "name, else ruche.toml's default_offer).")  # fmt: skip
@click.option("--trust", multiple=True, metavar="KEY",
              help="The sending collective's public key (its `ruche key show` line, or a file holding it); "
                   "repeatable. This collective's own key is always trusted.")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Check everything and say what would be made; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
@pass_context
def import_(context: Context, bundle: Path, as_slug: str | None, offer: str | None, trust: tuple[str, ...],
            dry_run: bool, as_json: bool, quiet: bool) -> None:  # fmt: skip
    """Take in the association of BUNDLE, exported by another collective (`ruche association export`).

    \b
    First checked whole: the signature (a --trust key), every file's checksum, each service and version in this
    catalogue, the slug, the offer's room, the servers' room, own domains not held here. Any problem: refused,
    each one named, nothing changed. Then the association is registered, its instances deployed, filled with the
    bundle's data, checked healthy and compared with what was exported; a failure removes what was made.
    Own domains are not attached: the association points them here, then `ruche domain add` each one.
    """
    from orchestrator.actions.association_import import import_bundle

    result = import_bundle(context.workspace, bundle, as_slug=as_slug, offer=offer, trust=trust, dry_run=dry_run,
                           progress=ProgressPrinter(not quiet and not as_json))  # fmt: skip
    if as_json:
        emit_json(result)
        return
    verb = "would import" if dry_run else "imported"
    click.echo(f"{verb} {result['association']} from {result['collective']} (signed by key {result['key_id']}), "
               f"offer {result['offer']}; application secrets {result['secrets']}")  # fmt: skip
    for name, entry in result["instances"].items():
        outcome = entry.get("result") or {}
        done = f": {outcome['files']} file(s), {outcome['tables']} table(s), {outcome['health']}" if outcome else ""
        click.echo(
            f"  {result['association']}/{name}: {entry['service']} {entry['version']} on {entry['server']}{done}"
        )
    for name, domains in result["own_domains"].items():
        click.echo(f"  {result['association']}/{name} answered on {', '.join(domains)}: once they point here, "
                   f"`ruche domain add {result['association']}/{name} DOMAIN` each")  # fmt: skip
