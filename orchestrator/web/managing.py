"""What the managers' and admins' pages about an association's members show, and the checks of their forms."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from sqlalchemy.orm import Session

from orchestrator.catalog import EMAIL_ADDRESS
from orchestrator.i18n import N_, Translator
from orchestrator.state.events import list_events
from orchestrator.state.instances import ACTIVE_STATES, list_instances
from orchestrator.state.members import MAX_NAME, members
from orchestrator.state.models import Association, Invite, as_utc, utc_now
from orchestrator.web.refusals import CONTROL_CHARACTERS, NOT_AN_EMAIL, TOO_LONG
from orchestrator.web.security import INVISIBLE_REFUSED, invisible_in

MEMBER_FIELDS = {"name": N_("Member's name"), "email": N_("Member's e-mail address")}
# A link's state as the member list says it
LINK_STATES = {
    "unused": N_("link not opened yet"),
    "used": N_("link used"),
    "expired": N_("link expired: give a new one"),
}
# What the audit trail calls the kinds of events an association sees most (any other kind is shown as recorded)
EVENT_KINDS = {
    "invite.created": N_("member invited"), "invite.revoked": N_("member removed"),
    "invite.renewed": N_("new sign-in link"), "invite.manager": N_("made a manager"),
    "invite.member": N_("made a plain member"), "instance.suspend": N_("service to be suspended"),
    "instance.resume": N_("service to be resumed"), "instance.delete": N_("service to be deleted"),
    "request.pending": N_("service requested"), "web_sessions.created": N_("signed in"),
    "web_sessions.deleted": N_("signed out"), "instances.created": N_("service planned"),
    "instances.changed": N_("service changed"), "service_requests.changed": N_("request changed"),
    "queued_runs.created": N_("set-up queued"), "queued_runs.changed": N_("set-up moved on"),
    "invites.created": N_("link made"), "invites.changed": N_("member changed"),
    "domain.claimed": N_("own domain asked for"), "domain.unproven": N_("own domain not proven yet"),
    "domain.attached": N_("own domain proven"), "domain.serving": N_("own domain served"),
    "domain.failing": N_("own domain not served properly"), "domain.primary": N_("primary address changed"),
    "domain.removed": N_("own domain removed"), "domain.released": N_("own domain released"),
    "domain.expired": N_("own domain forgotten, never proven"), "domain.proof_lost": N_("own domain's token missing"),
    "domain.proof_back": N_("own domain's token back"), "domain.detached": N_("own domain detached, its token gone"),
    "domains.created": N_("own domain recorded"), "domains.changed": N_("own domain changed"),
    "domains.deleted": N_("own domain forgotten"),
}  # fmt: skip
JOURNAL_LENGTH = 200


@dataclass
class MemberRow:
    id: int
    name: str
    email: str
    manager: bool
    link: str  # a LINK_STATES key
    expires_at: str
    you: bool


def member_rows(session: Session, association: Association, *, you: int | None = None) -> list[MemberRow]:
    now = utc_now()
    rows = []
    for invite in members(session, association):
        expired = as_utc(invite.expires_at) <= now
        rows.append(MemberRow(id=invite.id, name=invite.name, email=invite.email, manager=invite.manager,
                              link="expired" if expired else ("used" if invite.last_used_at else "unused"),
                              expires_at=as_utc(invite.expires_at).strftime("%Y-%m-%d"), you=invite.id == you))  # fmt: skip
    return rows


def service_rows(session: Session, association: Association) -> list[dict]:
    """The association's services that exist, with what each is to become (desired state)."""
    return [{"name": i.name, "service": i.service_id, "state": i.state, "desired": i.desired_state,
             "url": f"https://{i.domain}/"}
            for i in list_instances(session, association=association.slug) if i.state in ACTIVE_STATES]  # fmt: skip


def journal_rows(session: Session, association: Association, _: Translator) -> list[dict]:
    """The association's audit trail, newest first (JOURNAL_LENGTH events at most)."""
    events = list_events(session, association=association.slug, limit=JOURNAL_LENGTH)
    return [{"seq": e.seq, "at": as_utc(e.at).strftime("%Y-%m-%d %H:%M"), "actor": e.actor,
             "what": _(EVENT_KINDS[e.kind]) if e.kind in EVENT_KINDS else e.kind, "subject": e.subject,
             "detail": summary(e.detail)} for e in reversed(events)]  # fmt: skip


def summary(detail: dict) -> str:
    """An event's detail in one line: the fields a change changed (before → after), or a decision's values."""
    if not isinstance(detail, dict):
        return ""
    if "after" in detail and "before" in detail:
        return "; ".join(f"{key}: {short(detail['before'].get(key))} → {short(value)}"
                         for key, value in detail["after"].items())  # fmt: skip
    if "after" in detail or "before" in detail:
        return ""  # a row made or removed: its kind and subject say it
    return "; ".join(f"{key}: {short(value)}" for key, value in detail.items())


def short(value) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= 60 else text[:59] + "…"


def member_problems(name: str, email: str, _: Translator) -> list[str]:
    """What is wrong with a new member's name and address (both optional), each naming its field."""
    problems = []
    invisible = invisible_in({"name": name, "email": email})
    if invisible is not None:
        field, code = invisible
        return [_(INVISIBLE_REFUSED, field=_(MEMBER_FIELDS[field]), code=code)]
    if len(name.strip()) > MAX_NAME:
        problems.append(_(TOO_LONG, field=_(MEMBER_FIELDS["name"]), max=MAX_NAME))
    elif any(unicodedata.category(c) in ("Cc", "Cf") for c in name):
        problems.append(_(CONTROL_CHARACTERS, field=_(MEMBER_FIELDS["name"])))
    if email.strip() and not EMAIL_ADDRESS.match(email.strip()):
        problems.append(_(NOT_AN_EMAIL, field=_(MEMBER_FIELDS["email"])))
    return problems


def link_of(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/connexion/{token}"


def described(invite: Invite) -> str:
    """A member as a page names them: name, address, else the invite's number."""
    return invite.name or invite.email or f"#{invite.id}"
