"""The watch's checks: each looks at one thing that can go wrong and gives alerts.Finding for it (the watch,
operations/watch.py, runs them and records the alerts). The network is looked at by the caller (health through
Caddy, the servers' probe, TLS): these read its answers and the state."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.alerts import Finding
from orchestrator.domains import expiring
from orchestrator.operations.backup_lapses import backup_lapses
from orchestrator.quotas import find_offer
from orchestrator.state.instances import ACTIVE_STATES
from orchestrator.state.models import (
    Association,
    Domain,
    Instance,
    QueuedRun,
    Run,
    Server,
    as_utc,
    utc_now,
)
from orchestrator.state.usage import latest_samples
from orchestrator.workspace import Workspace

GIB, MIB = 1024**3, 1024**2
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
                values={**_instance_values(i), "detail": i.health_detail, "since": _stamp(i.health_checked_at),
                        "service": i.service_id, "server": i.server.name})
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
                                    values={"percent": disk, "used_gib": f"{used / GIB:.1f}", "size_gib":
                                            f"{size / GIB:.1f}", "threshold": settings.disk_used_percent}))  # fmt: skip
        memory = round(100 * (total - available) / total) if total else 0
        if memory >= settings.memory_used_percent:
            findings.append(Finding("server.memory", name, f"server {name}: memory {memory}% used ({available / MIB:.0f} "
                                    f"MiB available of {total / MIB:.0f}; [alerts] memory_used_percent "
                                    f"{settings.memory_used_percent})", values={"percent": memory,
                                    "available_mib": f"{available / MIB:.0f}", "total_mib": f"{total / MIB:.0f}",
                                    "threshold": settings.memory_used_percent}))  # fmt: skip
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
        values = {
            **_instance_values(instance),
            "last": _stamp(lapse.last_at),
            "since": _stamp(lapse.last_at),
            "window_hours": f"{lapse.limit.total_seconds() / 3600:g}",
            "days": lapse.limit.days,
        }
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
    samples = latest_samples(session)
    rows = session.execute(select(Instance.id, Association.slug, Association.offer)
                           .join(Association, Instance.association_id == Association.id)
                           .where(Instance.state.in_(ACTIVE_STATES)))  # fmt: skip
    used: dict[str, dict] = {}
    unknown: set[tuple[str, str]] = set()
    for instance_id, slug, offer_name in rows:
        sample = samples.get(instance_id)
        if sample is None:
            continue
        if sample.error or sample.disk_bytes is None:
            unknown.add(("quota.over", slug))
        entry = used.setdefault(slug, {"offer": offer_name, "disk": 0, "memory": 0})
        entry["disk"] += sample.disk_bytes or 0
        entry["memory"] += sample.memory_bytes or 0
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
                values={"used": amount, "what": what, "limit": limit, "offer": entry["offer"], "over": over}))  # fmt: skip
    return findings, unknown


def run_findings(workspace: Workspace, session: Session, live: set[str]) -> list[Finding]:
    """Targets (a server, an instance) whose last run, applied directly or by a worker, failed within [alerts]
    failed_run_days; a target gone since (instance deleted, server removed; ``live``: the active instances'
    addresses) is not one."""
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
    findings = []
    for target, (finished, ok, what) in sorted(last.items()):
        if ok or not (target in servers or target in live or target == "all"):
            continue
        association = target.split("/")[0] if "/" in target else None
        findings.append(Finding("run.failed", target, f"{target}'s last run failed on {finished:%Y-%m-%d %H:%M} UTC "
                                f"({what})", association=association,
                                values={"since": f"{finished:%Y-%m-%d %H:%M} UTC", "detail": what}))  # fmt: skip
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
                                values={"since": _stamp(since), "target": target, "worker": entry.claimed_by or "",
                                        "waiting": entry.state}))  # fmt: skip
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
                                        "expires": _stamp(not_after) if domain.tls_status == "ok" else "",
                                        "days": days,
                                        "since": _stamp(domain.tls_checked_at)}))  # fmt: skip
    return findings
