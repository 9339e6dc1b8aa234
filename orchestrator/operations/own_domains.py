"""Associations' own domains, the work the verbs, the worker and the web share: a claim recorded with what to
publish, pending claims proven and attached, attached ones checked over TLS, a domain removed, the primary name
chosen. Attaching or removing changes the instance's deployment (its Caddy site, the entry's own settings), which
a converge (CLI) or a queued run (web, worker) then applies."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.domains import (
    MAX_OWN_DOMAINS_PER_INSTANCE,
    MAX_PENDING_PER_ASSOCIATION,
    check_claim,
    expiring,
    new_token,
    normalise,
    records_to_publish,
)
from orchestrator.errors import Conflict, InvalidInput
from orchestrator.findings import Finding
from orchestrator.operations.context import Progress, no_progress
from orchestrator.operations.converge import converge
from orchestrator.operations.domain_checks import check_tls, pointer_problem, proof_problems, resolver_of, token_problem
from orchestrator.state.database import StateStore
from orchestrator.state.domains import domain_as_dict, domains_of, get_domain, related_claims, sync_instance
from orchestrator.state.events import record_event
from orchestrator.state.instances import ACTIVE_STATES, get_instance
from orchestrator.state.models import Domain, Instance, as_utc, utc_now
from orchestrator.state.queue import enqueue
from orchestrator.workspace import Workspace

CERTIFICATE_WAIT_SECONDS = 120


def claimable_instance(workspace: Workspace, session: Session, address: str) -> Instance:
    """The instance at ``address`` if it can take an own domain; raises NotFound or Conflict saying why not."""
    instance = get_instance(session, address)
    if instance.state == "deleted" or instance.desired_state in ("absent", "purged"):
        raise Conflict(f"{address} is deleted or being deleted: it cannot take a domain")
    workspace.catalog.get(instance.service_id).require_own_domain()
    return instance


def add_claim(workspace: Workspace, session: Session, address: str, text: str, *, primary: bool = False) -> dict:
    """Record ``text`` (normalised) as a pending domain of ``address``, or give the claim already recorded; give
    ``{"domain", "publish": [records], "added"}``. ``primary``: once attached, it becomes the instance's primary
    address (in the same run). Raises InvalidInput, NotFound or Conflict (see domains.check_claim), changing
    nothing."""
    name = normalise(text)
    instance = claimable_instance(workspace, session, address)
    slug = instance.association.slug
    existing = check_claim(name, slug, address, workspace.config.base_domain, related_claims(session, name))
    if existing is not None:
        domain = get_domain(session, instance, name)
        added = False
    else:
        if len(domains_of(session, instance_id=instance.id)) >= MAX_OWN_DOMAINS_PER_INSTANCE:
            raise Conflict(f"{address} has {MAX_OWN_DOMAINS_PER_INSTANCE} domains already, the most one instance takes",
                           hint=f"remove one first: ruche domain remove {address} NAME")  # fmt: skip
        pending = [d for d in domains_of(session, association_id=instance.association_id) if d.status == "pending"]
        if len(pending) >= MAX_PENDING_PER_ASSOCIATION:
            raise Conflict(f"{slug} has {len(pending)} domains waiting for their proof, the most it may",
                           hint="prove them (`ruche domain verify`) or remove some first")  # fmt: skip
        domain = Domain(name=name, association_id=instance.association_id, instance_id=instance.id, token=new_token(),
                        status="pending", problem="", tls_status="unknown", tls_detail="", tls_issuer="")  # fmt: skip
        session.add(domain)
        session.flush()
        record_event(session, kind="domain.claimed", subject=address, detail={"domain": name})
        added = True
    if primary and domain.status == "attached":
        raise Conflict(f"{name} is attached already: make it primary with `ruche domain primary`",
                       hint=f"ruche domain primary {address} {name}")  # fmt: skip
    if primary:
        domain.wants_primary = True
    return {"domain": domain_as_dict(domain), "publish": records_to_publish(name, domain.token, instance.server.address),
            "added": added}  # fmt: skip


def _select(session: Session, address: str | None, name: str | None) -> list[Domain]:
    if address is None:
        if name is not None:
            raise InvalidInput("a domain is named with its instance: ruche domain verify ASSOCIATION/NAME DOMAIN")
        return domains_of(session)
    instance = get_instance(session, address)
    if name is not None:
        return [get_domain(session, instance, normalise(name))]
    return domains_of(session, instance_id=instance.id)


def prove_pending(workspace: Workspace, session: Session, domains: list[Domain]) -> tuple[list[dict], set[str]]:
    """Check each pending domain's proof; attach those that hold (in ``session``); give each one's outcome and the
    addresses of the instances that got a domain."""
    resolver = resolver_of(workspace)
    outcomes, changed = [], set()
    for domain in domains:
        if domain.status != "pending":
            continue
        problems = proof_problems(workspace, domain, resolver)
        address, slug = domain.instance.address, domain.association.slug
        if not problems:  # another association may have proven it (or a name around it) meanwhile
            others = [
                c for c in related_claims(session, domain.name) if not (c.association == slug and c.name == domain.name)
            ]
            try:
                check_claim(domain.name, slug, address, workspace.config.base_domain, others)
            except Conflict as conflict:
                problems = [conflict.message]
        domain.checked_at = utc_now()
        if problems:
            problem = "; ".join(problems)[:1000]
            if problem != domain.problem:  # the trail says what changed, not every retry
                record_event(session, kind="domain.unproven", subject=address,
                             detail={"domain": domain.name, "problem": problem})  # fmt: skip
            domain.problem = problem
        else:
            domain.status, domain.verified_at, domain.problem = "attached", utc_now(), ""
            sync_instance(session, domain.instance)
            if domain.wants_primary:
                domain.instance.primary_domain = domain.name
                record_event(session, kind="domain.primary", subject=address, detail={"domain": domain.name})
            record_event(session, kind="domain.attached", subject=address, detail={"domain": domain.name})
            changed.add(address)
        outcomes.append({"domain": domain.name, "instance": address, "proven": not problems, "problems": problems})
    return outcomes, changed


def check_served(workspace: Workspace, session: Session, domains: list[Domain]) -> list[dict]:
    """A TLS handshake on each attached domain at its server; its certificate's state recorded (an event when it
    starts or stops serving); give what was seen."""
    verify_chain = workspace.config.domains.acme_ca_root is None
    seen_all = []
    for domain in domains:
        if domain.status != "attached":
            continue
        seen = check_tls(domain.instance.server.address, domain.name, verify_chain=verify_chain)
        status = "ok" if seen.ok else "failing"
        if status != domain.tls_status:
            record_event(session, kind="domain.serving" if seen.ok else "domain.failing", subject=domain.instance.address,
                         detail={"domain": domain.name, "detail": seen.detail})  # fmt: skip
        domain.tls_status, domain.tls_detail, domain.tls_checked_at = status, seen.detail[:1000], utc_now()
        domain.tls_issuer, domain.tls_not_after = seen.issuer, seen.not_after
        seen_all.append({"domain": domain.name, "ok": seen.ok, "detail": seen.detail})
    return seen_all


def verify(
    workspace: Workspace,
    store: StateStore,
    *,
    address: str | None = None,
    name: str | None = None,
    wait_seconds: float = CERTIFICATE_WAIT_SECONDS,
    progress: Progress = no_progress,
) -> dict:
    """`ruche domain verify`: prove the pending domains (of ``address``, or ``name`` of it; all without), converge
    the instances that got one, then wait up to ``wait_seconds`` for each attached domain to serve a certificate.
    Gives ``{"proofs": [...], "runs": [...], "served": [...], "domains": [...]}``."""
    with store.session() as session:
        chosen = _select(session, address, name)
        ids = [d.id for d in chosen]
        proofs, changed = prove_pending(workspace, session, chosen)
    runs = []
    for instance_address in sorted(changed):
        progress(f"{instance_address}: domain proven; applying its new names")
        run = converge(workspace, store, instance=instance_address, progress=progress)
        runs.append({"instance": instance_address, "run": run["run_id"], "status": run["status"]})
    deadline = time.monotonic() + (wait_seconds if changed else 0)
    while True:
        with store.session() as session:
            attached = [d for d in session.scalars(select(Domain).where(Domain.id.in_(ids))) if d.status == "attached"]
            served = check_served(workspace, session, attached)
            views = [domain_as_dict(d) for d in session.scalars(select(Domain).where(Domain.id.in_(ids)))]
        if all(s["ok"] for s in served) or time.monotonic() >= deadline:
            break
        progress("waiting for the certificates of " + ", ".join(s["domain"] for s in served if not s["ok"]))
        time.sleep(3)
    return {"proofs": proofs, "runs": runs, "served": served, "domains": views}


def retry_pending(workspace: Workspace, store: StateStore, *, every: timedelta, actor: str) -> dict:
    """The worker's pass: prove pending domains not tried for ``every``, queue a run for each instance that got
    one, and check the attached domains' certificates not checked for ``every``. Gives what it did."""
    since = utc_now() - every
    with store.session() as session:
        due = [
            d
            for d in domains_of(session)
            if d.status == "pending" and (d.checked_at is None or as_utc(d.checked_at) < since)
        ]
        proofs, changed = prove_pending(workspace, session, due)
        for address in sorted(changed):
            instance = get_instance(session, address)
            enqueue(session, server=instance.server.name, instance_address=address, requested_by=actor)
        stale = [d for d in domains_of(session) if d.status == "attached"
                 and (d.tls_checked_at is None or as_utc(d.tls_checked_at) < since)]  # fmt: skip
        served = check_served(workspace, session, stale)
    return {"proofs": proofs, "queued": sorted(changed), "served": served}


