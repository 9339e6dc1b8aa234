"""``ruche association add|list|show|remove|...``."""

from __future__ import annotations

import click

from orchestrator.actions.association_add import register_association
from orchestrator.actions.association_applications import accept as accept_application
from orchestrator.actions.association_applications import applications as list_applications
from orchestrator.actions.association_applications import decline as decline_application
from orchestrator.actions.association_invite import invite as make_invite
from orchestrator.actions.association_invite import invites as list_invites
from orchestrator.actions.association_invite import revoke as revoke_invite
from orchestrator.actions.association_list import association as show_association
from orchestrator.actions.association_list import associations as list_associations
from orchestrator.actions.association_managers import manager as set_manager
from orchestrator.actions.association_managers import new_link as renew_link
from orchestrator.actions.association_set_offer import set_alerts, set_listing, set_offer
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import ProgressPrinter, emit_json, table


@click.group()
def association() -> None:
    """The associations the collective hosts services for."""


@association.command("add")
@click.argument("slug")
@click.option("--name", required=True, help="Full name of the association.")
@click.option("--email", required=True, help="Contact e-mail address.")
@click.option("--offer", help="The quota package it signed up for (default: ruche.toml's default_offer, if set).")
@click.option(
    "--no-offer",
    is_flag=True,
    help="On no offer even when default_offer is set: no limit (ruche audit "
    "warns); `ruche catalog check` registers its throwaway associations so.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the new entry as JSON.")
@pass_context
def add(context: Context, slug: str, name: str, email: str, offer: str | None, no_offer: bool, as_json: bool) -> None:
    """Register association SLUG (a-z, 0-9, inner dashes; used in addresses and paths)."""
    if no_offer and offer is not None:
        raise click.UsageError("give --offer or --no-offer, not both")
    entry = register_association(context.workspace, slug=slug, name=name, email=email, offer=offer, no_offer=no_offer)
    emit_json(entry) if as_json else click.echo(f"association {entry['slug']} registered")


@association.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def list_(context: Context, as_json: bool) -> None:
    """List the associations."""
    entries = list_associations(context.workspace)
    if as_json:
        emit_json(entries)
    else:
        click.echo(
            table(
                [(e["slug"], e["name"], e["email"], e["offer"] or "-") for e in entries],
                ["SLUG", "NAME", "EMAIL", "OFFER"],
            )
        )


@association.command()
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def show(context: Context, slug: str, as_json: bool) -> None:
    """Show association SLUG and its instances."""
    entry = show_association(context.workspace, slug)
    if as_json:
        emit_json(entry)
        return
    click.echo(f"{entry['slug']}: {entry['name']} <{entry['email']}>, offer {entry['offer'] or '-'}")
    for instance in entry["instances"]:
        click.echo(
            f"  {instance['address']}  {instance['service']} ({instance['size']}) on {instance['server']}: {instance['state']}"
        )


@association.command("set-offer")
@click.argument("slug")
@click.argument("offer")
@click.option(
    "--over-quota", is_flag=True, help="Accept even if its instances already take more than OFFER allows (recorded)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the association as JSON.")
@pass_context
def set_offer_(context: Context, slug: str, offer: str, over_quota: bool, as_json: bool) -> None:
    """Move association SLUG to OFFER (recorded in the audit trail)."""
    entry = set_offer(context.workspace, slug, offer, over_quota=over_quota)
    emit_json(entry) if as_json else click.echo(f"association {entry['slug']} is on offer {entry['offer']}")


@association.command("listing")
@click.argument("slug")
@click.argument("choice", type=click.Choice(["agreed", "withdrawn"]))
@click.option("--json", "as_json", is_flag=True, help="Print the association as JSON.")
@pass_context
def listing_(context: Context, slug: str, choice: str, as_json: bool) -> None:
    """Record whether SLUG agreed to be named in the collective's transparency report (`ruche report`);
    associations that did not are only counted."""
    entry = set_listing(context.workspace, slug, listed=choice == "agreed")
    if as_json:
        emit_json(entry)
    else:
        click.echo(f"association {slug} is {'named' if entry['listed'] else 'only counted'} in the transparency report")


