"""One watch: everything that can go wrong without anyone asking looked at, recorded as alerts, and told.

What it looks at (orchestrator/alerts.py KINDS): every instance's health through Caddy; every server over SSH
(reachable, its /srv file system and memory against [alerts]); each instance's backups against its offer's
window and [audit] verify_max_age_days; each association's measured disk and memory against its offer
(measured again when the newest measure is older than [alerts] usage_minutes); each target's last run; runs
queued or running without a worker for [alerts] queue_stuck_minutes; the own domains' certificates. Network
checks run with no state session open (SQLite's write lock). Then state/alerts.record_watch opens, refreshes
and clears alerts, and the notices due are told (operations/notify.py): the admins of everything, an
association that opted in of its own instances' alerts only, in its language.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from orchestrator.alerts import KINDS, Finding
from orchestrator.domains import expiring
from orchestrator.notices import admin_text, member_text
from orchestrator.operations.backup_lapses import backup_lapses
from orchestrator.operations.context import Progress, no_progress
from orchestrator.operations.health_checks import check_and_record_health
from orchestrator.operations.notify import admin_channels, mail_channel, send
from orchestrator.operations.own_domains import check_served
from orchestrator.operations.usage import measure_usage
from orchestrator.quotas import find_offer
from orchestrator.remote import SshTarget, for_each_server, run_command
from orchestrator.state.alerts import alert_as_dict, mark_told, open_alerts, record_watch
from orchestrator.state.database import StateStore
from orchestrator.state.instances import ACTIVE_STATES, list_instances
from orchestrator.state.leases import release_lease, take_lease
from orchestrator.state.models import (
    Alert,
    Association,
    Domain,
    Instance,
    Lease,
    QueuedRun,
    Run,
    Server,
    UsageSample,
    as_utc,
    utc_now,
)
from orchestrator.state.servers import list_servers
from orchestrator.workspace import Workspace

GIB, MIB = 1024**3, 1024**2
LEASE_SECONDS = 15 * 60  # the longest a watch may take before another may start (its holder died)
# one fixed command (no value from anyone): the /srv file system's use, then the memory figures
PROBE = ["sh", "-c", "df -P -B1 /srv 2>/dev/null || df -P -B1 /; grep -E '^(MemTotal|MemAvailable):' /proc/meminfo"]


def _stamp(moment) -> str:
    return "never" if moment is None else f"{as_utc(moment):%Y-%m-%d %H:%M} UTC"


def parse_probe(text: str) -> tuple[int, int, int, int]:
    """(disk used, disk size, memory total, memory available), in bytes, from PROBE's answer."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    disk = next(parts for parts in lines if parts[0].startswith("/") or parts[0] in ("overlay", "tmpfs", "none")
                or (len(parts) >= 6 and parts[1].isdigit()))  # fmt: skip
    memory = {parts[0].rstrip(":"): int(parts[1]) * 1024 for parts in lines if parts[0].endswith(":")}
    size, used = int(disk[1]), int(disk[2])
    return used, size, memory["MemTotal"], memory["MemAvailable"]


def _instance_values(instance: Instance) -> dict:
    return {"instance": instance.address, "address": instance.primary_domain or instance.domain}


def health_findings(instances: list[Instance]) -> list[Finding]:
    return [
        Finding("instance.down", i.address, f"{i.address} ({i.service_id} on {i.server.name}): {i.health_detail}",
                association=i.association.slug,
                values={**_instance_values(i), "detail": i.health_detail, "since": _stamp(i.health_checked_at)})
        for i in instances
        if i.desired_state == "present" and i.state in ("running", "failed") and i.health != "healthy"
    ]  # fmt: skip


def server_findings(workspace: Workspace, answers: dict) -> tuple[list[Finding], set[tuple[str, str]]]:
    """Findings from each server's PROBE answer (or error); and the (kind, server) pairs left unknown."""
    settings = workspace.config.alerts
    findings, unknown = [], set()
    for name, answer in sorted(answers.items()):
        if isinstance(answer, Exception):
            findings.append(Finding("server.unreachable", name, f"server {name}: {str(answer)[:300]}",
                                    values={"detail": str(answer)[:300]}))  # fmt: skip
            unknown |= {("server.disk", name), ("server.memory", name)}
            continue
        try:
            used, size, total, available = parse_probe(answer)
        except (StopIteration, KeyError, ValueError, IndexError):
            unknown |= {("server.disk", name), ("server.memory", name)}
            continue
        disk = round(100 * used / size) if size else 0
        if disk >= settings.disk_used_percent:
            findings.append(Finding("server.disk", name, f"server {name}: /srv is {disk}% full ({used / GIB:.1f} of "
                                    f"{size / GIB:.1f} GiB; [alerts] disk_used_percent {settings.disk_used_percent})",
                                    values={"percent": disk}))  # fmt: skip
        memory = round(100 * (total - available) / total) if total else 0
        if memory >= settings.memory_used_percent:
            findings.append(Finding("server.memory", name, f"server {name}: memory {memory}% used ({available / MIB:.0f} "
                                    f"MiB available of {total / MIB:.0f}; [alerts] memory_used_percent "
                                    f"{settings.memory_used_percent})", values={"percent": memory}))  # fmt: skip
    return findings, unknown


