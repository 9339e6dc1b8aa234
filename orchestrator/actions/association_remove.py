"""``ruche association remove``: take an association whose instances are all deleted out of the registry.

What goes: the association, its instances' records, its requests, invites and browser sessions, and the
history that names its instances (health checks, backups, restores, verifications, upgrades, runs of one
of its instances), so that it leaves no trace in listings nor in the transparency report; each row deleted
but health checks (measurements) is an event of the audit trail. Its restic repository is erased when it
lives on the managed backup server (``[backup] managed_server``), unless kept; elsewhere ruche cannot reach
it, and the result says where it was left.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from orchestrator.actions.common import Progress, no_progress, opened
from orchestrator.backups import repository_of, sftp_target
from orchestrator.config import BackupSettings
from orchestrator.errors import InvalidInput
from orchestrator.state.associations import (
    association_as_dict,
    association_belongings,
    delete_association,
    get_association,
    is_slug,
    removable_instances,
)
from orchestrator.state.events import record_event
from orchestrator.state.models import Association
from orchestrator.state.servers import get_server

if TYPE_CHECKING:  # Fabric loads only when a repository is erased
    from orchestrator.remote import SshTarget

LOST_PASSWORD = (
    "its password goes with the association (ruche keeps it nowhere else; servers that ran its instances may "
    "still hold it in /etc/ruche/backup/{slug}.password)"
)


def remove_association(
    workspace_path: Path | None,
    slug: str,
    *,
    keep_backups: bool = False,
    dry_run: bool = False,
    progress: Progress = no_progress,
) -> dict:
    """Remove association ``slug``, whose instances must all be deleted, and erase its backups.

    Its repository on the managed backup server is erased first (over SSH), unless ``keep_backups``;
    then, in one transaction, the rows that go with it, its instances and itself are deleted and the event
    ``association.removed`` recorded. With ``dry_run``, only give what would be done. Gives ``{"association",
    "instances", "trash", "removed", "backups", "would", "dry_run"}``: ``trash``, the instances deleted
    without --purge (their data may still be in their server's trash); ``backups``, the repository and
    whether it was erased, else why it was left.
    Raises NotFound, or Conflict (exit 5) while one of its instances is not deleted or a run of one is
    queued, OperationFailed when the backup server fails; the state is unchanged on any error.
    """
    with opened(workspace_path) as (workspace, store), store.session() as session:
        association = get_association(session, slug, lock=True)
        instances = removable_instances(session, association)
        addresses = [f"{slug}/{i.name}" for i in instances]
        trash = [f"{slug}/{i.name}" for i in instances if i.desired_state == "absent"]
        backups, erase = _backups(workspace.config.backup, association, keep=keep_backups, session=session)
        result = {
            "association": association_as_dict(association), "instances": addresses, "trash": trash,
            "removed": association_belongings(session, association) if dry_run else None, "backups": backups,
            "would": _description(slug, addresses, trash, backups, erase is not None), "dry_run": dry_run,
        }  # fmt: skip
        if dry_run:
            return result
        # the rows first (their checks run again and the write lock is taken), the repository next, the commit
        # last: a refusal or a database error erases nothing, a failed erase rolls the rows back
        result["removed"] = delete_association(session, association)
        backups["erased"] = erase is not None
        record_event(session, kind="association.removed", subject=slug, association=slug,
                     detail={"instances": addresses, "backups_erased": backups["erased"],
                             "backup_repository": backups["repository"], "removed": result["removed"],
                             "trash": result["trash"]})  # fmt: skip
        session.flush()
        if erase is not None:
            target, directory = erase
            progress(f"{slug}: erasing {directory} on {target.name}")
            erase_repository(target, directory)
        return result


def _backups(
    settings: BackupSettings, association: Association, *, keep: bool, session: Session
) -> tuple[dict, tuple[SshTarget, str] | None]:
    """Give what becomes of ``association``'s repository, and the (backup server, directory) to erase, if any."""
    if settings.repository is None:
        return {"repository": None, "server": None, "directory": None, "erased": False,
                "left": "no backup repository is configured"}, None  # fmt: skip
    if not is_slug(association.slug):  # never a path built from anything else
        raise InvalidInput(f"{association.slug!r} is not a valid association slug")
    repository = repository_of(settings, association.slug)
    entry = {"repository": repository, "server": None, "directory": None, "erased": False, "left": None}
    account = sftp_target(settings)
    if account is None or settings.managed_server is None:
        entry["left"] = (f"left at {repository}: ruche erases repositories on its managed backup server only; "
                         + LOST_PASSWORD.format(slug=association.slug))  # fmt: skip
        return entry, None
    if keep:
        entry["left"] = f"kept (--keep-backups) at {repository}; " + LOST_PASSWORD.format(slug=association.slug)
        return entry, None
    if association.backup_password is None:
        entry["left"] = "none was made: it never had a backup password"
        return entry, None
    from orchestrator.remote import SshTarget

    entry["server"], entry["directory"] = settings.managed_server, f"{account.path}/{association.slug}"
    return entry, (SshTarget.of(get_server(session, settings.managed_server)), entry["directory"])


def erase_repository(target: SshTarget, directory: str) -> None:
    """Erase ``directory``, one association's restic repository, on the backup server ``target`` (done when it
    is absent already). Raises OperationFailed (or TimedOut) when the server cannot do it."""
    from orchestrator.remote import run_command

    run_command(target, ["rm", "-rf", "--one-file-system", "--", directory], timeout=3600)


def _description(slug: str, addresses: list[str], trash: list[str], backups: dict, erases: bool) -> str:
    text = f"remove association {slug} from the registry"
    if addresses:
        text += (
            f", with the records of its {len(addresses)} deleted instance(s) ({', '.join(addresses)}) and their history"
        )
    if erases:
        text += (f", and ERASE every snapshot of its backups ({backups['directory']} on backup server "
                 f"{backups['server']}), final backups of deleted instances included")  # fmt: skip
    else:
        text += f"; backups: {backups['left']}"
    if trash:
        text += f"; {', '.join(trash)} deleted without --purge: data may remain in their server's trash"
    return text
