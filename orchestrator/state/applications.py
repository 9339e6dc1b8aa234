"""Applications to join: submitted on the public page, accepted (the association is registered) or declined."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.errors import Conflict, InvalidInput, NotFound
from orchestrator.state.associations import add_association, validate_association_spec
from orchestrator.state.events import record_event
from orchestrator.state.models import Association, JoinApplication, utc_now
from orchestrator.state.requests import checked_reason


def submit_application(session: Session, *, slug: str, name: str, email: str, message: str) -> JoinApplication:
    """Record an application; raises InvalidInput naming the field, or Conflict when the slug is taken."""
    validate_association_spec(slug=slug, name=name, email=email)
    if len(message) > 2000:
        raise InvalidInput("message: 2000 characters at most")
    taken = session.scalar(select(Association.id).where(Association.slug == slug)) is not None or session.scalar(
        select(JoinApplication.id).where(JoinApplication.slug == slug, JoinApplication.state == "pending")
    ) is not None  # fmt: skip
    if taken:
        raise Conflict(f"the short name {slug!r} is taken: choose another")
    application = JoinApplication(
        slug=slug, name=name, email=email, message=message, state="pending", created_at=utc_now()
    )
    session.add(application)
    session.flush()
    record_event(session, kind="application.pending", subject=f"application/{application.id}", actor=email,
                 detail={"slug": slug, "name": name})  # fmt: skip
    return application


def get_application(session: Session, application_id: int) -> JoinApplication:
    found = session.get(JoinApplication, application_id)
    if found is None:
        raise NotFound(f"no application {application_id}", hint="`ruche association applications` lists them")
    return found


def list_applications(session: Session, *, state: str | None = None) -> list[JoinApplication]:
    query = select(JoinApplication).order_by(JoinApplication.created_at.desc(), JoinApplication.id.desc())
    if state is not None:
        query = query.where(JoinApplication.state == state)
    return list(session.scalars(query))


def decide(session: Session, application: JoinApplication, *, accept: bool, actor: str, offer: str | None = None,
           reason: str = "") -> JoinApplication:  # fmt: skip
    """Accept (register the association, on ``offer``) or decline (``reason`` required) a pending application."""
    if application.state != "pending":
        raise Conflict(f"application {application.id} is {application.state} already")
    if accept:
        add_association(session, validate_association_spec(slug=application.slug, name=application.name,
                                                           email=application.email, offer=offer))  # fmt: skip
    else:
        reason = checked_reason(reason, message="give a reason (1 to 1000 characters)")
        application.reason = reason
    application.state = "accepted" if accept else "declined"
    application.decided_at, application.decided_by = utc_now(), actor
    record_event(session, kind=f"application.{application.state}", subject=f"application/{application.id}", actor=actor,
                 detail={"slug": application.slug, **({"offer": offer} if accept else {"reason": reason})})  # fmt: skip
    return application


def application_as_dict(application: JoinApplication) -> dict:
    return {"id": application.id, "slug": application.slug, "name": application.name, "email": application.email,
            "message": application.message, "state": application.state, "reason": application.reason,
            "created_at": application.created_at.isoformat(timespec="seconds"), "decided_by": application.decided_by}  # fmt: skip
