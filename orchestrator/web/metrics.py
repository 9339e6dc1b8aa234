"""`ruche serve`'s /metrics: the state read for Prometheus (prometheus-client's exposition format), and who may.

One scrape reads the state in one short session of plain SELECTs of columns (never ORM objects for the whole
fleet): instances' health, the last good backup and verification of each, each association's measured use
against its offer, own domains' certificates, the run queue, the runs and the open alerts. Who may read it:
``[metrics]`` in ruche.toml (``allowed``); nobody when neither its token nor its clients are set.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections import defaultdict
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from orchestrator.alerts import KINDS
from orchestrator.config import MetricsSettings, Offer
from orchestrator.state.alerts import counts_by_kind
from orchestrator.state.database import StateStore
from orchestrator.state.instances import ACTIVE_STATES
from orchestrator.state.models import (
    Association,
    BackupRun,
    Domain,
    Instance,
    QueuedRun,
    Run,
    Server,
    as_utc,
)
from orchestrator.state.usage import latest_samples

GIB = 1024**3
MIB = 1024**2
# the instances whose health the web checks and the watcher alerts on: wanted up, and deployed (or failed)
HEALTH_STATES = ("running", "failed")
QUEUE_STATES = ("queued", "running", "done", "failed", "interrupted")


def allowed(settings: MetricsSettings, *, authorization: str | None, client: str | None,
            forwarded: bool = False, proxies_trusted: bool = False) -> bool:  # fmt: skip
    """Whether a scrape may read the metrics: its bearer token's SHA-256 is ``token_sha256`` (compared in
    constant time), or its address (the connection's, or X-Forwarded-For's from a `[web] trusted_proxies` only:
    uvicorn's forwarded-allow-ips) is in ``clients``. Neither configured: nobody. A request that came through a
    proxy (``forwarded``: it carries X-Forwarded-For or Forwarded) while no proxy is trusted is judged by its token
    alone: behind a reverse proxy on the same machine, every visitor's connection comes from 127.0.0.1."""
    scheme, _, token = (authorization or "").partition(" ")
    if settings.token_sha256 and scheme.lower() == "bearer" and token.strip():
        digest = hashlib.sha256(token.strip().encode("utf-8")).hexdigest()
        if hmac.compare_digest(digest, settings.token_sha256):
            return True
    if settings.clients and client and (proxies_trusted or not forwarded):
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:  # a dual-stack socket's ::ffff:a.b.c.d
            address = address.ipv4_mapped
        return any(address in ipaddress.ip_network(entry, strict=False) for entry in settings.clients)
    return False


def _seconds(moment) -> float:
    return as_utc(moment).timestamp()


class StateCollector(Collector):
    """A custom collector: every scrape reads the state anew (nothing kept between scrapes)."""

    def __init__(self, store: StateStore, offers: dict[str, Offer]) -> None:
        self.store = store
        self.offers = offers

    def describe(self) -> list:
        return []  # registering must not read the state (prometheus-client would collect() once otherwise)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.store.session() as session:
            yield from self._instances(session)
            yield from self._backups(session)
            yield from self._usage(session)
            yield from self._certificates(session)
            yield from self._runs(session)
            alerts = counts_by_kind(session)
        family = GaugeMetricFamily("ruche_alerts_open", "Open alerts of the watcher (`ruche alerts`), by kind.",
                                   labels=["kind"])  # fmt: skip
        for kind in sorted(set(KINDS) | set(alerts)):
            family.add_metric([kind], alerts.get(kind, 0))
        yield family

    def _instances(self, session) -> Iterator[GaugeMetricFamily]:
        healthy = GaugeMetricFamily(
            "ruche_instance_healthy",
            "1 if the instance's last health check through Caddy passed, else 0 (instances wanted present, running or "
            "failed).",
            labels=["association", "address", "service", "server"],
        )
        checked = GaugeMetricFamily(
            "ruche_instance_health_checked_timestamp_seconds",
            "When the instance's health was last checked (Unix time).",
            labels=["association", "address", "service", "server"],
        )
        rows = session.execute(
            select(Association.slug, Instance.name, Instance.service_id, Server.name.label("server"), Instance.health,
                   Instance.health_checked_at)
            .join(Association, Instance.association_id == Association.id)
            .join(Server, Instance.server_id == Server.id)
            .where(Instance.desired_state == "present", Instance.state.in_(HEALTH_STATES))
            .order_by(Association.slug, Instance.name)
        )  # fmt: skip
        for row in rows:
            labels = [row.slug, f"{row.slug}/{row.name}", row.service_id, row.server]
            healthy.add_metric(labels, 1 if row.health == "healthy" else 0)
            if row.health_checked_at is not None:
                checked.add_metric(labels, _seconds(row.health_checked_at))
        yield healthy
        yield checked

    def _backups(self, session) -> Iterator[GaugeMetricFamily]:
        families = {
            "backup": GaugeMetricFamily(
                "ruche_backup_last_success_timestamp_seconds",
                "When the instance's last good backup finished (Unix time); absent until its first one.",
                labels=["association", "address"],
            ),
            "verify": GaugeMetricFamily(
                "ruche_backup_verify_last_success_timestamp_seconds",
                "When the instance's last passed `backup verify` finished (Unix time); absent until its first one.",
                labels=["association", "address"],
            ),
        }
        finished = func.max(func.coalesce(BackupRun.finished_at, BackupRun.started_at))
        rows = session.execute(
            select(Association.slug, Instance.name, BackupRun.kind, finished.label("finished"))
            .join(Instance, BackupRun.instance_id == Instance.id)
            .join(Association, Instance.association_id == Association.id)
            .where(BackupRun.status == "success", BackupRun.kind.in_(tuple(families)),
                   Instance.state.in_(ACTIVE_STATES))
            .group_by(Association.slug, Instance.name, BackupRun.kind)
            .order_by(Association.slug, Instance.name)
        )  # fmt: skip
        for row in rows:
            if row.finished is not None:
                families[row.kind].add_metric([row.slug, f"{row.slug}/{row.name}"], _seconds(row.finished))
        yield from families.values()

    def _usage(self, session) -> Iterator[GaugeMetricFamily]:
        help_used = (
            "Sum of the latest measure of each of the association's instances' {} (absent while one is unmeasured)."
        )
        disk_used = GaugeMetricFamily("ruche_association_disk_used_bytes", help_used.format("disk use"),
                                      labels=["association"])  # fmt: skip
        memory_used = GaugeMetricFamily("ruche_association_memory_used_bytes", help_used.format("memory use"),
                                        labels=["association"])  # fmt: skip
        disk_offer = GaugeMetricFamily("ruche_association_disk_offer_bytes",
                                       "The disk its offer ([offers] disk_gb) allows the association.",
                                       labels=["association"])  # fmt: skip
        memory_offer = GaugeMetricFamily("ruche_association_memory_offer_bytes",
                                         "The memory its offer ([offers] memory_mb) allows the association.",
                                         labels=["association"])  # fmt: skip
        samples = latest_samples(session)
        held: dict[int, list[int]] = defaultdict(list)
        for row in session.execute(
            select(Instance.id, Instance.association_id).where(Instance.state.in_(ACTIVE_STATES))
        ):
            held[row.association_id].append(row.id)
        for association in session.execute(
            select(Association.id, Association.slug, Association.offer).order_by(Association.slug)
        ):
            for family, column in ((disk_used, "disk_bytes"), (memory_used, "memory_bytes")):
                values = [getattr(samples[i], column) if i in samples else None for i in held[association.id]]
                if all(value is not None for value in values):
                    family.add_metric([association.slug], sum(values))
            offer = self.offers.get(association.offer) if association.offer else None
            if offer is not None:
                disk_offer.add_metric([association.slug], offer.disk_gb * GIB)
                memory_offer.add_metric([association.slug], offer.memory_mb * MIB)
        yield from (disk_used, memory_used, disk_offer, memory_offer)

    def _certificates(self, session) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "ruche_domain_certificate_expiry_timestamp_seconds",
            "When the certificate served for an attached own domain expires (Unix time), as last checked.",
            labels=["association", "address", "domain"],
        )
        rows = session.execute(
            select(Association.slug, Instance.name, Domain.name.label("domain"), Domain.tls_not_after)
            .join(Instance, Domain.instance_id == Instance.id)
            .join(Association, Domain.association_id == Association.id)
            .where(Domain.status == "attached", Domain.tls_not_after.is_not(None))
            .order_by(Domain.name)
        )  # fmt: skip
        for row in rows:
            family.add_metric([row.slug, f"{row.slug}/{row.name}", row.domain], _seconds(row.tls_not_after))
        yield family

    def _runs(self, session) -> Iterator[GaugeMetricFamily]:
        queue = GaugeMetricFamily("ruche_queue_runs", "Runs of the queue (`ruche queue`), by state.", labels=["state"])
        counted = dict(session.execute(select(QueuedRun.state, func.count()).group_by(QueuedRun.state)).all())
        for state in sorted(set(QUEUE_STATES) | set(counted)):
            queue.add_metric([state], counted.get(state, 0))
        yield queue
        runs = GaugeMetricFamily("ruche_runs", "Recorded playbook runs (`ruche runs`), by status.", labels=["status"])
        for status, count in sorted(session.execute(select(Run.status, func.count()).group_by(Run.status)).all()):
            runs.add_metric([status], count)
        yield runs


def exposition(store: StateStore, offers: dict[str, Offer]) -> bytes:
    """The metrics as one scrape's text (prometheus_client.CONTENT_TYPE_LATEST)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(store, offers))
    return generate_latest(registry)
