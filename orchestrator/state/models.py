"""SQLAlchemy models of ruche's state. Schema changes go through an Alembic migration."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """Give ``moment`` as an aware UTC time (SQLite gives stored times back naive)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso_utc(moment: datetime, timespec: str = "seconds") -> str:
    """Give ``moment`` as ISO 8601 in UTC with its offset (``2026-05-01T09:30:00+00:00``), naive or not."""
    return as_utc(moment).astimezone(UTC).isoformat(timespec=timespec)


class Base(DeclarativeBase):
    pass


class Server(Base):
    """A server of the collective's pool (production or lab alike)."""

    __tablename__ = "servers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    address: Mapped[str] = mapped_column(String(255))
    ssh_user: Mapped[str] = mapped_column(String(32), default="root")
    ssh_port: Mapped[int] = mapped_column(Integer, default=22)
    ssh_key_path: Mapped[str | None] = mapped_column(String(4096), nullable=True)
    ssh_known_hosts_path: Mapped[str | None] = mapped_column(String(4096), nullable=True)
    cpu: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    disk_gb: Mapped[int] = mapped_column(Integer)
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    role: Mapped[str] = mapped_column(String(16), default="apps")
    draining: Mapped[bool] = mapped_column(Boolean, default=False)
    origin: Mapped[str] = mapped_column(String(16), default="manual")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class Association(Base):
    """An association the collective hosts services for."""

    __tablename__ = "associations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    offer: Mapped[str | None] = mapped_column(String(63), nullable=True)
    # password of the association's restic repository, as ansible-vault ciphertext (made at first backup)
    backup_password: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Its restic repository was found or created by ruche (`ruche-backup init`): no need to ask again.
    backup_repository_ready: Mapped[bool] = mapped_column(Boolean, default=False)
    # agreed to be named in the collective's transparency report (`ruche association listing`)
    listed: Mapped[bool] = mapped_column(Boolean, default=False)
    # told by mail (its ``email``, in ``language``) of the alerts on its own instances (`ruche association alerts`)
    alerts_opt_in: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str] = mapped_column(String(8), default="fr")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class Instance(Base):
    """One deployed (or planned) service of one association, addressed as ASSOCIATION/NAME."""

    __tablename__ = "instances"
    __table_args__ = (
        UniqueConstraint("association_id", "name", name="uq_instance_association_name"),
        Index("uq_instance_id_slot", "id_slot", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    association_id: Mapped[int] = mapped_column(ForeignKey("associations.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(32))
    service_id: Mapped[str] = mapped_column(String(32))
    # The upstream version it runs: one of its catalogue entry's `versions` (changed by upgrades only).
    service_version: Mapped[str] = mapped_column(String(64))
    size: Mapped[str] = mapped_column(String(16))
    cpu: Mapped[float] = mapped_column(Float)
    memory_mb: Mapped[int] = mapped_column(Integer)
    disk_gb: Mapped[int] = mapped_column(Integer)
    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id", ondelete="RESTRICT"))
    parameters: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # What the admin wants: present (running), suspended, or absent (to be removed).
    desired_state: Mapped[str] = mapped_column(String(16), default="present")
    # What the last run achieved: planned, running, suspended, failed, deleted.
    state: Mapped[str] = mapped_column(String(16), default="planned")
    domain: Mapped[str] = mapped_column(String(255))
    # Loopback port on its server that Caddy proxies the instance's domain to.
    http_port: Mapped[int] = mapped_column(Integer)
    # name -> ansible-vault ciphertext; never plaintext.
    secrets: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # Digest of the deployment last applied successfully (None: never); `ruche plan` compares it.
    applied_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_run_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    health: Mapped[str] = mapped_column(String(16), default="unknown")
    health_detail: Mapped[str] = mapped_column(String(500), default="")
    health_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    # Its subordinate UID/GID range (orchestrator.idranges), fleet-wide; freed (None) once deleted.
    id_slot: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The association's own domains attached to it (proven, see Domain), sorted; copied here so that its
    # deployment is read from its own row (state/render_keys.py); primary_domain: the one its application
    # calls itself by (None: its collective name, ``domain``).
    own_domains: Mapped[list[str]] = mapped_column(JSON, default=list)
    primary_domain: Mapped[str | None] = mapped_column(String(253), nullable=True)

    association: Mapped[Association] = relationship()
    server: Mapped[Server] = relationship()

    @property
    def address(self) -> str:
        return f"{self.association.slug}/{self.name}"

    @property
    def identifier(self) -> str:
        """The instance's name on its server (units, network, directories): ``association--name``."""
        return f"{self.association.slug}--{self.name}"


class Domain(Base):
    """An association's own domain claimed for one of its instances (`ruche domain add`): pending until its proof
    holds (`ruche domain verify`: DNS TXT token, the name pointing at the instance's server, an HTTP round trip
    through that server's Caddy), then attached (served, in the inventory). The last TLS check says whether it is
    served and with which certificate."""

    __tablename__ = "domains"
    __table_args__ = (
        UniqueConstraint("association_id", "name", name="uq_domain_association_name"),
        # one association holds a name: two proofs of it at once cannot both attach it
        Index(
            "uq_domain_attached_name",
            "name",
            unique=True,
            sqlite_where=text("status = 'attached'"),
            postgresql_where=text("status = 'attached'"),
        ),  # fmt: skip
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(253), index=True)  # normalised: IDNA (A-labels), lower case, no dot
    association_id: Mapped[int] = mapped_column(ForeignKey("associations.id", ondelete="CASCADE"))
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"))
    token: Mapped[str] = mapped_column(String(80))  # what _ruche.NAME's TXT record must hold (not a secret)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, attached
    # once attached, it becomes its instance's primary address (`ruche domain add --primary`)
    wants_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # the last proof attempt that failed (pending), or the last audit of an attached domain's DNS
    problem: Mapped[str] = mapped_column(String(1000), default="")
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # the last TLS handshake on the name (attached): ok or failing, the certificate's issuer and expiry
    tls_status: Mapped[str] = mapped_column(String(16), default="unknown")
    tls_detail: Mapped[str] = mapped_column(String(1000), default="")
    tls_issuer: Mapped[str] = mapped_column(String(500), default="")
    tls_not_after: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    tls_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # since when an attached domain's _ruche token has been missing (the worker detaches it after [domains] lost_days)
    proof_lost_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)

    association: Mapped[Association] = relationship()
    instance: Mapped[Instance] = relationship()


class Run(Base):
    """One provisioning run (an ansible-runner run), kept for the audit trail."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    playbook: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    rc: Mapped[int] = mapped_column(Integer)
    changed: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    hosts: Mapped[dict] = mapped_column(JSON, default=dict)
    artifacts: Mapped[str] = mapped_column(String(4096))
    started: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Event(Base):
    """The audit trail: who did what to which subject, and when; a hash chain (see state/event_chain.py)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int | None] = mapped_column(
        Integer, nullable=True, unique=True, index=True
    )  # place in the chain, from 1
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    actor: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(120))
    association: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)  # its slug, if any
    detail: Mapped[dict] = mapped_column(JSON, default=dict)  # changes: {"before": {...}, "after": {...}}
    previous_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    digest: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Alert(Base):
    """What the watcher found wrong (orchestrator/alerts.py: its kinds), from when it was first seen until it
    cleared; told when it opens, reminded while open, told again when it clears (operations/watch.py)."""

    __tablename__ = "alerts"
    __table_args__ = (
        # one open alert per kind and subject: a watch finds it again, it does not open a second
        Index(
            "uq_alert_open",
            "kind",
            "subject",
            unique=True,
            sqlite_where=text("cleared_at IS NULL"),
            postgresql_where=text("cleared_at IS NULL"),
        ),  # fmt: skip
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(300))  # an instance's address, a server's name, a domain...
    association: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)  # its slug, if its own
    summary: Mapped[str] = mapped_column(String(1000))  # the evidence, in the admins' words (English)
    values: Mapped[dict] = mapped_column(JSON, default=dict)  # the figures a translated text is filled with
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    cleared_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)  # its opening told
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    cleared_notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    notify_error: Mapped[str] = mapped_column(String(1000), default="")  # the last delivery that failed, masked
    # which channels (operations/notify.Channel.key) took each notice: a failed one alone is tried again
    told: Mapped[dict] = mapped_column(JSON, default=dict)
    acked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    acked_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    ack_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)