def remove(
    workspace: Workspace, store: StateStore, address: str, text: str, *, progress: Progress = no_progress
) -> dict:
    """`ruche domain remove`: forget the domain; when it was attached, converge the instance so it stops answering
    on it. Gives ``{"domain", "was", "run"}``."""
    name = normalise(text)
    with store.session() as session:
        instance = get_instance(session, address)
        domain = get_domain(session, instance, name)
        was = domain.status
        session.delete(domain)
        sync_instance(session, instance)
        record_event(session, kind="domain.removed", subject=address, detail={"domain": name, "was": was})
    run = converge(workspace, store, instance=address, progress=progress) if was == "attached" else None
    return {"domain": name, "instance": address, "was": was,
            "run": {"id": run["run_id"], "status": run["status"]} if run else None}  # fmt: skip


def remove_queued(session: Session, instance: Instance, text: str, *, actor: str) -> dict:
    """A member's removal from the web: the domain forgotten and, when it was attached, a run queued for the worker."""
    name = normalise(text)
    domain = get_domain(session, instance, name)
    was = domain.status
    session.delete(domain)
    sync_instance(session, instance)
    record_event(
        session, kind="domain.removed", subject=instance.address, actor=actor, detail={"domain": name, "was": was}
    )
    if was == "attached":
        enqueue(session, server=instance.server.name, instance_address=instance.address, requested_by=actor)
    return {"domain": name, "was": was}