@association.command("alerts")
@click.argument("slug")
@click.argument("choice", type=click.Choice(["on", "off"]), required=False)
@click.option("--language", type=click.Choice(["fr", "en"]), help="The language its notices are written in.")
@click.option("--json", "as_json", is_flag=True, help="Print the association as JSON.")
@pass_context
def alerts_(context: Context, slug: str, choice: str | None, language: str | None, as_json: bool) -> None:
    """Tell SLUG (on) or not (off, the default) by mail, at its contact address, of the alerts on its own
    instances: down, backups late or unchecked, over its offer, a certificate to renew; never of another
    association's, nor of the servers'. Recorded in the audit trail."""
    entry = set_alerts(context.workspace, slug, opt_in=None if choice is None else choice == "on", language=language)
    if as_json:
        emit_json(entry)
        return
    told = "told" if entry["alerts_opt_in"] else "not told"
    click.echo(f"association {slug} is {told} of its alerts (at {entry['email']}, in {entry['language']})")
    if entry.get("warning"):
        click.echo(f"warning: {entry['warning']}", err=True)


@association.command("remove")
@click.argument("slug")
@click.option("--keep-backups", is_flag=True, help="Keep its restic repository on the managed backup server.")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; change nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@pass_context
def remove_(context: Context, slug: str, keep_backups: bool, dry_run: bool, yes: bool, as_json: bool,
            quiet: bool) -> None:  # fmt: skip
    """Remove association SLUG from the registry once all its instances are deleted.

    Its instances' records, requests, invites, sign-in sessions and history (health checks, backups,
    upgrades, runs) go with it, so it leaves no trace in listings nor in the transparency report; the audit
    trail keeps each row but health checks as an event (`ruche events --association SLUG`). Its backup
    repository on the managed backup server is erased, final backups included, unless --keep-backups; a
    repository elsewhere is left where it is (the result says where).

    Refused (exit 5), nothing changed, while one of its instances is not deleted
    (`ruche instance delete ADDRESS` first) or a run of one is queued.
    """
    from orchestrator.actions.association_remove import remove_association

    if not dry_run and not yes:
        preview = remove_association(context.workspace, slug, keep_backups=keep_backups, dry_run=True)
        click.confirm(f"This will {preview['would']}. Continue?", abort=True, err=True)
    result = remove_association(context.workspace, slug, keep_backups=keep_backups, dry_run=dry_run,
                                progress=ProgressPrinter(not quiet and not as_json))  # fmt: skip
    if as_json:
        emit_json(result)
        return
    if dry_run:
        click.echo(f"would {result['would']}")
        return
    backups = result["backups"]
    done = f"erased {backups['directory']} on {backups['server']}" if backups["erased"] else backups["left"]
    click.echo(f"association {slug} removed with {len(result['instances'])} deleted instance(s); backups: {done}")
    for address in result["trash"]:
        click.echo(f"{address} was deleted without --purge: its data may still be in its server's trash "
                   "(/srv/ruche/trash); it is now due: `ruche trash empty` erases it", err=True)  # fmt: skip


@association.command("invite")
@click.argument("slug")
@click.option("--email", help="The member's address (recorded; ruche does not send mail).")
@click.option("--days", type=click.IntRange(1, 365), help="Validity (default: [web] invite_days in ruche.toml).")
@click.option("--name", "member_name", default="", help="The member's name (the audit trail shows it).")
@click.option("--manager", is_flag=True, help="Make the member SLUG's manager (see `association manager`).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def invite_(context: Context, slug: str, email: str | None, days: int | None, member_name: str, manager: bool,
            as_json: bool) -> None:  # fmt: skip
    """Make a personal sign-in link for a member of SLUG (shown once; only its hash is kept)."""
    entry = make_invite(context.workspace, slug, email=email, days=days, name=member_name, manager=manager)
    if as_json:
        emit_json(entry)
    else:
        click.echo(f"invite {entry['id']} for {slug}, valid until {entry['expires_at']}:")
        click.echo(entry["link"])


