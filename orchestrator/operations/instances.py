"""A new instance planned: validated, placed on a server with room, given its domain, port, ID range and secrets,
bounded by its association's offer, and recorded in state ``planned`` (``instance create``, a request's approval, a
restore into a new instance)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from orchestrator.catalog import SIZES, Service, resolve_parameters
from orchestrator.deployment import free_http_port, generate_secrets, instance_domain
from orchestrator.errors import Conflict, InvalidInput, QuotaExceeded
from orchestrator.idranges import free_slot
from orchestrator.images import deployed_images, lab_only, lab_only_refusal
from orchestrator.placement import Demand, place
from orchestrator.quotas import excesses, find_offer, service_limits
from orchestrator.state.associations import ensure_backup_password, get_association, is_slug
from orchestrator.state.database import StateStore
from orchestrator.state.events import record_event
from orchestrator.state.instances import (
    allocation,
    capacities,
    instance_as_dict,
    list_instances,
    used_http_ports,
    used_id_slots,
)
from orchestrator.state.models import Instance
from orchestrator.state.servers import get_server
from orchestrator.workspace import Workspace


def record_instance(
    workspace: Workspace, store: StateStore, *, association: str, service: str, name: str, size: str,
    values: dict[str, str], server: str | None, version: str | None, check_quota: bool = True,
) -> dict:  # fmt: skip
    """Record a new instance of ``service`` with parameters ``values`` (validated by the entry again) in a session of
    its own, as ``ruche instance create`` would (see :func:`plan_instance`); give what it gives."""
    definition = workspace.catalog.get(service)
    resolved = resolve_parameters(definition, dict(values))
    with store.session() as session:
        return plan_instance(
            workspace, session, definition, association=association, name=name, size=size, values=resolved,
            server=server, check_quota=check_quota, version=version,
        )  # fmt: skip


def plan_instance(
    workspace: Workspace, session: Session, definition: Service, *, association: str, name: str | None, size: str,
    values: dict[str, str], server: str | None = None, labels: dict[str, str] | None = None, over_quota: bool = False,
    check_quota: bool = True, dry_run: bool = False, actor: str | None = None, version: str | None = None,
) -> dict:  # fmt: skip
    """What ``ruche instance create`` does, in the caller's ``session`` (``values``: validated parameters).

    Lets a caller plan an instance and record more in the same transaction (a request's approval).
    """
    service = definition.id
    instance_name = name or service
    if not is_slug(instance_name):
        raise InvalidInput(f"instance name {instance_name!r}: use a-z, 0-9 and single inner dashes, 32 at most")
    if size not in SIZES:
        raise InvalidInput(f"size {size!r}: expected one of {', '.join(SIZES)}")
    resources = getattr(definition.sizes, size)
    if version is not None and version not in {v.version for v in definition.versions}:
        raise InvalidInput(f"{service} has no version {version!r} (known: {', '.join(v.version for v in definition.versions)})",
                           hint=f"`ruche catalog show {service}` lists them")  # fmt: skip
    owner = get_association(session, association)
    # images only the lab's registry serves (no [images] registry in ruche.toml): a lab server only
    lab_images = lab_only(deployed_images(definition, version, workspace.config.images.registry))
    if server is not None:
        requested = get_server(session, server)  # NotFound before placement explains anything
        if lab_images and requested.origin != "lab":
            raise lab_only_refusal(f"{association}/{instance_name} ({service})", server, lab_images)
    if any(i.name == instance_name for i in list_instances(session, association=association)):
        raise Conflict(f"{association}/{instance_name} already exists", hint="choose another --name")
    offer = find_offer(workspace.config.offers, owner.offer)
    service_limits(definition, offer, owner.offer)  # a broken offer is reported before anything is placed
    over = excesses(offer, allocation(session, owner.id), resources.memory_mb, resources.disk_gb) if check_quota else []
    if over and not over_quota:
        raise QuotaExceeded(
            f"{association}/{instance_name} ({service}, {size}) is beyond {association}'s offer {owner.offer!r}: "
            + "; ".join(e.describe() for e in over),
            hint="choose a smaller --size, delete an instance, move the association to a larger offer "
            "(`ruche association set-offer`), or add --over-quota to override (recorded)",
            offer=owner.offer,
            excesses=over,
        )
    demand = Demand(
        association=association, cpu=resources.cpu, memory_mb=resources.memory_mb, disk_gb=resources.disk_gb,
        required_labels=labels or {}, server=server, lab_only_images=tuple(lab_images),
    )  # fmt: skip
    decision = place(demand, capacities(session, owner.id), **_ratios(workspace))
    chosen = get_server(session, decision.server)
    try:
        port = free_http_port(used_http_ports(session, chosen.id))
    except ValueError as error:
        raise Conflict(f"server {chosen.name}: {error}", hint="choose another --server") from None
    try:
        slot = free_slot(used_id_slots(session))
    except ValueError as error:
        raise Conflict(
            f"cannot create {association}/{instance_name}: {error}", hint="delete unused instances"
        ) from None
    # Secrets are encrypted at once: neither the state nor the inventory ever holds them in clear.
    vault = None if dry_run else workspace.vault()
    secrets = (
        {} if vault is None else {name: vault.encrypt(value) for name, value in generate_secrets(definition).items()}
    )
    instance = Instance(
        association=owner, name=instance_name, service_id=definition.id, service_version=version or definition.version,
        size=size, cpu=resources.cpu, memory_mb=resources.memory_mb, disk_gb=resources.disk_gb,
        server=chosen, parameters=values, state="planned", desired_state="present",
        domain=instance_domain(association, instance_name, workspace.config.base_domain), http_port=port,
        secrets=secrets, health="unknown", health_detail="", id_slot=slot,
    )  # fmt: skip
    view = instance_as_dict(instance)
    quota = {"offer": owner.offer, "excesses": [e.as_dict() for e in over], "overridden": bool(over)}
    if not dry_run:
        session.add(instance)
        ensure_backup_password(owner, vault)
        if over:
            record_event(session, kind="quota.override", subject=instance.address, actor=actor,
                         detail={"offer": owner.offer, "service": service, "size": size, "excesses": quota["excesses"]})  # fmt: skip
    return {
        "instance": view,
        "quota": quota,
        "placement": [{"server": c.server, "eligible": c.eligible, "reason": c.reason} for c in decision.candidates],
        "dry_run": dry_run,
    }


def _ratios(workspace) -> dict[str, float]:
    placement = workspace.config.placement
    return {"cpu_ratio": placement.cpu_overcommit, "memory_ratio": placement.memory_overcommit}
