"""Submitting a service request (what the web form and the API call): validated like `instance create`."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from orchestrator.actions.common import opened
from orchestrator.actions.request_review import approve_in_session
from orchestrator.catalog import load_catalog, resolve_parameters
from orchestrator.errors import Conflict, InvalidInput, QuotaExceeded
from orchestrator.quotas import excesses, find_offer
from orchestrator.state.associations import get_association, is_slug
from orchestrator.state.events import record_event
from orchestrator.state.instances import allocation, list_instances
from orchestrator.state.models import ServiceRequest, utc_now
from orchestrator.state.requests import list_requests, request_as_dict
from orchestrator.workspace import Workspace

SIZES = ("small", "medium", "large")


def submit_request(
    workspace_path: Path | None, *, association: str, service: str, name: str | None, size: str,
    parameters: dict[str, str], requested_by: str,
) -> dict:  # fmt: skip
    """Record a request of ``association`` for ``service``; give it.

    The parameters are validated by the catalogue's models, as for `instance create`. When the
    association's offer says auto_approve and the request fits in it, the request is approved at
    once (an instance planned and a run queued). Raises InvalidInput, NotFound or Conflict
    (the name is taken by an instance or an open request) with nothing recorded.
    """
    with opened(workspace_path) as (workspace, store), store.session() as session:
        return submit_in_session(workspace, session, association=association, service=service, name=name, size=size,
                                 parameters=parameters, requested_by=requested_by)  # fmt: skip


def submit_in_session(
    workspace: Workspace, session: Session, *, association: str, service: str, name: str | None, size: str,
    parameters: dict[str, str], requested_by: str,
) -> dict:  # fmt: skip
    """What :func:`submit_request` does, in the caller's ``session`` (the web app keeps one store open)."""
    owner = get_association(session, association)
    definition = load_catalog(workspace.catalog_dir).get(service)
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
