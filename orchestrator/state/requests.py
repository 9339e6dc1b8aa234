"""Service requests and their life: pending → approved / rejected → provisioning → done / failed.

Every change is recorded in the audit trail (``events``, kind ``request.STATE``) with who and when.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.errors import Conflict, InvalidInput, NotFound
from orchestrator.state.events import record_event
from orchestrator.state.models import Association, ServiceRequest, iso_utc, utc_now

NEXT_STATES = {
    "pending": ("approved", "rejected"),
    "approved": ("provisioning",),
    "provisioning": ("done", "failed"),
    "failed": ("provisioning",),  # an admin may retry
    "rejected": (),
    "done": (),
}
# Where a request stops moving by itself (a failed one moves again only if an admin retries it).
FINAL_REQUEST_STATES = ("done", "failed", "rejected")


REASON_MAX_LENGTH = 1000


GIVE_A_REASON = "give a reason (1 to 1000 characters): the association reads it"


def checked_reason(reason: str, *, message: str = GIVE_A_REASON) -> str:
    """Give a rejection's ``reason`` stripped; raises InvalidInput(``message``) when empty or over 1000 characters."""
    reason = reason.strip()
    if not reason or len(reason) > REASON_MAX_LENGTH:
        raise InvalidInput(message)
    return reason


def move(
    session: Session, request: ServiceRequest, state: str, *, actor: str, reason: str = "", detail: dict | None = None
) -> None:
    """Move ``request`` to ``state`` and record it; raises Conflict for a move its state does not allow."""
    if state not in NEXT_STATES[request.state]:
        raise Conflict(f"request {request.id} is {request.state}; it cannot become {state}")
    request.state = state
    request.updated_at = utc_now()
    if reason:
        request.reason = reason[:REASON_MAX_LENGTH]
    record_event(session, kind=f"request.{state}", subject=f"request/{request.id}", actor=actor, association=request.association.slug,
                 detail={"association": request.association.slug, "service": request.service_id, "name": request.name,
                         **({"reason": reason} if reason else {}), **(detail or {})})  # fmt: skip


def get_request(session: Session, request_id: int, *, association: Association | None = None) -> ServiceRequest:
    """Give request ``request_id`` (only if it belongs to ``association``, when given); raises NotFound."""
    request = session.get(ServiceRequest, request_id)
    if request is None or (association is not None and request.association_id != association.id):
        raise NotFound(f"no request {request_id}", hint="`ruche request list` shows them")
    return request


def list_requests(
    session: Session, *, state: str | None = None, association: Association | None = None
) -> list[ServiceRequest]:
    """Give requests, newest first, optionally in ``state`` or of ``association``."""
    query = select(ServiceRequest).order_by(ServiceRequest.created_at.desc(), ServiceRequest.id.desc())
    if state is not None:
        query = query.where(ServiceRequest.state == state)
    if association is not None:
        query = query.where(ServiceRequest.association_id == association.id)
    return list(session.scalars(query))


class RequestView(BaseModel):
    """A service request as shown outside the state: `ruche request list --json` and the web API."""

    model_config = ConfigDict(extra="forbid")
    id: int
    association: str = Field(description="The association's short name.")
    service: str = Field(description="Catalogue id of the service.")
    name: str = Field(description="Name of the instance asked for.")
    size: str = Field(description="small, medium or large.")
    parameters: dict[str, str] = Field(description="The service's parameters, as given.")
    state: Literal["pending", "approved", "rejected", "provisioning", "done", "failed"]
    reason: str | None = Field(description="Why it was rejected or failed, if it was.")
    requested_by: str
    instance: str | None = Field(description="Address of the instance once placed (ASSOCIATION/NAME).")
    created_at: str = Field(description="ISO 8601, to the second, in UTC with its offset (+00:00).")
    updated_at: str = Field(description="ISO 8601, to the second, in UTC with its offset (+00:00).")


def request_view(request: ServiceRequest) -> RequestView:
    return RequestView(
        id=request.id, association=request.association.slug, service=request.service_id, name=request.name,
        size=request.size, parameters=dict(request.parameters), state=request.state, reason=request.reason,
        requested_by=request.requested_by, instance=request.instance_address,
        created_at=iso_utc(request.created_at), updated_at=iso_utc(request.updated_at),
    )  # fmt: skip


def request_as_dict(request: ServiceRequest) -> dict:
    return request_view(request).model_dump()