def set_primary(workspace: Workspace, store: StateStore, address: str, text: str | None, *,
                progress: Progress = no_progress) -> dict:  # fmt: skip
    """`ruche domain primary`: the name the application calls itself by (an attached domain, or None for the
    collective's name); converge the instance so its settings follow. Gives ``{"instance", "primary", "run"}``."""
    with store.session() as session:
        instance = get_instance(session, address)
        name = None
        if text is not None:
            name = normalise(text)
            if get_domain(session, instance, name).status != "attached":
                raise Conflict(f"{name} is not proven yet: only an attached domain can be the primary address",
                               hint=f"ruche domain verify {address} {name}")  # fmt: skip
        if instance.primary_domain == name:
            return {"instance": address, "primary": name or instance.domain, "run": None}
        instance.primary_domain = name
        record_event(session, kind="domain.primary", subject=address, detail={"domain": name or instance.domain})
    run = converge(workspace, store, instance=address, progress=progress)
    return {"instance": address, "primary": name, "run": {"id": run["run_id"], "status": run["status"]}}


def audit_findings(workspace: Workspace, session: Session, *, server: str | None = None) -> list[Finding]:
    """`ruche audit`'s ``domains.*`` rules for every attached domain (on ``server`` only, if given), looked at now:
    its certificate served and valid beyond [domains] certificate_warning_days, its name still pointing at its
    server, its ``_ruche`` TXT token still published. The checks are recorded as `ruche domain verify` records them."""
    settings = workspace.config.domains
    attached = [d for d in domains_of(session) if d.status == "attached"
                and d.instance.state in ACTIVE_STATES and (server is None or d.instance.server.name == server)]  # fmt: skip
    check_served(workspace, session, attached)
    resolver = resolver_of(workspace)
    findings, now = [], utc_now()
    for domain in attached:
        where = f"{domain.name} ({domain.instance.address})"
        if domain.tls_status != "ok":
            findings.append(Finding("domains.certificate-valid", where, domain.tls_detail,
                                    f"read Caddy's log on {domain.instance.server.name} (`journalctl -u caddy`) for the "
                                    "ACME errors; the name must point at the server and port 80 be open to the CA"))  # fmt: skip
        elif expiring(domain.tls_not_after, now, settings.certificate_warning_days):
            findings.append(Finding("domains.certificate-valid", where,
                                    f"its certificate expires on {as_utc(domain.tls_not_after):%Y-%m-%d %H:%M} UTC, within "
                                    f"{settings.certificate_warning_days} days, and was not renewed",
                                    f"Caddy renews a third of the way before expiry: read its log on "
                                    f"{domain.instance.server.name} (`journalctl -u caddy`) for why it could not"))  # fmt: skip
        pointer, _addresses = pointer_problem(resolver, domain.name, domain.instance.server)
        if pointer:
            findings.append(Finding("domains.points-here", where, pointer,
                                    "the association publishes the record again, or `ruche domain remove` it"))  # fmt: skip
        token = token_problem(resolver, domain)
        if token:
            findings.append(Finding("domains.token-kept", where, token,
                                    "the association publishes the TXT record again (a domain whose proof is gone "
                                    "may have changed hands), or `ruche domain remove` it"))  # fmt: skip
    return findings