class Lease(Base):
    """A job only one process may do at a time across the control machines (e.g. "watch"): held by ``holder``
    until ``until`` (state/leases.py)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120))
    until: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EventChain(Base):
    """The one row that every append takes first (so writers never fork the chain) and the chain's head."""

    __tablename__ = "event_chain"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    length: Mapped[int] = mapped_column(Integer, default=0)
    head: Mapped[str] = mapped_column(String(64))


class RateLimitKey(Base):
    """A rate limiter's key (e.g. a client address), locked by each hit (see state/rate_limits.py)."""

    __tablename__ = "rate_limit_keys"
    __table_args__ = (UniqueConstraint("name", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(64))


class RateLimitHit(Base):
    __tablename__ = "rate_limit_hits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("rate_limit_keys.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HealthCheck(Base):
    """One health check of an instance, kept for availability over a period (the transparency report)."""

    __tablename__ = "health_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_address: Mapped[str] = mapped_column(String(80))
    service_id: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    health: Mapped[str] = mapped_column(String(16))  # healthy | unhealthy


class UsageSample(Base):
    """What an instance used when measured: bytes of its volumes, of its database, of memory."""

    __tablename__ = "usage_samples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"))
    taken_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    disk_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    database_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    memory_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    error: Mapped[str] = mapped_column(String(500), default="")
    # CPU time of its running containers so far (the sum of their counters, as ruche-usage reports it; None: not
    # measured), each container's {name: [started_at, usec]}, and the CPU it used since the instance's previous
    # sample (counters that started again count whole; None: no previous sample to compare with).
    cpu_usec: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    cpu_containers: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    cpu_delta_usec: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The time this sample stands for: since the instance's previous sample without error, at most a day (0: none).
    seconds: Mapped[int] = mapped_column(Integer, default=0)

    instance: Mapped[Instance] = relationship()


