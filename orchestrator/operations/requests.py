"""Members' service requests in a session: submitted (validated like ``instance create``, approved at once when the
offer says auto_approve and it fits) and approved (instance planned, run queued, all in one transaction)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from orchestrator.catalog import SIZES, resolve_parameters
from orchestrator.errors import Conflict, InvalidInput, QuotaExceeded
from orchestrator.operations.instances import plan_instance
from orchestrator.quotas import excesses, find_offer
from orchestrator.state.associations import get_association, is_slug
from orchestrator.state.events import record_event
from orchestrator.state.instances import allocation, list_instances
from orchestrator.state.models import ServiceRequest, utc_now
from orchestrator.state.queue import enqueue
from orchestrator.state.requests import list_requests, move, request_as_dict
from orchestrator.workspace import Workspace


def approve_in_session(workspace: Workspace, session: Session, request: ServiceRequest, *, actor: str,
                       over_quota: bool = False, server: str | None = None) -> dict:  # fmt: skip
    """Approve ``request`` in ``session``: plan its instance, queue its run, move it to provisioning.

    All in the caller's transaction: either the request is approved with its instance and its run,
    or nothing is. Raises QuotaExceeded, Conflict (no room, name taken) or NotFound.
    """
    definition = workspace.catalog.get(request.service_id)
    move(session, request, "approved", actor=actor)
    planned = plan_instance(
        workspace, session, definition, association=request.association.slug, name=request.name, size=request.size,
        values=dict(request.parameters), server=server, over_quota=over_quota, actor=actor,
    )  # fmt: skip
    session.flush()
    address = planned["instance"]["address"]
    queued = enqueue(session, server=planned["instance"]["server"], instance_address=address, requested_by=actor,
                     request_id=request.id)  # fmt: skip
    request.instance_address = address
    move(
        session,
        request,
        "provisioning",
        actor=actor,
        detail={"queued_run": queued.id, "server": planned["instance"]["server"]},
    )
    return {"request": request_as_dict(request), "queued_run": queued.id, "placement": planned["placement"]}


def submit_in_session(
    workspace: Workspace, session: Session, *, association: str, service: str, name: str | None, size: str,
    parameters: dict[str, str], requested_by: str,
) -> dict:  # fmt: skip
    """Record a member's request (what ``submit_request`` does) in the caller's ``session`` (the web app keeps one store open)."""
    owner = get_association(session, association)
    definition = workspace.catalog.get(service)
    instance_name = name or service
    if not is_slug(instance_name):
        raise InvalidInput(f"name {instance_name!r}: use a-z, 0-9 and single inner dashes, 32 at most")
    if size not in SIZES:
        raise InvalidInput(f"size {size!r}: expected one of {', '.join(SIZES)}")
    values = resolve_parameters(definition, parameters)
    taken = {i.name for i in list_instances(session, association=association)} | {
        r.name for r in list_requests(session, association=owner) if r.state in ("pending", "approved", "provisioning")
    }  # fmt: skip
    if instance_name in taken:
        raise Conflict(f"{association}/{instance_name} exists or is already requested", hint="choose another name")
    now = utc_now()
    request = ServiceRequest(association=owner, service_id=service, name=instance_name, size=size, parameters=values,
                             state="pending", requested_by=requested_by[:120], created_at=now, updated_at=now)  # fmt: skip
    session.add(request)
    session.flush()
    record_event(session, kind="request.pending", subject=f"request/{request.id}", actor=requested_by, association=association,
                 detail={"association": association, "service": service, "name": instance_name})  # fmt: skip
    offer = find_offer(workspace.config.offers, owner.offer)
    resources = getattr(definition.sizes, size)
    fits = not excesses(offer, allocation(session, owner.id), resources.memory_mb, resources.disk_gb)
    if offer is not None and offer.auto_approve and fits:
        try:
            with session.begin_nested():  # all of the approval, or none of it
                approve_in_session(workspace, session, request, actor="auto-approve (offer)")
        except (QuotaExceeded, Conflict):
            session.refresh(request)  # no room on any server: it stays pending for an admin, who sees why
    return request_as_dict(request)