def backup_findings(workspace: Workspace, session: Session, instances: list[Instance]) -> list[Finding]:
    """Lapsed backups (operations/backup_lapses); an instance younger than the limit that never had one is not late."""
    now = utc_now()
    by_address = {i.address: i for i in instances}
    findings = []
    for lapse in backup_lapses(workspace, session, instances):
        instance = by_address[lapse.instance]
        if lapse.last_at is None and now - as_utc(instance.created_at) < lapse.limit:
            continue
        values = {**_instance_values(instance), "last": _stamp(lapse.last_at), "since": _stamp(lapse.last_at)}
        if lapse.kind == "backup":
            findings.append(Finding("backup.overdue", lapse.instance, f"{lapse.instance}: no good backup in the last "
                                    f"{lapse.limit.total_seconds() / 3600:g} h (its offer's window; "
                                    f"{lapse.last_text})", association=lapse.association, values=values))  # fmt: skip
        else:
            findings.append(Finding("backup.unverified", lapse.instance, f"{lapse.instance}: no passed `backup verify` "
                                    f"in the last {lapse.limit.days} days ({lapse.last_text})",
                                    association=lapse.association, values=values))  # fmt: skip
    return findings


def quota_findings(workspace: Workspace, session: Session) -> tuple[list[Finding], set[tuple[str, str]]]:
    """Associations whose newest measures (each active instance's latest usage sample) exceed their offer; and
    those left unknown (a newest measure that failed: its server did not answer)."""
    newest = (select(UsageSample.instance_id, func.max(UsageSample.taken_at).label("taken_at"))
              .group_by(UsageSample.instance_id).subquery())  # fmt: skip
    rows = session.execute(
        select(Association.slug, Association.offer, UsageSample.disk_bytes, UsageSample.memory_bytes, UsageSample.error)
        .join(Instance, Instance.association_id == Association.id)
        .join(UsageSample, UsageSample.instance_id == Instance.id)
        .join(newest, (UsageSample.instance_id == newest.c.instance_id) & (UsageSample.taken_at == newest.c.taken_at))
        .where(Instance.state.in_(ACTIVE_STATES))
    )  # fmt: skip
    used: dict[str, dict] = {}
    unknown: set[tuple[str, str]] = set()
    for slug, offer_name, disk, memory, error in rows:
        if error or disk is None:
            unknown.add(("quota.over", slug))
        entry = used.setdefault(slug, {"offer": offer_name, "disk": 0, "memory": 0})
        entry["disk"] += disk or 0
        entry["memory"] += memory or 0
    findings = []
    for slug, entry in sorted(used.items()):
        offer = find_offer(workspace.config.offers, entry["offer"])
        if offer is None or ("quota.over", slug) in unknown:
            continue
        over = []
        if entry["disk"] > offer.disk_gb * GIB:
            over.append(("disk", f"{entry['disk'] / GIB:.2f} GiB", f"{offer.disk_gb} GiB"))
        if entry["memory"] > offer.memory_mb * MIB:
            over.append(("memory", f"{entry['memory'] / MIB:.0f} MiB", f"{offer.memory_mb} MiB"))
        if over:
            what, amount, limit = over[0]
            findings.append(Finding("quota.over", slug, f"{slug} (offer {entry['offer']}): " + "; ".join(
                f"{w} {a} measured, the offer gives {lim}" for w, a, lim in over), association=slug,
                values={"used": amount, "what": what, "limit": limit}))  # fmt: skip
    return findings, unknown


