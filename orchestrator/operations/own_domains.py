"""Associations' own domains, the work the verbs, the worker and the web share: a claim recorded with what to
publish, pending claims proven and attached, attached ones checked over TLS, a domain removed, the primary name
chosen. Attaching or removing changes the instance's deployment (its Caddy site, the entry's own settings), which
a converge (CLI) or a queued run (web, worker) then applies."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
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
from orchestrator.errors import Conflict, DomainRefused, InvalidInput
from orchestrator.findings import Finding
from orchestrator.operations.context import Progress, no_progress
from orchestrator.operations.converge import converge
from orchestrator.operations.domain_checks import (
    Problem,
    ProofTarget,
    check_tls,
    pointer_problem,
    proof_problems,
    resolver_of,
    token_problem,
)
from orchestrator.remote import SshTarget
from orchestrator.state.actors import acting_actor
from orchestrator.state.database import StateStore
from orchestrator.state.domains import domain_as_dict, domains_of, get_domain, related_claims, sync_instance
from orchestrator.state.events import record_event
from orchestrator.state.instances import get_instance
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
    address (in the same run). Raises InvalidInput, NotFound, DomainRefused (a rule of domains.check_claim or a
    limit) or Conflict (the instance cannot take one now), changing nothing."""
    name = normalise(text)
    instance = claimable_instance(workspace, session, address)
    slug = instance.association.slug
    existing = check_claim(name, slug, address, workspace.config.base_domain, related_claims(session, name))
    if existing is not None:
        domain = get_domain(session, instance, name)
        added = False
    else:
        if len(domains_of(session, instance_id=instance.id)) >= MAX_OWN_DOMAINS_PER_INSTANCE:
            raise DomainRefused(f"{address} has {MAX_OWN_DOMAINS_PER_INSTANCE} domains already, the most one instance takes",
                                hint=f"remove one first: ruche domain remove {address} NAME", reason="too-many-here",
                                max=MAX_OWN_DOMAINS_PER_INSTANCE)  # fmt: skip
        pending = [d for d in domains_of(session, association_id=instance.association_id) if d.status == "pending"]
        if len(pending) >= MAX_PENDING_PER_ASSOCIATION:
            raise DomainRefused(f"{slug} has {len(pending)} domains waiting for their proof, the most it may",
                                hint="prove them (`ruche domain verify`) or remove some first", reason="too-many-pending",
                                max=MAX_PENDING_PER_ASSOCIATION)  # fmt: skip
        domain = Domain(name=name, association_id=instance.association_id, instance_id=instance.id, token=new_token(slug),
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


def _targets(session: Session, domains: list[Domain]) -> list[ProofTarget]:
    """What proving ``domains`` needs, as plain values (the network is asked with no session open)."""
    targets = []
    for domain in domains:
        others = [d.token for d in session.scalars(select(Domain).where(Domain.name == domain.name))
                  if d.association_id != domain.association_id]  # fmt: skip
        server = domain.instance.server
        targets.append(ProofTarget(domain.id, domain.name, domain.token, domain.instance.address,
                                   domain.association.slug, server.name, server.address, SshTarget.of(server),
                                   tuple(others)))  # fmt: skip
    return targets


def _kinds(problem: str) -> str:
    """The ``[kind,...]`` a recorded problem starts with ("" for none)."""
    return problem.split(":", 1)[0] if problem.startswith("[") else ""


def _record_proof(
    workspace: Workspace, store: StateStore, target: ProofTarget, problems: list[Problem], *, queue_as: str | None
) -> bool:
    """Write one proof's outcome in a short session of its own: attach the domain when nothing is wrong and no other
    association took the name (or one around it) meanwhile, and queue its instance's run when ``queue_as`` (the
    worker). Gives whether it was attached."""
    try:
        with store.session() as session:
            domain = session.get(Domain, target.id)
            if domain is None or domain.status != "pending":
                return False  # removed or attached meanwhile
            if not problems:
                others = [c for c in related_claims(session, domain.name)
                          if not (c.association == target.association and c.name == domain.name)]  # fmt: skip
                try:
                    check_claim(domain.name, target.association, target.instance, workspace.config.base_domain, others)
                except Conflict as conflict:
                    problems = [Problem("conflict", conflict.message)]
            domain.checked_at = utc_now()
            if problems:
                kinds = "[" + ",".join(p.kind for p in problems) + "]"
                text = (kinds + ": " + "; ".join(p.text for p in problems))[:1000]
                if _kinds(domain.problem) != kinds:  # the trail says what changed, not every retry
                    record_event(session, kind="domain.unproven", subject=target.instance,
                                 detail={"domain": domain.name, "problem": text})  # fmt: skip
                domain.problem = text
                return False
            domain.status, domain.verified_at, domain.problem = "attached", utc_now(), ""
            session.flush()  # the unique index of attached names: another association's proof at the same time
            sync_instance(session, domain.instance)
            if domain.wants_primary and domain.instance.primary_domain is None:
                domain.instance.primary_domain = domain.name
                record_event(session, kind="domain.primary", subject=target.instance, detail={"domain": domain.name})
            record_event(session, kind="domain.attached", subject=target.instance, detail={"domain": domain.name})
            if queue_as is not None:
                enqueue(session, server=target.server, instance_address=target.instance, requested_by=queue_as)
            return True
    except IntegrityError:
        with store.session() as session:
            domain = session.get(Domain, target.id)
            if domain is not None:
                domain.problem = f"[conflict]: {target.name} was proven by another association at the same time"
        return False


def prove(workspace: Workspace, store: StateStore, ids: list[int], *, queue_as: str | None = None) -> list[dict]:
    """Check the proof of each pending domain of ``ids``, the network asked with no session open, each outcome then
    written on its own (see _record_proof). Gives each one's outcome."""
    with store.session() as session:
        pending = [d for d in session.scalars(select(Domain).where(Domain.id.in_(ids))) if d.status == "pending"]
        targets = _targets(session, pending)
    resolver = resolver_of(workspace)
    outcomes = []
    for target in targets:
        problems = proof_problems(workspace, target, resolver)
        attached = _record_proof(workspace, store, target, problems, queue_as=queue_as)
        if not problems and not attached:
            with store.session() as session:
                domain = session.get(Domain, target.id)
                if domain is not None and domain.problem:
                    problems = [Problem("conflict", domain.problem.split(": ", 1)[-1])]
        outcomes.append({"domain": target.name, "instance": target.instance, "proven": attached,
                         "problems": [p.text for p in problems]})  # fmt: skip
    return outcomes


def check_served(workspace: Workspace, store: StateStore, ids: list[int]) -> list[dict]:
    """A TLS handshake on each attached domain of ``ids`` whose instance runs (a suspended one's site is withdrawn),
    no session open meanwhile; then each certificate's state recorded (an event when it starts or stops serving).
    Gives what was seen."""
    verify_chain = workspace.config.domains.acme_ca_root is None
    with store.session() as session:
        targets = [(d.id, d.name, d.instance.server.address) for d in session.scalars(select(Domain).where(Domain.id.in_(ids)))
                   if d.status == "attached" and d.instance.state == "running" and d.instance.desired_state == "present"]  # fmt: skip
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(targets)))) as pool:  # handshakes in parallel
        checked = pool.map(
            lambda target: (target[0], check_tls(target[2], target[1], verify_chain=verify_chain)), targets
        )
        seen = dict(checked)
    results = []
    with store.session() as session:
        for identifier, tls in seen.items():
            domain = session.get(Domain, identifier)
            if domain is None or domain.status != "attached":
                continue
            status = "ok" if tls.ok else "failing"
            if status != domain.tls_status:
                record_event(session, kind="domain.serving" if tls.ok else "domain.failing", subject=domain.instance.address,
                             detail={"domain": domain.name, "detail": tls.detail})  # fmt: skip
            domain.tls_status, domain.tls_detail, domain.tls_checked_at = status, tls.detail[:1000], utc_now()
            domain.tls_issuer, domain.tls_not_after = tls.issuer, tls.not_after
            results.append({"domain": domain.name, "instance": domain.instance.address, "ok": tls.ok,
                            "detail": tls.detail})  # fmt: skip
    return results


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
    the instances that got one (a run is queued for the worker when that converge fails), then wait up to
    ``wait_seconds`` for the domains attached now to serve a certificate, and look at the others' once.
    Gives ``{"proofs": [...], "runs": [...], "served": [...], "domains": [...]}``."""
    with store.session() as session:
        ids = [d.id for d in _select(session, address, name)]
    proofs = prove(workspace, store, ids)
    changed = sorted({p["instance"] for p in proofs if p["proven"]})
    new = {p["domain"] for p in proofs if p["proven"]}
    runs = []
    for instance_address in changed:
        progress(f"{instance_address}: domain proven; applying its new names")
        run = converge(workspace, store, instance=instance_address, progress=progress)
        runs.append({"instance": instance_address, "run": run["run_id"], "status": run["status"]})
        if run["status"] != "successful":
            with store.session() as session:
                instance = get_instance(session, instance_address)
                enqueue(session, server=instance.server.name, instance_address=instance_address,
                        requested_by=acting_actor())  # fmt: skip
    deadline = time.monotonic() + (wait_seconds if new else 0)
    while True:
        served = check_served(workspace, store, ids)
        waiting = [s["domain"] for s in served if not s["ok"] and s["domain"] in new]
        if not waiting or time.monotonic() >= deadline:
            break
        progress("waiting for the certificates of " + ", ".join(waiting))
        time.sleep(3)
    with store.session() as session:
        views = [domain_as_dict(d) for d in session.scalars(select(Domain).where(Domain.id.in_(ids)))]
    return {"proofs": proofs, "runs": runs, "served": served, "domains": views}


def retry_pending(workspace: Workspace, store: StateStore, *, every: timedelta, actor: str) -> dict:
    """The worker's pass: forget claims never proven older than [domains] pending_days, prove the pending domains not
    tried for ``every`` (a run queued for each instance that got one), and check the attached domains' certificates
    and tokens not checked for ``every`` (a domain whose token has been missing [domains] lost_days is detached,
    see _watch_tokens). Gives what it did."""
    now = utc_now()
    since = now - every + timedelta(seconds=30)  # a pass every ``every``, not every other one
    expired_before = now - timedelta(days=workspace.config.domains.pending_days)
    with store.session() as session:
        expired = []
        for domain in domains_of(session):
            if domain.status == "pending" and domain.verified_at is None and as_utc(domain.created_at) < expired_before:
                expired.append(domain.id)
                record_event(session, kind="domain.expired", subject=domain.instance.address, actor=actor,
                             detail={"domain": domain.name, "problem": domain.problem})  # fmt: skip
                session.delete(domain)
        due = [d.id for d in domains_of(session) if d.status == "pending" and d.id not in expired
               and (d.checked_at is None or as_utc(d.checked_at) < since)]  # fmt: skip
        stale = [d.id for d in domains_of(session) if d.status == "attached"
                 and (d.tls_checked_at is None or as_utc(d.tls_checked_at) < since)]  # fmt: skip
    proofs = prove(workspace, store, due, queue_as=actor)
    served = check_served(workspace, store, stale)
    detached = _watch_tokens(workspace, store, stale, actor=actor)
    return {"expired": len(expired), "proofs": proofs, "detached": detached,
            "queued": sorted({p["instance"] for p in proofs if p["proven"]} | {d["instance"] for d in detached}),
            "served": served}  # fmt: skip


def _watch_tokens(workspace: Workspace, store: StateStore, ids: list[int], *, actor: str) -> list[dict]:
    """Look at the ``_ruche`` token of each attached domain of ``ids`` (no session open meanwhile): note since when it
    is missing (``domain.proof_lost``), forget that when it is back, and detach a domain whose token has been missing
    [domains] lost_days (back to pending, its instance's run queued: the name may have changed hands). Gives the
    domains detached."""
    with store.session() as session:
        targets = [(d.id, d.name, d.token) for d in session.scalars(select(Domain).where(Domain.id.in_(ids)))
                   if d.status == "attached"]  # fmt: skip
    resolver = resolver_of(workspace)
    missing = {identifier: token_problem(resolver, name, token) for identifier, name, token in targets}
    lost_before = utc_now() - timedelta(days=workspace.config.domains.lost_days)
    detached = []
    with store.session() as session:
        for identifier, problem in missing.items():
            domain = session.get(Domain, identifier)
            if domain is None or domain.status != "attached":
                continue
            address = domain.instance.address
            if problem is None:
                if domain.proof_lost_at is not None:
                    domain.proof_lost_at = None
                    record_event(session, kind="domain.proof_back", subject=address, actor=actor,
                                 detail={"domain": domain.name})  # fmt: skip
            elif domain.proof_lost_at is None:
                domain.proof_lost_at = utc_now()
                record_event(session, kind="domain.proof_lost", subject=address, actor=actor,
                             detail={"domain": domain.name, "problem": problem})  # fmt: skip
            elif as_utc(domain.proof_lost_at) < lost_before:
                domain.status, domain.proof_lost_at = "pending", None
                domain.problem, domain.checked_at, domain.tls_status = f"[token]: {problem}", utc_now(), "unknown"
                sync_instance(session, domain.instance)
                record_event(session, kind="domain.detached", subject=address, actor=actor,
                             detail={"domain": domain.name, "problem": problem})  # fmt: skip
                enqueue(session, server=domain.instance.server.name, instance_address=address, requested_by=actor)
                detached.append({"domain": domain.name, "instance": address})
    return detached


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


def audit_findings(workspace: Workspace, store: StateStore, *, server: str | None = None) -> list[Finding]:
    """`ruche audit`'s ``domains.*`` rules for every attached domain of a running instance (on ``server`` only, if
    given), looked at now with no session open: its certificate served and valid beyond [domains]
    certificate_warning_days, its name still pointing at its server, its ``_ruche`` TXT token still published. The
    TLS checks are recorded as `ruche domain verify` records them."""
    settings = workspace.config.domains
    with store.session() as session:
        attached = [d for d in domains_of(session) if d.status == "attached" and d.instance.state == "running"
                    and (server is None or d.instance.server.name == server)]  # fmt: skip
        targets = _targets(session, attached)
        ids = [d.id for d in attached]
    check_served(workspace, store, ids)
    with store.session() as session:
        seen = {d.id: (d.tls_status, d.tls_detail, as_utc(d.tls_not_after) if d.tls_not_after else None,
                       d.instance.server.name)
                for d in session.scalars(select(Domain).where(Domain.id.in_(ids)))}  # fmt: skip
    resolver = resolver_of(workspace)
    findings, now = [], utc_now()
    for target in targets:
        if target.id not in seen:
            continue
        tls_status, tls_detail, not_after, server_name = seen[target.id]
        where = f"{target.name} ({target.instance})"
        if tls_status != "ok":
            findings.append(Finding("domains.certificate-valid", where, tls_detail,
                                    f"read Caddy's log on {server_name} (`journalctl -u caddy`) for the ACME errors; "
                                    "the name must point at the server and port 80 be open to the CA"))  # fmt: skip
        elif expiring(not_after, now, settings.certificate_warning_days):
            findings.append(Finding("domains.certificate-valid", where,
                                    f"its certificate expires on {as_utc(not_after):%Y-%m-%d %H:%M} UTC, within "
                                    f"{settings.certificate_warning_days} days, and was not renewed",
                                    f"Caddy renews a third of the way before expiry: read its log on {server_name} "
                                    "(`journalctl -u caddy`) for why it could not"))  # fmt: skip
        pointer, _addresses = pointer_problem(resolver, target.name, target.server, target.server_address)
        if pointer:
            findings.append(Finding("domains.points-here", where, pointer,
                                    "the association publishes the record again, or `ruche domain remove` it"))  # fmt: skip
        token = token_problem(resolver, target.name, target.token)
        if token:
            findings.append(Finding("domains.token-kept", where, token,
                                    "the association publishes the TXT record again (a domain whose proof is gone "
                                    "may have changed hands), or `ruche domain remove` it"))  # fmt: skip
    return findings
