"""The collective's transparency report, for its public page: what it offers, for how many associations,
where the data lives, how it is backed up and how well that was checked, how available the services
were over the period, what went wrong, which versions of each service the instances run (how many are
behind the version new instances get, or past their upstream support), the collective's footprint over the
last full month (operations/footprint: energy, carbon, manufacturing; the constants used), and the software it
all runs on.
Read from the state only; every date is counted against the report's own (``now``, injectable for tests).

Associations are counted; only those that agreed (`ruche association listing SLUG agreed`) are named, and only
theirs of the footprint's figures are shown.
Nothing secret or internal goes in: no address, no e-mail, no repository credentials.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from importlib import metadata
from pathlib import Path

from babel.dates import format_skeleton
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.catalog import Catalog, Service, support_status
from orchestrator.config import WorkspaceConfig
from orchestrator.i18n import LANGUAGES, translator
from orchestrator.operations.footprint import footprint, last_full_month
from orchestrator.state.models import (
    Association,
    BackupRun,
    HealthCheck,
    Instance,
    Run,
    Server,
    Upgrade,
    as_utc,
    utc_now,
)

TEMPLATES_DIR = Path(__file__).parent / "templates"
FORMATS = ("md", "html")
# An instance is behind when it has run a version older than the one new instances get for longer than this.
BEHIND_AFTER_DAYS = 30


@dataclass
class ServiceLine:
    name: str
    description: str
    version: str
    instances: int
    checks: int = 0
    healthy: int = 0

    @property
    def availability(self) -> float | None:
        return round(100 * self.healthy / self.checks, 2) if self.checks else None


@dataclass
class Report:
    collective: str
    generated_at: str
    period_start: str
    period_end: str
    period_days: int
    services: list[ServiceLine]
    associations_hosted: int
    associations_named: list[str]
    servers: list[dict]
    backups: dict
    incidents: list[dict]
    software: list[dict]
    versions_in_use: dict = field(default_factory=dict)
    overall_availability: float | None = None
    checks: int = 0
    footprint: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def backup_target(repository: str | None) -> str | None:
    """Where snapshots go, without path or account: ``SFTP (backup.example.org)``, ``S3 (s3.example.org)``."""
    if repository is None:
        return None
    sftp = re.match(r"^sftp:[^@]+@([^:]+):", repository)
    if sftp:
        return f"SFTP ({sftp.group(1)})"
    s3 = re.match(r"^s3:https?://([^/]+)/", repository)
    if s3:
        return f"S3 ({s3.group(1)})"
    return "local"


def _version_of(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def gather(session: Session, config: WorkspaceConfig, catalog: Catalog, *, days: int, language: str,
           now: datetime | None = None) -> Report:  # fmt: skip
    """Read the report's figures from the state; ``now`` (default: the current time) ends its period."""
    end = as_utc(now) if now is not None else utc_now()
    start = end - timedelta(days=days)
    instances = [i for i in session.scalars(select(Instance)) if i.state in ("running", "suspended", "failed")]
    services = {sid: ServiceLine(name=s.name.model_dump()[language], description=s.description.model_dump()[language],
                                 version=s.version, instances=sum(1 for i in instances if i.service_id == sid))
                for sid, s in catalog.services.items()}  # fmt: skip
    checks = session.execute(select(HealthCheck.service_id, HealthCheck.health).where(HealthCheck.at >= start)).all()
    for service_id, health in checks:
        if service_id in services:
            services[service_id].checks += 1
            services[service_id].healthy += health == "healthy"
    hosted_ids = {i.association_id for i in instances}
    associations = [a for a in session.scalars(select(Association).order_by(Association.name)) if a.id in hosted_ids]
    servers = []
    for server in session.scalars(select(Server).order_by(Server.name)):
        servers.append({"name": server.name, "role": server.role, "labels": dict(sorted(server.labels.items())),
                        "instances": sum(1 for i in instances if i.server_id == server.id)})  # fmt: skip
    verifications = list(
        session.scalars(select(BackupRun).where(BackupRun.kind == "verify", BackupRun.started_at >= start))
    )
    backups_done = list(
        session.scalars(select(BackupRun).where(BackupRun.kind == "backup", BackupRun.started_at >= start))
    )
    last_verify = max(verifications, key=lambda r: as_utc(r.started_at), default=None)
    retention = sorted({(o.backup_retention.daily, o.backup_retention.weekly, o.backup_retention.monthly)
                        for o in config.offers.values()})  # fmt: skip
    backups = {
        "enabled": config.backup.repository is not None,
        "schedule": config.backup.schedule,
        "target": backup_target(config.backup.repository),
        "retention": [{"daily": d, "weekly": w, "monthly": m} for d, w, m in retention],
        "backups": len(backups_done), "backups_failed": sum(1 for r in backups_done if r.status != "success"),
        "verifications": len(verifications), "verifications_failed": sum(1 for r in verifications if r.status != "success"),
        "last_verification": None if last_verify is None else {
            "at": as_utc(last_verify.started_at).strftime("%Y-%m-%d"), "ok": last_verify.status == "success"},
    }  # fmt: skip
    incidents = []
    for run in session.scalars(
        select(Run).where(Run.started >= start, Run.status != "successful").order_by(Run.started)
    ):
        incidents.append({"at": as_utc(run.started).strftime("%Y-%m-%d %H:%M"), "kind": "run", "what": run.playbook})
    for restore in session.scalars(select(BackupRun).where(BackupRun.kind == "restore", BackupRun.started_at >= start)):
        incidents.append({"at": as_utc(restore.started_at).strftime("%Y-%m-%d %H:%M"), "kind": "restore",
                          "what": catalog_name(catalog, restore.instance_address, instances, language)})  # fmt: skip
    for upgrade in session.scalars(select(Upgrade).where(Upgrade.started_at >= start,
                                                         Upgrade.status.in_(("rolled_back", "rollback_failed")))):  # fmt: skip
        incidents.append({"at": as_utc(upgrade.started_at).strftime("%Y-%m-%d %H:%M"), "kind": upgrade.status,
                          "what": f"{services[upgrade.service_id].name if upgrade.service_id in services else upgrade.service_id}"
                                  f" {upgrade.from_version} → {upgrade.to_version}"})  # fmt: skip
    incidents.sort(key=lambda i: i["at"])
    total = sum(s.checks for s in services.values())
    healthy = sum(s.healthy for s in services.values())
    software = [{"name": "ruche", "version": _version_of("ruche"), "licence": "AGPL-3.0-or-later"},
                {"name": "Ansible (ansible-core)", "version": _version_of("ansible-core"), "licence": "GPL-3.0-or-later"},
                {"name": "Podman", "version": "", "licence": "Apache-2.0"},
                {"name": "Caddy", "version": "", "licence": "Apache-2.0"},
                {"name": "restic", "version": "", "licence": "BSD-2-Clause"},
                {"name": "Debian GNU/Linux", "version": "", "licence": "DFSG"}]  # fmt: skip
    return Report(
        collective=config.collective, generated_at=end.strftime("%Y-%m-%d %H:%M UTC"), period_start=start.strftime("%Y-%m-%d"),
        period_end=end.strftime("%Y-%m-%d"), period_days=days, services=[s for s in services.values()],
        associations_hosted=len(associations), associations_named=[a.name for a in associations if a.listed],
        servers=servers, backups=backups, incidents=incidents, software=software,
        versions_in_use=versions_in_use(session, catalog, instances, now=end, language=language),
        overall_availability=round(100 * healthy / total, 2) if total else None, checks=total,
        footprint=collective_footprint(session, config, now=end, language=language),
    )  # fmt: skip