def run_findings(workspace: Workspace, session: Session) -> list[Finding]:
    """Targets (a server, an instance) whose last run, applied directly or by a worker, failed within [alerts]
    failed_run_days; a target gone since (instance deleted, server removed) is not one."""
    since = utc_now() - timedelta(days=workspace.config.alerts.failed_run_days)
    last: dict[str, tuple] = {}  # target -> (finished, ok, what)
    for run in session.scalars(select(Run).where(Run.finished >= since).order_by(Run.finished)):
        last[run.target] = (
            as_utc(run.finished),
            run.status == "successful" and run.rc == 0,
            f"run {run.id}: {run.status}",
        )
    queued = session.scalars(select(QueuedRun).where(QueuedRun.finished_at >= since, QueuedRun.state.in_(
        ("done", "failed", "interrupted"))).order_by(QueuedRun.finished_at))  # fmt: skip
    for entry in queued:
        target = entry.instance_address or entry.server
        finished = as_utc(entry.finished_at)
        if target not in last or last[target][0] <= finished:
            error = (entry.result or {}).get("error") or entry.state
            last[target] = (finished, entry.state == "done", f"queued run {entry.id}: {str(error)[:300]}")
    servers = set(session.scalars(select(Server.name)))
    live = {i.address for i in list_instances(session) if i.state in ACTIVE_STATES}
    findings = []
    for target, (finished, ok, what) in sorted(last.items()):
        if ok or not (target in servers or target in live or target == "all"):
            continue
        association = target.split("/")[0] if "/" in target else None
        findings.append(Finding("run.failed", target, f"{target}'s last run failed on {finished:%Y-%m-%d %H:%M} UTC "
                                f"({what})", association=association,
                                values={"since": f"{finished:%Y-%m-%d %H:%M} UTC"}))  # fmt: skip
    return findings


def queue_findings(workspace: Workspace, session: Session) -> list[Finding]:
    """Runs queued that no worker took, or running whose worker stopped beating, for [alerts] queue_stuck_minutes."""
    limit = timedelta(minutes=workspace.config.alerts.queue_stuck_minutes)
    now = utc_now()
    findings = []
    for entry in session.scalars(select(QueuedRun).where(QueuedRun.state.in_(("queued", "running")))):
        since = (
            entry.created_at
            if entry.state == "queued"
            else (entry.heartbeat_at or entry.started_at or entry.created_at)
        )
        if now - as_utc(since) < limit:
            continue
        waiting = "waits for a worker" if entry.state == "queued" else f"has had no heartbeat from {entry.claimed_by}"
        target = entry.instance_address or entry.server
        findings.append(Finding("queue.stuck", str(entry.id), f"queued run {entry.id} ({target}) {waiting} since "
                                f"{_stamp(since)}: is `ruche worker` running?",
                                values={"since": _stamp(since)}))  # fmt: skip
    return findings


def certificate_findings(workspace: Workspace, session: Session) -> list[Finding]:
    """Attached own domains whose last TLS check failed or whose certificate expires within the warning days."""
    days = workspace.config.domains.certificate_warning_days
    now = utc_now()
    findings = []
    for domain in session.scalars(
        select(Domain).where(Domain.status == "attached", Domain.tls_checked_at.is_not(None))
    ):
        instance = domain.instance
        if instance.state != "running" or instance.desired_state != "present":
            continue
        not_after = as_utc(domain.tls_not_after) if domain.tls_not_after else None
        if domain.tls_status == "ok" and not expiring(not_after, now, days):
            continue
        detail = (domain.tls_detail if domain.tls_status != "ok"
                  else f"it expires on {_stamp(not_after)}, within {days} days, and was not renewed")  # fmt: skip
        findings.append(Finding("certificate.expiring", domain.name, f"{domain.name} ({instance.address}): {detail}",
                                association=instance.association.slug,
                                values={**_instance_values(instance), "domain": domain.name, "detail": detail[:300],
                                        "since": _stamp(domain.tls_checked_at)}))  # fmt: skip
    return findings


def _usage_due(workspace: Workspace, session: Session) -> bool:
    minutes = workspace.config.alerts.usage_minutes
    if minutes == 0:
        return False
    newest = session.scalar(select(func.max(UsageSample.taken_at)))
    return newest is None or utc_now() - as_utc(newest) >= timedelta(minutes=minutes)


def watch(workspace: Workspace, store: StateStore, *, progress: Progress = no_progress, tell: bool = True) -> dict:
    """One watch (see the module), unless another process is watching right now (the "watch" lease: several
    workers, or a timer beside a worker, never tell an alert twice). Gives ``{"alerts": [open alerts], "opened":
    [ids], "cleared": [ids], "notices": [{"alert", "event", "error"}], "seconds", "skipped": None or who
    watches}``."""
    holder = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
    if not take_lease(store, "watch", holder, seconds=LEASE_SECONDS):
        with store.session() as session:
            lease = session.get(Lease, "watch")
            open_now = [alert_as_dict(a) for a in open_alerts(session)]
            return {"alerts": open_now, "opened": [], "cleared": [], "notices": [], "checked": {}, "seconds": 0,
                    "skipped": f"another watch runs ({lease.holder if lease else '?'})"}  # fmt: skip
    try:
        return {"skipped": None, **_watch(workspace, store, holder, progress=progress, tell=tell)}
    finally:
        release_lease(store, "watch", holder)


