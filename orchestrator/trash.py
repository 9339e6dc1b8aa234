"""The servers' trash: what `instance delete` without --purge leaves, and when it is due for erasure.

The ruche_instance role moves a deleted instance's data to ``/srv/ruche/trash/STAMP-ID`` on its server
(STAMP: the UTC time of the deletion as ``%Y%m%dT%H%M%SZ``, ID: ``association--name``). An entry is due
for erasure ``trash_retention_days`` after its deletion, by its association's offer. An entry whose
association no longer exists (``ruche association remove``, or removed and registered again since the
deletion) or has no offer is due at once, so that a deletion request completes; an association whose offer
ruche.toml no longer defines keeps its entries (nothing is erased on a configuration mistake) until it does.

Names are parsed strictly: anything directly under the trash that is not exactly ``STAMP-ID`` is listed
as unrecognised and never erased. Servers are read and emptied with fixed scripts that receive the trash
directory and the entries' names as arguments (``sh -c SCRIPT sh ARGS``, each argument quoted by
``remote``), never interpolated into a command line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from orchestrator.config import Offer
from orchestrator.errors import NotFound
from orchestrator.state.associations import SLUG_MAX_LENGTH, list_associations
from orchestrator.state.models import Server, utc_now
from orchestrator.state.servers import list_servers

if TYPE_CHECKING:  # Fabric loads only when a server is reached
    from orchestrator.remote import SshTarget

TRASH_DIR = "/srv/ruche/trash"
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_SLUG = r"[a-z0-9]+(?:-[a-z0-9]+)*"
ENTRY_NAME = re.compile(rf"(?P<stamp>[0-9]{{8}}T[0-9]{{6}}Z)-(?P<association>{_SLUG})--(?P<name>{_SLUG})", re.ASCII)

# $1: the trash directory. One NUL-terminated "BYTES<TAB>PATH" record per entry directly under it (du counts
# each entry's own disk use, hard links counted in each, without crossing file systems nor following links).
LIST_SCRIPT = (
    'if [ -L "$1" ]; then echo "$1 is a symbolic link: refused" >&2; exit 1; fi; '
    '[ -d "$1" ] || exit 0; '
    'exec find "$1" -mindepth 1 -maxdepth 1 -exec du --null --summarize --count-links --one-file-system '
    "--block-size=1 -- {} +"
)
# $1: the trash directory, then the entries' names. One NUL-terminated record per name: "erased<TAB>NAME" or
# "failed<TAB>NAME<TAB>rm's message". rm does not follow symbolic links; a name is never a path (checked first).
ERASE_SCRIPT = (
    'trash=$1; shift; if [ -L "$trash" ] || [ ! -d "$trash" ]; then echo "$trash is not a directory" >&2; exit 1; fi; '
    'for name do if out=$(rm -rf --one-file-system -- "$trash/$name" 2>&1); '
    'then printf \'erased\\t%s\\0\' "$name"; else printf \'failed\\t%s\\t%s\\0\' "$name" "$out"; fi; done'
)


@dataclass(frozen=True)
class EntryName:
    """A trash entry's name, parsed."""

    name: str
    deleted_at: datetime
    association: str
    instance: str

    @property
    def address(self) -> str:
        return f"{self.association}/{self.instance}"


