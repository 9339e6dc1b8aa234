"""The fleet's energy and carbon over a period, per association, instance and server: the state (measured use from
state/usage, successful backups' sizes, servers, instances' reservations) gathered into the pure
``orchestrator.footprint`` with [footprint]'s constants. One function, :func:`footprint`, for `ruche footprint`,
the web page and the transparency report.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from orchestrator.config import DEFAULT_CARBON_INTENSITY, FootprintSettings, WorkspaceConfig
from orchestrator.errors import ConfigError
from orchestrator.footprint import FIGURES, InstanceUse, backup_gb_months, compute, server_facts
from orchestrator.state.models import Association, BackupRun, Instance, as_utc
from orchestrator.state.servers import list_servers
from orchestrator.state.usage import usage_totals

SHARES = ("cpu_share_of_used", "cpu_share_of_capacity", "memory_share", "idle_share")


def footprint(session: Session, config: WorkspaceConfig, *, start: datetime, end: datetime,
              association_id: int | None = None) -> dict:  # fmt: skip
    """The footprint of [start, end) as plain JSON-ready data (docs/footprint.md says each figure):

    - ``period``: ``start``, ``end`` (ISO 8601, UTC) and ``hours``;
    - ``method``: every constant of [footprint] used, ``{"value", "default", "source"}`` (its description, which
      cites where the default comes from, or "set in ruche.toml" and the description under ``default_source``;
      ``carbon_intensity`` also lists the countries ``set``), and the servers' own figures;
    - ``associations``: ``[{slug, name, <figures>, instances: [{id, address, server, <figures>, <shares>}]}]``
      sorted by slug (only ``association_id``'s when given; shares are still of the whole fleet's servers);
    - ``servers``: ``[{name, role, kind, country, hours, vcpus, idle_watts, max_watts, intensity_g_per_kwh,
      estimated, cpu_utilisation (capped at 1), cpu_capped, reserved_memory_share, <figures>, to_collective,
      collective_kwh}]``;
    - ``collective``: what no association carries (the servers' memory no instance reserved, servers on which
      nothing was measured);
    - ``totals``: every figure of the associations plus the collective's (energy, carbon, embodied: the servers'
      sums).

    Figures: ``cpu_hours``, ``memory_gb_hours`` (measured), ``reserved_memory_gb_hours``, ``disk_gb_months``,
    ``database_gb_months``, ``backup_gb_months``, ``idle_kwh``, ``dynamic_kwh``, ``backup_kwh``, ``energy_kwh``
    (after the PUE), ``carbon_kg_co2e`` (of that energy), ``embodied_kg_co2e`` (manufacturing share),
    ``total_kg_co2e``.
    """
    start, end = as_utc(start).astimezone(UTC), as_utc(end).astimezone(UTC)
    settings = config.footprint
    period_hours = (end - start).total_seconds() / 3600
    servers = list_servers(session)
    facts = []
    for server in servers:
        registered = max(start, as_utc(server.created_at).astimezone(UTC)) if server.created_at else start
        hours = max(0.0, (end - registered).total_seconds() / 3600)
        try:
            facts.append(server_facts(server.name, server.role, server.cpu, server.memory_mb, server.disk_gb,
                                      server.labels or {}, hours, settings))  # fmt: skip
        except ValueError as refused:
            raise ConfigError(str(refused), hint="docs/footprint.md says each server's figures") from None
    server_names = {server.id: server.name for server in servers}
    totals = usage_totals(session, start, end)
    backups = _backup_gb_months(session, start, end)
    associations = {row.id: row for row in session.execute(select(Association.id, Association.slug, Association.name))}
    uses = []
    measured = set(totals) | set(backups)
    # every instance as plain rows (no IN list of a whole fleet's ids), those measured kept
    rows = session.execute(select(Instance.id, Instance.name, Instance.association_id, Instance.server_id,
                                  Instance.memory_mb))  # fmt: skip
    for row in (row for row in rows if row.id in measured):
        used = totals.get(row.id, {})
        uses.append(InstanceUse(
            id=row.id, address=f"{associations[row.association_id].slug}/{row.name}",
            association=associations[row.association_id].slug, server=server_names.get(row.server_id, "?"),
            reserved_memory_mb=row.memory_mb, hours=(used.get("seconds") or 0) / 3600,
            cpu_hours=used.get("cpu_hours") or 0.0, memory_gb_hours=used.get("memory_gb_hours") or 0.0,
            disk_gb_months=used.get("disk_gb_months") or 0.0, database_gb_months=used.get("database_gb_months") or 0.0,
            backup_gb_months=backups.get(row.id, 0.0),
        ))  # fmt: skip
    result = compute(facts, uses, settings)
    instances_of: dict[str, list] = defaultdict(list)
    for instance_id, figures in sorted(result["instances"].items(), key=lambda item: item[1]["address"]):
        instances_of[figures["association"]].append(
            {
                "id": instance_id,
                "address": figures["address"],
                "server": figures["server"],
                **{key: figures[key] for key in (*FIGURES, *SHARES)},
            }  # fmt: skip
        )
    listed = []
    for association in sorted(associations.values(), key=lambda row: row.slug):
        if association_id is not None and association.id != association_id:
            continue
        figures = result["associations"].get(association.slug, dict.fromkeys(FIGURES, 0.0))
        listed.append({"slug": association.slug, "name": association.name, **figures,
                       "instances": instances_of.get(association.slug, [])})  # fmt: skip
    return {
        "period": {"start": start.isoformat(), "end": end.isoformat(), "hours": period_hours},
        "method": method(settings),
        "associations": listed,
        "servers": [{"name": name, **summary} for name, summary in sorted(result["servers"].items())],
        "collective": result["collective"],
        "totals": result["totals"],
    }


def last_full_month(now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the last full month in UTC before ``now``: what `ruche footprint` gives by default, the
    members' space and the transparency report show."""
    this_month = as_utc(now).astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    previous = (this_month.year, this_month.month - 1) if this_month.month > 1 else (this_month.year - 1, 12)
    return datetime(*previous, 1, tzinfo=UTC), this_month