@association.command("invites")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def invites_(context: Context, slug: str, as_json: bool) -> None:
    """List SLUG's invites (never their links)."""
    entries = list_invites(context.workspace, slug)
    if as_json:
        emit_json(entries)
        return
    rows = [(e["id"], e["name"] or "-", e["email"] or "-", "manager" if e["manager"] else "member", e["state"],
             e["expires_at"], e["last_used_at"] or "never") for e in entries]  # fmt: skip
    click.echo(table(rows, ["ID", "NAME", "EMAIL", "ROLE", "STATE", "EXPIRES", "LAST USED"]))


@association.command("manager")
@click.argument("invite_id", type=int)
@click.option("--remove", is_flag=True, help="Make the manager a plain member again.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def manager_(context: Context, invite_id: int, remove: bool, as_json: bool) -> None:
    """Make the member of invite INVITE_ID their association's manager: in the web space they invite and remove
    its members, give a new link to one who lost theirs, read its audit trail, suspend, resume and delete its
    services."""
    entry = set_manager(context.workspace, invite_id, manager=not remove)
    role = "manager" if entry["manager"] else "a plain member"
    emit_json(entry) if as_json else click.echo(f"invite {entry['id']} ({entry['association']}) is {role}")


@association.command("new-link")
@click.argument("invite_id", type=int)
@click.option("--days", type=click.IntRange(1, 365), help="Validity (default: [web] invite_days in ruche.toml).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def new_link_(context: Context, invite_id: int, days: int | None, as_json: bool) -> None:
    """Give the member of invite INVITE_ID a new sign-in link (a lost or used one): the old link and the
    browsers signed in with it stop working."""
    entry = renew_link(context.workspace, invite_id, days=days)
    if as_json:
        emit_json(entry)
    else:
        click.echo(f"invite {entry['id']} for {entry['association']}, valid until {entry['expires_at']}:")
        click.echo(entry["link"])


@association.command("revoke-invite")
@click.argument("invite_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def revoke_invite_(context: Context, invite_id: int, as_json: bool) -> None:
    """Revoke invite INVITE_ID; browsers signed in with it are signed out."""
    entry = revoke_invite(context.workspace, invite_id)
    emit_json(entry) if as_json else click.echo(f"invite {entry['id']} revoked")


@association.command("applications")
@click.option(
    "--state", type=click.Choice(["pending", "accepted", "declined"]), help="Only applications in this state."
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def applications_(context: Context, state: str | None, as_json: bool) -> None:
    """List applications to join sent from the public page, newest first."""
    entries = list_applications(context.workspace, state=state)
    if as_json:
        emit_json(entries)
        return
    rows = [
        (e["id"], e["slug"], e["name"], e["email"], e["state"], e["created_at"], e["message"][:40]) for e in entries
    ]
    click.echo(table(rows, ["ID", "SLUG", "NAME", "EMAIL", "STATE", "SENT", "MESSAGE"]))


@association.command("accept")
@click.argument("application_id", type=int)
@click.option("--offer", help="The offer it starts on (default: ruche.toml's default_offer, if set).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def accept_(context: Context, application_id: int, offer: str | None, as_json: bool) -> None:
    """Accept APPLICATION_ID: register the association (then `association invite` its members)."""
    entry = accept_application(context.workspace, application_id, offer=offer)
    emit_json(entry) if as_json else click.echo(f"association {entry['slug']} registered")


@association.command("decline")
@click.argument("application_id", type=int)
@click.option("--reason", required=True, help="Why (recorded).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def decline_(context: Context, application_id: int, reason: str, as_json: bool) -> None:
    """Decline APPLICATION_ID with a reason."""
    entry = decline_application(context.workspace, application_id, reason=reason)
    emit_json(entry) if as_json else click.echo(f"application {entry['id']} declined")


from orchestrator.cli.association_bundle import export_, import_  # noqa: E402 - the bundle's commands, in their module

association.add_command(export_)
association.add_command(import_)