FOOTPRINT_TOTALS = (
    "energy_kwh",
    "carbon_kg_co2e",
    "embodied_kg_co2e",
    "total_kg_co2e",
    "cpu_hours",
    "backup_gb_months",
)


def collective_footprint(session: Session, config: WorkspaceConfig, *, now: datetime, language: str) -> dict:
    """The footprint of the last full month before ``now`` (operations/footprint): the collective's totals, how
    many associations were measured, the constants used, and the figures of the associations that agreed to be
    named (no other's)."""
    start, end = last_full_month(now)
    result = footprint(session, config, start=start, end=end)
    measured = [entry for entry in result["associations"] if entry["instances"]]
    listed = set(session.scalars(select(Association.slug).where(Association.listed.is_(True))))
    totals = result["totals"]
    method = result["method"]
    _ = translator(language)
    intensities = sorted({(server["country"] or "", server["intensity_g_per_kwh"]) for server in result["servers"]})
    return {
        "month": start.strftime("%Y-%m"), "month_name": format_skeleton("yMMMM", start, locale=language),
        "measured": bool(measured), "associations_counted": len(measured),
        "totals": {**{key: totals[key] for key in FOOTPRINT_TOTALS},
                   "storage_gb_months": totals["disk_gb_months"] + totals["database_gb_months"]},
        "pue": method["pue"]["value"],
        "intensities": [{"country": country, "g_per_kwh": grams} for country, grams in intensities],
        "intensities_text": ", ".join(_("%(grams)s g CO2e (%(country)s)", grams=_format_number(grams, language),
                                        country=country or _("world average")) for country, grams in intensities),
        "embodied_kg_co2e": method["embodied_kg_co2e"]["value"], "lifetime_years": method["lifetime_years"]["value"],
        # the constants the collective set itself (the others are ruche's published defaults), servers' own figures
        "changed": [name for name, constant in method.items() if name not in ("servers", "formulas")
                    and not constant["default"]],
        "servers_with_own_figures": len(method["servers"]),
        "method": method["formulas"],
        "named": [{"name": entry["name"], **{key: entry[key] for key in FOOTPRINT_TOTALS}}
                  for entry in sorted(measured, key=lambda entry: entry["name"]) if entry["slug"] in listed],
    }  # fmt: skip