class UsageRollup(Base):
    """An instance's samples of one hour or one UTC day (``period``) rolled up: operations/usage_rollup.

    Each sample counts in the period its ``taken_at`` falls in. ``cpu_usec`` sums the samples' CPU deltas;
    the ``*_byte_seconds`` sum each sample's value times its ``seconds`` (a step: the measured value held
    since the previous sample); ``seconds`` sums the time the samples stand for; ``max_*`` the largest values."""

    __tablename__ = "usage_rollups"
    __table_args__ = (
        Index("uq_usage_rollup", "instance_id", "period", "period_start", unique=True),
        Index("ix_usage_rollups_period_start", "period", "period_start"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(8))  # hour | day
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    samples: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    cpu_usec: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    memory_byte_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    disk_byte_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    database_byte_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_memory_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    max_disk_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    max_database_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class BackupRun(Base):
    """One backup, restore or verification of an instance, with restic's figures."""

    __tablename__ = "backup_runs"
    # the footprint's backup GB-months: each instance's backups in time order (operations/footprint)
    __table_args__ = (Index("ix_backup_runs_instance_finished", "instance_id", "finished_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("instances.id", ondelete="SET NULL"), nullable=True)
    instance_address: Mapped[str] = mapped_column(String(80))
    server: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(16))  # backup | restore | verify
    reason: Mapped[str] = mapped_column(String(16))  # manual | scheduled | safety | final | scratch
    status: Mapped[str] = mapped_column(String(16))  # success | failed
    snapshot_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    duration_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    data_added_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    total_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class Upgrade(Base):
    """One upgrade of an instance from one version to another: its steps, outcome and safety snapshot."""

    __tablename__ = "upgrades"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("instances.id", ondelete="SET NULL"), nullable=True)
    instance_address: Mapped[str] = mapped_column(String(80), index=True)
    service_id: Mapped[str] = mapped_column(String(32))
    server: Mapped[str] = mapped_column(String(63))
    from_version: Mapped[str] = mapped_column(String(64))
    to_version: Mapped[str] = mapped_column(String(64))
    # running | succeeded | rolled_back | rollback_failed
    status: Mapped[str] = mapped_column(String(20))
    step: Mapped[str] = mapped_column(String(200), default="")  # the step running, or the one that failed
    requested_by: Mapped[str] = mapped_column(String(120))
    fleet: Mapped[str | None] = mapped_column(String(40), nullable=True)  # the fleet upgrade it belongs to
    safety_snapshot: Mapped[str | None] = mapped_column(String(64), nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # steps: [{"name", "status", "output", "seconds"}], error, rollback
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class CatalogCheck(Base):
    """One run of `ruche catalog check`: an entry's whole lifecycle tried for real on one server."""

    __tablename__ = "catalog_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service_id: Mapped[str] = mapped_column(String(32), index=True)
    version: Mapped[str] = mapped_column(String(64))
    server: Mapped[str] = mapped_column(String(63))
    association: Mapped[str] = mapped_column(String(32))  # the throwaway association it ran in
    ruche_version: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16))
    steps_passed: Mapped[int] = mapped_column(Integer, default=0)
    steps_total: Mapped[int] = mapped_column(Integer, default=0)
    failed_step: Mapped[str | None] = mapped_column(String(60), nullable=True)
    requested_by: Mapped[str] = mapped_column(String(120))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # status: running | passed | failed | interrupted
    # steps: [{"name", "status", "seconds", "log", "error", "commands"}], log_dir, cleanup_problems
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class QueuedRun(Base):
    """A provisioning run waiting for, or taken by, a worker (one server's apply, or one instance's)."""

    __tablename__ = "queued_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    server: Mapped[str] = mapped_column(String(63))
    instance_address: Mapped[str | None] = mapped_column(String(80), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="queued")  # queued | running | done | failed | interrupted
    running_server: Mapped[str | None] = mapped_column(String(63), nullable=True, unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    requested_by: Mapped[str] = mapped_column(String(120))
    request_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    run_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    progress: Mapped[str] = mapped_column(String(500), default="")
    result: Mapped[dict] = mapped_column(JSON, default=dict)
    kind: Mapped[str] = mapped_column(String(16), default="apply")  # apply | upgrade
    payload: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # upgrade: {"to", "fleet"}
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ServiceRequest(Base):
    """An association's request for a service: pending → approved/rejected → provisioning → done/failed."""

    __tablename__ = "service_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    association_id: Mapped[int] = mapped_column(ForeignKey("associations.id", ondelete="CASCADE"))
    service_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(32))
    size: Mapped[str] = mapped_column(String(16))
    parameters: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str] = mapped_column(String(1000), default="")
    requested_by: Mapped[str] = mapped_column(String(120))
    instance_address: Mapped[str | None] = mapped_column(String(80), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)

    association: Mapped[Association] = relationship()


