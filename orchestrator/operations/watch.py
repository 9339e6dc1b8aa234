"""One watch: everything that can go wrong without anyone asking looked at, recorded as alerts, and told (the
checks themselves: operations/watch_checks.py).

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

import time
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from orchestrator.alerts import KINDS, Finding
from orchestrator.notices import admin_text, member_text
from orchestrator.operations.context import Progress, no_progress
from orchestrator.operations.health_checks import check_and_record_health
from orchestrator.operations.notify import admin_channels, mail_channel, send
from orchestrator.operations.own_domains import check_served
from orchestrator.operations.usage import measure_usage
from orchestrator.operations.watch_checks import (
    PROBE,
    backup_findings,
    certificate_findings,
    health_findings,
    queue_findings,
    quota_findings,
    run_findings,
    server_findings,
)
from orchestrator.remote import SshTarget, for_each_server, run_command
from orchestrator.state.alerts import alert_as_dict, mark_told, open_alerts, record_watch
from orchestrator.state.database import StateStore
from orchestrator.state.instances import ACTIVE_STATES, list_instances
from orchestrator.state.leases import lease_holder, release_lease, take_lease
from orchestrator.state.models import (
    Alert,
    Association,
    Domain,
    Lease,
    UsageSample,
    as_utc,
    utc_now,
)
from orchestrator.state.servers import list_servers
from orchestrator.workspace import Workspace

LEASE_SECONDS = 15 * 60  # the longest a watch may take before another may start (its holder died)


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
    holder = lease_holder()
    if not take_lease(store, "watch", holder, seconds=LEASE_SECONDS):
        with store.session() as session:
            lease = session.get(Lease, "watch")
        return _skipped(store, f"another watch runs ({lease.holder if lease else '?'})")
    try:
        return {"skipped": None, **_watch(workspace, store, holder, progress=progress, tell=tell)}
    finally:
        release_lease(store, "watch", holder)


def _skipped(store: StateStore, reason: str) -> dict:
    """A watch's outcome when it did not run (``reason``): the alerts open as recorded, nothing else."""
    with store.session() as session:
        open_now = [alert_as_dict(a) for a in open_alerts(session)]
    return {"alerts": open_now, "opened": [], "cleared": [], "notices": [], "checked": {}, "seconds": 0,
            "skipped": reason}  # fmt: skip


def summary(outcome: dict) -> str:
    """A watch's outcome in one line (`ruche watch`'s and the worker's progress)."""
    if outcome["skipped"]:
        return f"skipped: {outcome['skipped']}"
    return (f"{len(outcome['alerts'])} open, {len(outcome['opened'])} opened, {len(outcome['cleared'])} cleared, "
            f"{len(outcome['notices'])} notice(s)")  # fmt: skip


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
        due = _usage_due(workspace, session)
    if due:
        progress("measuring the instances' disk, memory and CPU time")
        measure_usage(workspace, store, progress=progress)
    if not take_lease(store, "watch", holder, seconds=LEASE_SECONDS):  # this watch overran: another took over
        return _skipped(store, "this watch overran its lease; another one took over")
    with store.session() as session:
        instances = [i for i in list_instances(session) if i.state in ACTIVE_STATES]
        findings += backup_findings(workspace, session, instances)
        found, unknown_quotas = quota_findings(workspace, session)
        findings += found
        unknown |= unknown_quotas
        findings += run_findings(workspace, session, {i.address for i in instances})
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