def versions_in_use(session: Session, catalog: Catalog, instances: list[Instance], *, now: datetime,
                    language: str) -> dict:  # fmt: skip
    """For each service with instances, the versions they run (counted, never named), and two flags.

    Behind: an instance on a version its entry lists before the one new instances get (or no longer lists
    at all), since longer than BEHIND_AFTER_DAYS: counted from its last succeeded upgrade to that version
    (``upgrades``), else from its creation. Past support: on a version whose ``end_of_support`` is before
    ``now``'s day. A version the entry lists after the one new instances get is newer, never behind.
    Instances of a service gone from the catalogue are left out, as in the services' table (`ruche audit`
    flags them)."""
    arrived: dict[tuple[int, str], datetime] = {}  # (instance id, version) -> its last succeeded upgrade to it
    for instance_id, version, finished, started in session.execute(
        select(Upgrade.instance_id, Upgrade.to_version, Upgrade.finished_at, Upgrade.started_at).where(
            Upgrade.status == "succeeded", Upgrade.instance_id.is_not(None))
    ):  # fmt: skip
        at = as_utc(finished or started)
        if (instance_id, version) not in arrived or at > arrived[instance_id, version]:
            arrived[instance_id, version] = at
    limit = now - timedelta(days=BEHIND_AFTER_DAYS)
    today = now.date()
    services = []
    for service_id, service in catalog.services.items():
        running = [i for i in instances if i.service_id == service_id]
        if not running:
            continue
        rows = {}
        for instance in sorted(running, key=lambda i: _version_rank(service, i.service_version)):
            row = rows.get(instance.service_version)
            if row is None:
                row = rows[instance.service_version] = _version_row(service, instance.service_version, today)
            row["instances"] += 1
            since = arrived.get((instance.id, instance.service_version), as_utc(instance.created_at))
            row["behind"] += int(row["older"] and since < limit)
        listed = list(rows.values())
        services.append({
            "service": service_id, "name": service.name.model_dump()[language], "new_instances_version": service.version,
            "instances": len(running), "behind": sum(r["behind"] for r in listed),
            "past_end_of_support": sum(r["instances"] for r in listed if r["support"] == "ended"), "versions": listed,
        })  # fmt: skip
    return {
        "behind_after_days": BEHIND_AFTER_DAYS,
        "instances": sum(s["instances"] for s in services),
        "behind": sum(s["behind"] for s in services),
        "past_end_of_support": sum(s["past_end_of_support"] for s in services),
        "services": services,
    }


def _version_rank(service: Service, version: str) -> tuple[int, str]:
    """Versions in the entry's order (oldest first), those it no longer lists before them."""
    listed = [v.version for v in service.versions]
    return (listed.index(version) + 1 if version in listed else 0), version


def _version_row(service: Service, version: str, today: date) -> dict:
    listed = [v.version for v in service.versions]
    release = service.versions[listed.index(version)] if version in listed else None
    status = support_status(release, today) if release is not None else None
    if release is None:
        support = "unlisted"
    elif status is not None:
        support = status[0]
    else:
        support = "supported" if release.end_of_support else "unknown"
    return {
        "version": version, "new_instances": version == service.version, "listed": release is not None,
        # older than the one new instances get: listed before it, or no longer listed
        "older": release is None or listed.index(version) < listed.index(service.version),
        "end_of_support": release.end_of_support.isoformat() if release and release.end_of_support else None,
        "support": support, "support_days": status[1] if status else None, "instances": 0, "behind": 0,
    }  # fmt: skip


def figures(report: Report) -> dict:
    """The report as plain data (``ruche report --json``): the same figures as its text."""
    data = asdict(report)
    for line, service in zip(data["services"], report.services, strict=True):
        line["availability"] = service.availability
    return data


def catalog_name(catalog: Catalog, address: str, instances: list[Instance], language: str) -> str:
    """The service of an instance by its catalogue name (the instance's own name is the association's business)."""
    found = next((i for i in instances if i.address == address), None)
    if found is None or found.service_id not in catalog.services:
        return "-"
    return catalog.services[found.service_id].name.model_dump()[language]


def render(report: Report, *, language: str, format: str) -> str:
    if language not in LANGUAGES:
        raise ValueError(f"language {language!r}: one of {', '.join(LANGUAGES)}")
    if format not in FORMATS:
        raise ValueError(f"format {format!r}: one of {', '.join(FORMATS)}")
    environment = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(["html"]),
                              trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)  # fmt: skip
    _ = translator(language)
    return environment.get_template(f"transparency.{format}").render(
        r=report, _=_, gettext=_, lang=language, number=lambda v: _format_number(v, language)
    )


def _format_number(value: float | None, language: str) -> str:
    if value is None:
        return "-"
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text.replace(".", ",") if language == "fr" else text