def method(settings: FootprintSettings) -> dict:
    """Every constant of [footprint] as used: its value, whether it is ruche's default, and its description (where
    the default comes from); the servers' own figures under ``servers``."""
    defaults = FootprintSettings()
    constants = {}
    for name, info in FootprintSettings.model_fields.items():
        if name == "servers":
            continue
        value = getattr(settings, name)
        default = value == getattr(defaults, name)
        constants[name] = {"value": value, "default": default,
                           "source": info.description if default else "set in ruche.toml"}  # fmt: skip
        if not default:
            constants[name]["default_source"] = info.description
    intensities = constants["carbon_intensity"]
    intensities["set"] = sorted(country for country, value in settings.carbon_intensity.items()
                                if DEFAULT_CARBON_INTENSITY.get(country) != value)  # fmt: skip
    if intensities["set"]:
        intensities["source"] = f"set in ruche.toml for {', '.join(intensities['set'])}; the others: defaults"
    constants["servers"] = {name: own.model_dump(exclude_none=True) for name, own in sorted(settings.servers.items())}
    constants["formulas"] = "docs/footprint.md"
    return constants


def _backup_gb_months(session: Session, start: datetime, end: datetime) -> dict[int, float]:
    """Each instance's backup GB-months in [start, end), by id (orchestrator.footprint.backup_gb_months): in one
    query, its successful backups that finished before ``end`` and were not followed by another before ``start``
    (LEAD over finished_at per instance, on the index (instance_id, finished_at)). A deleted instance's last backup
    (its final one) holds nothing after it finished: one deleted before the period counts nothing."""
    held = (BackupRun.kind == "backup") & (BackupRun.status == "success") & BackupRun.instance_id.is_not(None) \
        & BackupRun.total_bytes.is_not(None) & BackupRun.finished_at.is_not(None)  # fmt: skip
    runs = (
        select(BackupRun.instance_id, BackupRun.finished_at, BackupRun.total_bytes,
               func.lead(BackupRun.finished_at).over(partition_by=BackupRun.instance_id,
                                                     order_by=BackupRun.finished_at).label("next_at"))
        .where(held, BackupRun.finished_at < end)
        .subquery()
    )  # fmt: skip
    query = (
        select(runs.c.instance_id, runs.c.finished_at, runs.c.total_bytes, runs.c.next_at, Instance.state)
        .join(Instance, Instance.id == runs.c.instance_id)
        .where(or_(runs.c.next_at > start,
                   and_(runs.c.next_at.is_(None), or_(Instance.state != "deleted", runs.c.finished_at >= start))))
    )  # fmt: skip
    snapshots: dict[int, list] = defaultdict(list)
    deleted: set[int] = set()
    for row in session.execute(query):
        snapshots[row.instance_id].append((as_utc(row.finished_at).astimezone(UTC), int(row.total_bytes)))
        if row.state == "deleted":
            deleted.add(row.instance_id)
    figures = {instance_id: backup_gb_months(found, start, end, deleted=instance_id in deleted)
               for instance_id, found in snapshots.items()}  # fmt: skip
    return {instance_id: value for instance_id, value in figures.items() if value > 0}
