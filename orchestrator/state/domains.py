"""Associations' own domains in the state: claims related to a name, an instance's domains, attaching (the
instance's ``own_domains`` and ``primary_domain`` columns follow its attached domains) and releasing."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from orchestrator.domains import Claim, shown, state
from orchestrator.errors import NotFound
from orchestrator.state.events import record_event
from orchestrator.state.models import Association, Domain, Instance, iso_utc


def related_claims(session: Session, name: str) -> list[Claim]:
    """Every recorded claim of ``name``, of a name above it, or of a name under it (any association)."""
    labels = name.split(".")
    above = [".".join(labels[i:]) for i in range(len(labels) - 1)]
    query = (
        select(Domain)
        .join(Association, Domain.association)
        .where(or_(Domain.name.in_(above), Domain.name.like(f"%.{name}")))
    )
    return [Claim(d.name, d.association.slug, d.instance.address, d.status) for d in session.scalars(query)]


def domains_of(session: Session, *, association_id: int | None = None, instance_id: int | None = None) -> list[Domain]:
    """The domains of an association, of an instance, or all, by name."""
    query = select(Domain).order_by(Domain.name, Domain.id)
    if association_id is not None:
        query = query.where(Domain.association_id == association_id)
    if instance_id is not None:
        query = query.where(Domain.instance_id == instance_id)
    return list(session.scalars(query))


def get_domain(session: Session, instance: Instance, name: str) -> Domain:
    """The domain ``name`` claimed for ``instance``; raises NotFound naming the ones it has."""
    for domain in domains_of(session, instance_id=instance.id):
        if domain.name == name:
            return domain
    known = ", ".join(d.name for d in domains_of(session, instance_id=instance.id)) or "none"
    raise NotFound(f"{instance.address} has no domain {name} (its domains: {known})",
                   hint=f"ruche domain add {instance.address} {name}")  # fmt: skip


def sync_instance(session: Session, instance: Instance) -> None:
    """Make ``instance``'s own_domains (its attached domains, sorted) and primary_domain (kept only while attached)
    follow its domains' rows: what its deployment reads."""
    session.flush()
    attached = sorted(d.name for d in domains_of(session, instance_id=instance.id) if d.status == "attached")
    if list(instance.own_domains or []) != attached:
        instance.own_domains = attached
    if instance.primary_domain is not None and instance.primary_domain not in attached:
        instance.primary_domain = None


def release(session: Session, instance: Instance, *, reason: str, actor: str | None = None) -> list[str]:
    """Remove every domain of ``instance`` (deleted: its names are free again); give their names."""
    names = []
    for domain in domains_of(session, instance_id=instance.id):
        names.append(domain.name)
        session.delete(domain)
        record_event(session, kind="domain.released", subject=instance.address, actor=actor,
                     detail={"domain": domain.name, "reason": reason})  # fmt: skip
    if names:
        sync_instance(session, instance)
    return names


def domain_as_dict(domain: Domain) -> dict:
    """What `ruche domain list --json` and the member's page show of a domain (its token is published, not secret)."""
    when = lambda moment: iso_utc(moment) if moment is not None else None  # noqa: E731
    return {
        "domain": domain.name,
        "shown": shown(domain.name),
        "instance": domain.instance.address,
        "association": domain.association.slug,
        "state": state(domain.status, domain.tls_status),
        "primary": domain.instance.primary_domain == domain.name,
        "wants_primary": domain.wants_primary,
        "token": domain.token,
        "problem": domain.problem.split("]: ", 1)[-1] if domain.problem else None,
        "checked_at": when(domain.checked_at),
        "verified_at": when(domain.verified_at),
        "certificate": {
            "issuer": domain.tls_issuer or None,
            "not_after": when(domain.tls_not_after),
            "detail": domain.tls_detail or None,
            "checked_at": when(domain.tls_checked_at),
        },
        "created_at": when(domain.created_at),
    }