def _watch(workspace: Workspace, store: StateStore, holder: str, *, progress: Progress, tell: bool) -> dict:
    started = time.monotonic()
    findings: list[Finding] = []
    with store.session() as session:
        instances = [i for i in list_instances(session) if i.state in ACTIVE_STATES]
        check_and_record_health(workspace, workspace.catalog, instances)
        findings += health_findings(instances)
        targets = [SshTarget.of(s) for s in list_servers(session)]
        domain_ids = list(session.scalars(select(Domain.id).where(Domain.status == "attached")))
    progress(f"checked {len(instances)} instance(s) through Caddy; probing {len(targets)} server(s)")
    answers = for_each_server(targets, lambda target: run_command(target, PROBE, timeout=30), parallel=16)
    found, unknown = server_findings(workspace, answers)
    findings += found
    if domain_ids:
        check_served(workspace, store, domain_ids)
    with store.session() as session:
        if _usage_due(workspace, session):
            progress("measuring the instances' disk and memory")
            measure_usage(workspace, session, progress=progress)
    if not take_lease(store, "watch", holder, seconds=LEASE_SECONDS):  # this watch overran: another took over
        return {"alerts": [], "opened": [], "cleared": [], "notices": [], "checked": {}, "seconds": 0,
                "skipped": "this watch overran its lease; another one took over"}  # fmt: skip
    with store.session() as session:
        instances = [i for i in list_instances(session) if i.state in ACTIVE_STATES]
        findings += backup_findings(workspace, session, instances)
        found, unknown_quotas = quota_findings(workspace, session)
        findings += found
        unknown |= unknown_quotas
        findings += run_findings(workspace, session)
        findings += queue_findings(workspace, session)
        findings += certificate_findings(workspace, session)
        remind = workspace.config.alerts.remind_hours
        now = utc_now()
        decision, notices, opened_ids = record_watch(session, findings, now=now, unknown=unknown,
                                         remind_every=timedelta(hours=remind) if remind else None)  # fmt: skip
        views = {}
        for notice in notices:
            alert = session.get(Alert, notice.alert_id)
            views[notice.alert_id] = {**alert_as_dict(alert), "told": dict(alert.told or {})}
        contacts = {a.slug: (a.email, a.language) for a in session.scalars(select(Association)
                    .where(Association.alerts_opt_in.is_(True)))}  # fmt: skip
        cleared_ids = list(decision.cleared)
    told = tell_notices(workspace, store, notices, views, contacts, holder=holder) if tell else []
    with store.session() as session:
        open_now = [alert_as_dict(a) for a in open_alerts(session)]
    return {"alerts": open_now, "opened": opened_ids, "cleared": cleared_ids, "notices": told,
            "checked": {"instances": len(instances), "servers": len(targets)},
            "seconds": round(time.monotonic() - started, 2)}  # fmt: skip


def tell_notices(workspace: Workspace, store: StateStore, notices: list, views: dict[int, dict],
                 contacts: dict[str, tuple[str, str]], *, holder: str) -> list[dict]:  # fmt: skip
    """Tell each notice on the admins' channels, and to its association when it opted in (its own instance's alert
    of a kind it is told of; never a reminder). A channel that already took the notice is skipped (a failed one
    alone is tried again at the next watch); each notice's delivery is recorded at once (a watch cut off half-way
    does not tell again what it told). Stops when the watch lease is no longer this watch's."""
    told: list[dict] = []
    if not notices:
        return told
    channels = admin_channels(workspace)
    collective = workspace.config.collective
    language = workspace.config.alerts.language
    relay = workspace.config.mail is not None
    for notice in notices:
        if not take_lease(store, "watch", holder, seconds=LEASE_SECONDS):
            break  # another watch took over (this one overran): it tells the rest
        view = views[notice.alert_id]
        done = set((view.get("told") or {}).get(notice.event, [])) if notice.event != "reminder" else set()
        targets = [(c.key, c, admin_text(language, notice.event, view, collective=collective)) for c in channels]
        errors: list[str] = []
        contact = contacts.get(view["association"] or "")
        if contact and notice.event != "reminder" and KINDS[view["kind"]].scope == "instance" and relay:
            text = member_text(contact[1], notice.event, view, collective=collective)
            if text is not None:
                try:
                    targets.append(("association", mail_channel(workspace, [contact[0]]), text))
                except ValueError as error:
                    errors.append(f"association: {error}")
        delivered = []
        for key, channel, text in targets:
            if key in done:
                continue
            error = send([channel], text)
            if error is None:
                delivered.append(key)
            else:
                errors.append(error if key != "association" else f"association: {error}")
        complete = notice.event == "reminder" or {key for key, _c, _t in targets} <= done | set(delivered)
        with store.session() as session:
            mark_told(session, notice, at=utc_now(), delivered=delivered, complete=complete, error="; ".join(errors))
        told.append({"alert": notice.alert_id, "event": notice.event, "kind": view["kind"], "subject": view["subject"],
                     "sent_to": len(delivered), "association_told": "association" in delivered,
                     "error": "; ".join(errors) or None})  # fmt: skip
    return told
