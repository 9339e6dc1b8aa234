"""``ruche trash list``: what deleted instances left in each application server's trash, and when it is due.

One SSH command per server (``trash.LIST_SCRIPT``), servers in parallel; each entry's due date follows
its association's offer as ruche.toml defines it now (``trash.due_date``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from orchestrator.actions.common import Progress, no_progress, opened
from orchestrator.config import Offer
from orchestrator.errors import NotFound
from orchestrator.remote import SshTarget, for_each_server
from orchestrator.state.associations import list_associations
from orchestrator.state.models import Server, utc_now
from orchestrator.state.servers import list_servers
from orchestrator.trash import TRASH_DIR, due_date, parse_entry_name, read_trash


def application_servers(session: Session, only: str | None) -> list[Server]:
    """Every application server, or ``only``; raises NotFound for an unknown ``only``."""
    servers = [s for s in list_servers(session) if s.role == "apps" and (only is None or s.name == only)]
    if only is not None and not servers:
        raise NotFound(f"no application server named {only!r} (see `ruche server list`)")
    return servers


def describe_entry(server: str, name: str, size: int | None, associations: dict[str, tuple[str | None, datetime]],
                   offers: dict[str, Offer], now: datetime) -> dict:  # fmt: skip
    """One trash entry as listed: its instance, association, deletion time, size, due date and rule; an
    unrecognised name has ``recognised`` false, no due date and is never erased."""
    entry = {"server": server, "entry": name, "path": f"{TRASH_DIR}/{name}", "bytes": size}
    parsed = parse_entry_name(name)
    if parsed is None:
        return {**entry, "recognised": False, "address": None, "association": None, "deleted_at": None,
                "offer": None, "retention_days": None, "due_at": None, "due": False,
                "rule": "not a name ruche gives (TIMESTAMP-ASSOCIATION--NAME): never erased by ruche"}  # fmt: skip
    known = associations.get(parsed.association)
    due = due_date(parsed, known, offers)
    return {**entry, "recognised": True, "address": parsed.address, "association": parsed.association,
            "deleted_at": parsed.deleted_at.isoformat(timespec="seconds"),
            "offer": known[0] if known is not None else None, "retention_days": due.retention_days,
            "due_at": due.at.isoformat(timespec="seconds") if due.at is not None else None,
            "due": due.at is not None and due.at <= now, "rule": due.rule}  # fmt: skip


def survey(workspace_path: Path | None, *, server: str | None = None, parallel: int = 16,
           progress: Progress = no_progress) -> tuple[dict, dict[str, SshTarget]]:  # fmt: skip
    """Read the trash of every application server (or ``server``) in parallel; give ``{"entries": [...],
    "errors": {server: message}, "servers": [names], "checked_at"}``, entries sorted by server and name, and
    the servers' SSH targets by name. Raises NotFound for an unknown ``server``; a server that cannot be read
    is in ``errors``."""
    with opened(workspace_path) as (workspace, store), store.session() as session:
        targets = {s.name: SshTarget.of(s) for s in application_servers(session, server)}
        associations = {a.slug: (a.offer, a.created_at) for a in list_associations(session)}
        offers = dict(workspace.config.offers)
    progress(f"reading the trash of {len(targets)} server(s)")
    answers = for_each_server(targets.values(), read_trash, parallel=parallel)
    now = utc_now()
    entries, errors = [], {}
    for name in targets:
        answer = answers[name]
        if isinstance(answer, Exception):
            errors[name] = str(answer)
            continue
        entries += [describe_entry(name, entry, size, associations, offers, now) for entry, size in sorted(answer)]
    result = {"entries": entries, "errors": errors, "servers": list(targets),
              "checked_at": now.isoformat(timespec="seconds")}  # fmt: skip
    return result, targets


def list_trash(workspace_path: Path | None, *, server: str | None = None, progress: Progress = no_progress) -> dict:
    """``ruche trash list``: each entry of every application server's trash (or ``server``'s) with its instance,
    association, deletion time, size, due date and the rule that gives it; see ``survey``."""
    return survey(workspace_path, server=server, progress=progress)[0]