def parse_entry_name(name: str) -> EntryName | None:
    """Give ``name`` parsed when it is exactly ``STAMP-ASSOCIATION--NAME`` with a real UTC time and names ruche
    could have given; None otherwise (never erased)."""
    match = ENTRY_NAME.fullmatch(name)
    if match is None:
        return None
    if len(match["association"]) > SLUG_MAX_LENGTH or len(match["name"]) > SLUG_MAX_LENGTH:
        return None
    try:
        deleted_at = datetime.strptime(match["stamp"], STAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:  # e.g. a 13th month
        return None
    return EntryName(name, deleted_at, match["association"], match["name"])


@dataclass(frozen=True)
class Due:
    """When an entry is due for erasure (None: kept until ruche.toml changes) and by which rule."""

    at: datetime | None
    rule: str
    retention_days: int | None = None


def due_date(entry: EntryName, association: tuple[str | None, datetime] | None, offers: dict[str, Offer]) -> Due:
    """Give when ``entry`` is due: ``association`` is the (offer, created_at) of the association its name
    names, None when there is none."""
    if association is None:
        return Due(entry.deleted_at, f"association {entry.association} no longer exists: due at once")
    offer_name, created_at = association
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=UTC)
    if entry.deleted_at < created_at.replace(microsecond=0):
        return Due(entry.deleted_at, f"deleted before association {entry.association} was registered again: "
                                     "due at once")  # fmt: skip
    if offer_name is None:
        return Due(entry.deleted_at, f"association {entry.association} has no offer: due at once")
    offer = offers.get(offer_name)
    if offer is None:
        return Due(None, f"offer {offer_name} is not in ruche.toml: kept until it is")
    days = offer.trash_retention_days
    return Due(entry.deleted_at + timedelta(days=days), f"offer {offer_name}: {days} day(s)", days)


def parse_listing(output: str, trash: str = TRASH_DIR) -> list[tuple[str, int | None]]:
    """Give (name, bytes) of each entry in LIST_SCRIPT's output; a record that names no entry directly under
    ``trash`` is left out."""
    entries = []
    for record in output.split("\0"):
        size, tab, path = record.partition("\t")
        if not tab or not path.startswith(trash + "/"):
            continue
        name = path[len(trash) + 1 :]
        if not name or "/" in name:
            continue
        entries.append((name, int(size) if size.isdigit() else None))
    return entries


def parse_erasure(output: str) -> tuple[list[str], dict[str, str]]:
    """Give the names ERASE_SCRIPT erased and, by name, rm's message for those it could not."""
    erased: list[str] = []
    failed: dict[str, str] = {}
    for record in output.split("\0"):
        outcome, _, rest = record.partition("\t")
        if outcome == "erased":
            erased.append(rest)
        elif outcome == "failed":
            name, _, message = rest.partition("\t")
            failed[name] = message.strip()[-500:]
    return erased, failed


def read_trash(target: SshTarget, trash: str = TRASH_DIR) -> list[tuple[str, int | None]]:
    """Give (name, bytes) of every entry directly under ``trash`` on ``target`` (none when it has no trash yet).
    Raises OperationFailed (or TimedOut) when the server cannot be read."""
    from orchestrator.remote import run_command

    return parse_listing(run_command(target, ["sh", "-c", LIST_SCRIPT, "sh", trash], timeout=600), trash)


def erase_entries(target: SshTarget, names: list[str], trash: str = TRASH_DIR) -> tuple[list[str], dict[str, str]]:
    """Erase the entries ``names`` (each checked to be exactly ``STAMP-ID``) under ``trash`` on ``target``; give
    those erased and rm's message for each that was not. Raises ValueError for another name (nothing erased),
    OperationFailed (or TimedOut) when the server cannot be reached or its trash is not a directory."""
    from orchestrator.remote import run_command

    refused = [name for name in names if parse_entry_name(name) is None]
    if refused:
        raise ValueError(f"not trash entries: {refused!r}")
    if not names:
        return [], {}
    return parse_erasure(run_command(target, ["sh", "-c", ERASE_SCRIPT, "sh", trash, *names], timeout=3600))


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


def survey(session: Session, offers: dict[str, Offer], *, server: str | None = None, parallel: int = 16,
           progress: Callable[[str], None] = lambda _message: None) -> tuple[dict, dict[str, SshTarget]]:  # fmt: skip
    """Read the trash of every application server (or ``server``) in parallel; give ``{"entries": [...],
    "errors": {server: message}, "servers": [names], "checked_at"}``, entries sorted by server and name, and
    the servers' SSH targets by name. Raises NotFound for an unknown ``server``; a server that cannot be read
    is in ``errors``."""
    from orchestrator.remote import SshTarget, for_each_server

    targets = {s.name: SshTarget.of(s) for s in application_servers(session, server)}
    associations = {a.slug: (a.offer, a.created_at) for a in list_associations(session)}
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
