"""What members' pages and the API show, read from the state (one place for both)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from orchestrator.catalog import SIZES as SIZE_NAMES
from orchestrator.catalog import Catalog
from orchestrator.errors import RucheError
from orchestrator.i18n import N_, Translator, members_progress
from orchestrator.quotas import excesses, find_offer
from orchestrator.state.backups import runs_of
from orchestrator.state.instances import ACTIVE_STATES, allocation, get_instance, list_instances
from orchestrator.state.models import ServiceRequest, WebSession, iso_utc
from orchestrator.state.queue import runs_of_request
from orchestrator.state.requests import FINAL_REQUEST_STATES, RequestView, get_request, list_requests, request_view
from orchestrator.state.upgrades import latest_upgrades
from orchestrator.web.models import DeployedView, InstanceView, QuotaView, RequestDetail, UpgradeView
from orchestrator.web.refusals import excesses_text
from orchestrator.workspace import Workspace


def members_instances(session: Session, signed_in: WebSession) -> list[InstanceView]:
    """The signed-in member's association's instances that exist (not deleted), with their last backup and upgrade."""
    instances = [i for i in list_instances(session, association=signed_in.association.slug) if i.state in ACTIVE_STATES]
    upgrades = latest_upgrades(session, [i.address for i in instances])
    rows = []
    for instance in instances:
        last = next((r for r in runs_of(session, instance.address, kind="backup") if r.status == "success"), None)
        upgrade = upgrades.get(instance.address)
        rows.append(InstanceView(
            address=instance.address, name=instance.name, service=instance.service_id, version=instance.service_version,
            url=f"https://{instance.domain}/", state=instance.state, health=instance.health,
            last_backup=iso_utc(last.finished_at) if last and last.finished_at else None,
            upgrade=None if upgrade is None else UpgradeView(
                status=upgrade.status, to=upgrade.to_version, version=instance.service_version,
                at=iso_utc(upgrade.finished_at or upgrade.started_at)),
        ))  # fmt: skip
    return rows


def members_requests(session: Session, signed_in: WebSession) -> list[RequestView]:
    """The association's requests, newest first."""
    return [request_view(r) for r in list_requests(session, association=signed_in.association)]


def members_request(session: Session, signed_in: WebSession, request_id: int) -> ServiceRequest | None:
    """The association's request ``request_id``; None if missing or another association's (the same answer)."""
    try:
        return get_request(session, request_id, association=signed_in.association)
    except RucheError:
        return None


def members_quota(workspace: Workspace, session: Session, signed_in: WebSession) -> QuotaView | None:
    """What the association uses of its offer (None without an offer: the admins set its limits)."""
    association = signed_in.association
    offer = find_offer(workspace.config.offers, association.offer)
    if offer is None:
        return None
    used = allocation(session, association.id)
    return QuotaView(instances=used.instances, max_instances=offer.max_instances, memory=used.memory_mb,
                     max_memory=offer.memory_mb, disk=used.disk_gb, max_disk=offer.disk_gb)  # fmt: skip


# Requests an association may have waiting for the admins at once: more are refused at submission.
MAX_PENDING_REQUESTS = 5
TOO_MANY_PENDING = N_(
    "Your association already has %(count)s requests waiting for the admins' answer: wait for "
    "it before asking for more."
)
BEYOND_OFFER = N_(
    "This request is beyond your association's offer (%(offer)s): %(excesses)s. Choose a smaller "
    "size, or ask %(collective)s's admins for a larger offer."
)


def submission_refusal(workspace: Workspace, session: Session, catalog: Catalog, signed_in: WebSession, *,
                       service: str, size: str, _: Translator) -> str | None:  # fmt: skip
    """Why a member's request cannot even wait for the admins (in the member's language), or None: the
    association has MAX_PENDING_REQUESTS waiting already, or the request alone passes its offer. The offer
    is checked by the approval's own check (quotas.excesses), so the member reads the limits the admin would.
    An unknown service or size is left to submit_in_session, which says why."""
    association = signed_in.association
    pending = sum(1 for r in list_requests(session, association=association) if r.state == "pending")
    if pending >= MAX_PENDING_REQUESTS:
        return _(TOO_MANY_PENDING, count=pending)
    definition = catalog.services.get(service)
    resources = getattr(definition.sizes, size, None) if definition is not None and size in SIZE_NAMES else None
    if resources is None:
        return None
    offer = find_offer(workspace.config.offers, association.offer)
    over = excesses(offer, allocation(session, association.id), resources.memory_mb, resources.disk_gb)
    if not over:
        return None
    described = excesses_text(over, _)
    return _(BEYOND_OFFER, offer=association.offer, excesses=described, collective=workspace.config.collective)


@dataclass
class RequestFollowed:
    """A request's page: the request, its latest run's progress, its instance once it exists."""

    request: RequestView
    progress: str
    deployed: DeployedView | None
    final: bool

    def detail(self) -> RequestDetail:
        return RequestDetail(**self.request.model_dump(), progress=self.progress, deployed=self.deployed)


def follow_request(session: Session, found: ServiceRequest, _: Translator) -> RequestFollowed:
    run = next(iter(runs_of_request(session, found.id)), None)
    deployed = None
    if found.instance_address:
        try:
            made = get_instance(session, found.instance_address)
        except RucheError:
            made = None
        if made is not None and made.state in ACTIVE_STATES:
            deployed = DeployedView(url=f"https://{made.domain}/", state=made.state, health=made.health)
    return RequestFollowed(request=request_view(found), progress=members_progress(run.progress if run else "", _),
                           deployed=deployed, final=found.state in FINAL_REQUEST_STATES)  # fmt: skip