class Invite(Base):
    """A member's personal sign-in link: only its SHA-256 is stored; it expires and can be revoked."""

    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    association_id: Mapped[int] = mapped_column(ForeignKey("associations.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(320), default="")
    # the member's name as the association's audit trail shows it (optional)
    name: Mapped[str] = mapped_column(String(80), default="")
    # the association's manager: invites and removes its members, suspends, resumes and deletes its services
    manager: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    association: Mapped[Association] = relationship()


class WebSession(Base):
    """A signed-in browser: the cookie holds a random token, the state its SHA-256 and a CSRF token."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invite_id: Mapped[int | None] = mapped_column(ForeignKey("invites.id", ondelete="CASCADE"), nullable=True)
    association_id: Mapped[int | None] = mapped_column(ForeignKey("associations.id", ondelete="CASCADE"), nullable=True)
    admin_id: Mapped[int | None] = mapped_column(ForeignKey("admins.id", ondelete="CASCADE"), nullable=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    association: Mapped[Association | None] = relationship()
    admin: Mapped[Admin | None] = relationship()
    invite: Mapped[Invite | None] = relationship()


class Admin(Base):
    """An admin of the web app; the password is kept only as an Argon2id hash."""

    __tablename__ = "admins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class JoinApplication(Base):
    """An association not registered yet asking to join (public page); an admin accepts or declines it."""

    __tablename__ = "join_applications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    message: Mapped[str] = mapped_column(String(2000), default="")
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | accepted | declined
    reason: Mapped[str] = mapped_column(String(1000), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(120), nullable=True)


class MemberExport(Base):
    """An association's data prepared for its members to download from their space (issue 27): queued (the worker
    writes the bundle), then ready (a file under WORKSPACE/exports), then downloaded once or expired a day after it
    was ready (the file deleted), or failed. Only the download link's SHA-256 is kept (state/exports.py)."""

    __tablename__ = "member_exports"
    __table_args__ = (
        # one export queued or ready per association at a time: a second request is refused by the database itself
        Index(
            "uq_member_export_open",
            "association_id",
            unique=True,
            sqlite_where=text("status IN ('queued', 'ready')"),
            postgresql_where=text("status IN ('queued', 'ready')"),
        ),  # fmt: skip
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    association_id: Mapped[int] = mapped_column(ForeignKey("associations.id", ondelete="CASCADE"), index=True)
    requested_by: Mapped[str] = mapped_column(String(120))
    # the worker's run that prepares it: an export whose run ended without marking it (a worker lost) has failed
    queued_run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued | ready | downloaded | expired | failed
    # relative to the workspace: exports/RANDOM.tar.gz (a random name, never a member's input)
    path: Mapped[str] = mapped_column(String(200))
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # the SHA-256 of the download link's token (named like invites' and sessions': the audit trail hides it)
    token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now, index=True)
    ready_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    downloaded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    error: Mapped[str] = mapped_column(String(1000), default="")  # for the admins: the member reads a text of theirs

    association: Mapped[Association] = relationship()
