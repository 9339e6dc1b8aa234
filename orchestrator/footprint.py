"""Energy and carbon per association, pure: from each instance's measured use over a period (CPU-hours, memory,
storage, backups' sizes), each server's facts (vCPUs, memory, power, manufacturing emissions, country) and the
constants of [footprint], the share of each server every instance takes and what that share costs in kWh and
kgCO2e. No I/O: ``operations/footprint`` gathers the state into it (docs/footprint.md says the method).

Per application server over the hours it was registered in the period (``hours``):

- idle energy = idle_watts x hours, allocated to the instances on it by reserved memory-hours (their size's
  memory x the hours they were measured); the server's unreserved memory is shared pro rata among them;
- dynamic energy = (max_watts - idle_watts) x CPU-hours / vCPUs, each instance its own CPU-hours';
- embodied emissions = embodied_kg_co2e x hours / (lifetime_years x 8766 h), allocated like idle energy.

A backup server (role backup, where ruche measures no CPU) draws idle_watts + unmeasured_utilisation x (max -
idle); its energy and embodied emissions are allocated by backup GB-months fleet-wide. Energy is multiplied by the
PUE; carbon = energy x the grid intensity of the server's country. A server nothing can be allocated to (no
instance measured on it, no backup held) is the collective's own (``collective``), so that the associations'
figures plus the collective's are the servers' totals exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from orchestrator.config import FootprintSettings

HOURS_PER_YEAR = 8766  # 365.25 x 24
GB = 1000**3
HOURS_PER_MONTH = 730  # as state/usage counts a GB-month
FIGURES = ("cpu_hours", "memory_gb_hours", "reserved_memory_gb_hours", "disk_gb_months", "database_gb_months",
           "backup_gb_months", "idle_kwh", "dynamic_kwh", "backup_kwh", "energy_kwh", "carbon_kg_co2e",
           "embodied_kg_co2e", "total_kg_co2e")  # fmt: skip


@dataclass(frozen=True)
class ServerFacts:
    """A server as the footprint sees it: its capacity, its power and manufacturing figures (its own from
    [footprint.servers.NAME], else estimated: ``estimated`` names which), the grid intensity of its country."""

    name: str
    role: str
    vcpus: int
    memory_mb: int
    disk_gb: int
    hours: float  # registered in the period
    country: str | None
    idle_watts: float
    max_watts: float
    embodied_kg_co2e: float
    lifetime_years: float
    intensity_g_per_kwh: float
    estimated: tuple[str, ...] = ()


@dataclass(frozen=True)
class InstanceUse:
    """What one instance used in the period (state/usage's totals, its backups' GB-months) and its reservation."""

    id: int
    address: str
    association: str
    server: str
    reserved_memory_mb: int
    hours: float  # measured (usage samples' seconds / 3600)
    cpu_hours: float = 0.0
    memory_gb_hours: float = 0.0
    disk_gb_months: float = 0.0
    database_gb_months: float = 0.0
    backup_gb_months: float = 0.0


def server_facts(name: str, role: str, vcpus: int, memory_mb: int, disk_gb: int, labels: dict, hours: float,
                 settings: FootprintSettings) -> ServerFacts:  # fmt: skip
    """A server's facts from the state's record and [footprint]: its own figures where [footprint.servers.NAME]
    gives them, else the per-vCPU, per-GB and default figures; its country from its ``country`` label."""
    own = settings.servers.get(name)
    memory_gb, disk_tb = memory_mb / 1024, disk_gb / 1000
    base = settings.watts_per_memory_gb * memory_gb + settings.watts_per_disk_tb * disk_tb
    estimates = {
        "idle_watts": settings.idle_watts_per_vcpu * vcpus + base,
        "max_watts": settings.max_watts_per_vcpu * vcpus + base,
        "embodied_kg_co2e": settings.embodied_kg_co2e,
        "lifetime_years": settings.lifetime_years,
    }
    figures, estimated = {}, []
    for key, estimate in estimates.items():
        value = getattr(own, key) if own is not None else None
        if value is None:
            value = estimate
            estimated.append(key)
        figures[key] = value
    country = str(labels.get("country") or "").strip().upper() or None
    intensity = settings.carbon_intensity.get(country or "", settings.fallback_carbon_intensity)
    if country not in settings.carbon_intensity:
        estimated.append("intensity_g_per_kwh")
    figures["max_watts"] = max(figures["max_watts"], figures["idle_watts"])
    return ServerFacts(name=name, role=role, vcpus=vcpus, memory_mb=memory_mb, disk_gb=disk_gb, hours=max(0.0, hours),
                       country=country, intensity_g_per_kwh=intensity, estimated=tuple(estimated), **figures)  # fmt: skip


def backup_gb_months(backups: Iterable[tuple[datetime, int]], start: datetime, end: datetime) -> float:
    """GB-months of one instance's snapshots in [start, end): each successful backup's ``total_bytes`` (the
    snapshot's size before restic's deduplication) held from when it finished until the next one finished (or the
    end); ``backups`` as (finished_at, total_bytes), including the last one before ``start``."""
    ordered = sorted(backups)
    byte_seconds = 0.0
    for index, (finished, size) in enumerate(ordered):
        until = ordered[index + 1][0] if index + 1 < len(ordered) else end
        held_from, held_until = max(finished, start), min(until, end)
        if held_until > held_from:
            byte_seconds += size * (held_until - held_from).total_seconds()
    return byte_seconds / (GB * 3600 * HOURS_PER_MONTH)


@dataclass
class _Figures:
    values: dict = field(default_factory=lambda: dict.fromkeys(FIGURES, 0.0))

    def add(self, other: dict) -> None:
        for key in FIGURES:
            self.values[key] += other.get(key, 0.0)


def _server_energy(server: ServerFacts, cpu_hours: float, pue: float, unmeasured_utilisation: float) -> dict:
    idle_kwh = server.idle_watts * server.hours / 1000 * pue
    span = server.max_watts - server.idle_watts
    if server.role == "backup":
        dynamic_kwh = span * unmeasured_utilisation * server.hours / 1000 * pue
    else:
        dynamic_kwh = span * cpu_hours / server.vcpus / 1000 * pue if server.vcpus else 0.0
    embodied = server.embodied_kg_co2e * server.hours / (server.lifetime_years * HOURS_PER_YEAR)
    return {"idle_kwh": idle_kwh, "dynamic_kwh": dynamic_kwh, "embodied_kg_co2e": embodied}


def compute(servers: list[ServerFacts], instances: list[InstanceUse], settings: FootprintSettings) -> dict:
    """Every instance's, association's and server's figures, the collective's own and the totals (see the
    module): ``{"instances": {id: {...}}, "associations": {slug: {...}}, "servers": {name: {...}},
    "collective": {...}, "totals": {...}}``. Energies in kWh after the PUE, carbon in kgCO2e."""
    pue = settings.pue
    by_server = {server.name: server for server in servers}
    on_server: dict[str, list[InstanceUse]] = {server.name: [] for server in servers}
    for instance in instances:
        if instance.server in on_server:
            on_server[instance.server].append(instance)
    results: dict[int, dict] = {}
    for instance in instances:
        server = by_server.get(instance.server)
        hours = min(instance.hours, server.hours) if server else 0.0
        results[instance.id] = {
            **dict.fromkeys(FIGURES, 0.0),
            "address": instance.address, "association": instance.association, "server": instance.server,
            "cpu_hours": instance.cpu_hours, "memory_gb_hours": instance.memory_gb_hours,
            "reserved_memory_gb_hours": instance.reserved_memory_mb / 1024 * hours,
            "disk_gb_months": instance.disk_gb_months, "database_gb_months": instance.database_gb_months,
            "backup_gb_months": instance.backup_gb_months,
            "cpu_share_of_used": 0.0, "cpu_share_of_capacity": 0.0, "memory_share": 0.0, "idle_share": 0.0,
        }  # fmt: skip
    collective = _Figures()
    server_results: dict[str, dict] = {}
    backup_weights = {i.id: i.backup_gb_months for i in instances if i.backup_gb_months > 0}
    for server in servers:
        held = on_server[server.name]
        used_cpu_hours = sum(i.cpu_hours for i in held)
        energy = _server_energy(server, used_cpu_hours, pue, settings.unmeasured_utilisation)
        kwh = energy["idle_kwh"] + energy["dynamic_kwh"]
        intensity = server.intensity_g_per_kwh / 1000  # kg per kWh
        capacity_cpu_hours = server.vcpus * server.hours
        capacity_memory_gb_hours = server.memory_mb / 1024 * server.hours
        summary = {
            "role": server.role, "country": server.country, "hours": server.hours, "vcpus": server.vcpus,
            "memory_mb": server.memory_mb, "disk_gb": server.disk_gb, "idle_watts": server.idle_watts,
            "max_watts": server.max_watts, "embodied_kg_co2e_total": server.embodied_kg_co2e,
            "lifetime_years": server.lifetime_years, "intensity_g_per_kwh": server.intensity_g_per_kwh,
            "estimated": list(server.estimated), "instances": len(held), "cpu_hours": used_cpu_hours,
            "cpu_utilisation": used_cpu_hours / capacity_cpu_hours if capacity_cpu_hours else 0.0,
            "reserved_memory_share": (sum(results[i.id]["reserved_memory_gb_hours"] for i in held)
                                      / capacity_memory_gb_hours if capacity_memory_gb_hours else 0.0),
            "idle_kwh": energy["idle_kwh"], "dynamic_kwh": energy["dynamic_kwh"], "energy_kwh": kwh,
            "carbon_kg_co2e": kwh * intensity, "embodied_kg_co2e": energy["embodied_kg_co2e"],
            "total_kg_co2e": kwh * intensity + energy["embodied_kg_co2e"], "to_collective": False,
            "backup_kwh": kwh if server.role == "backup" else 0.0,
        }  # fmt: skip
        server_results[server.name] = summary
        if server.role == "backup":
            total_weight = sum(backup_weights.values())
            if not total_weight:
                _to_collective(collective, summary)
                continue
            for instance_id, weight in backup_weights.items():
                share = weight / total_weight
                figures = results[instance_id]
                figures["backup_kwh"] += kwh * share
                figures["energy_kwh"] += kwh * share
                figures["carbon_kg_co2e"] += kwh * share * intensity
                figures["embodied_kg_co2e"] += energy["embodied_kg_co2e"] * share
            continue
        total_weight = sum(results[i.id]["reserved_memory_gb_hours"] for i in held)
        for instance in held:
            figures = results[instance.id]
            share = figures["reserved_memory_gb_hours"] / total_weight if total_weight else 0.0
            dynamic = (server.max_watts - server.idle_watts) * instance.cpu_hours / server.vcpus / 1000 * pue \
                if server.vcpus else 0.0  # fmt: skip
            idle = energy["idle_kwh"] * share
            figures["idle_share"] = share
            figures["memory_share"] = (figures["reserved_memory_gb_hours"] / capacity_memory_gb_hours
                                       if capacity_memory_gb_hours else 0.0)  # fmt: skip
            figures["cpu_share_of_used"] = instance.cpu_hours / used_cpu_hours if used_cpu_hours else 0.0
            figures["cpu_share_of_capacity"] = instance.cpu_hours / capacity_cpu_hours if capacity_cpu_hours else 0.0
            figures["idle_kwh"] += idle
            figures["dynamic_kwh"] += dynamic
            figures["energy_kwh"] += idle + dynamic
            figures["carbon_kg_co2e"] += (idle + dynamic) * intensity
            figures["embodied_kg_co2e"] += energy["embodied_kg_co2e"] * share
        if not total_weight:  # nothing measured on it: idle and manufacturing are the collective's
            _to_collective(collective, {**summary, "dynamic_kwh": 0.0, "energy_kwh": energy["idle_kwh"],
                                        "carbon_kg_co2e": energy["idle_kwh"] * intensity,
                                        "total_kg_co2e": energy["idle_kwh"] * intensity + energy["embodied_kg_co2e"]})  # fmt: skip
            summary["to_collective"] = True
            # its dynamic energy (CPU-hours of instances measured for no time) stays with those instances
    for figures in results.values():
        figures["total_kg_co2e"] = figures["carbon_kg_co2e"] + figures["embodied_kg_co2e"]
    associations: dict[str, _Figures] = {}
    for figures in results.values():
        associations.setdefault(figures["association"], _Figures()).add(figures)
    totals = _Figures()
    for summary in server_results.values():
        totals.add(summary)
    for key in ("memory_gb_hours", "reserved_memory_gb_hours", "disk_gb_months", "database_gb_months",
                "backup_gb_months"):  # fmt: skip
        totals.values[key] = sum(figures[key] for figures in results.values())
    totals.values["cpu_hours"] = sum(figures["cpu_hours"] for figures in results.values())
    return {
        "instances": results,
        "associations": {slug: figures.values for slug, figures in associations.items()},
        "servers": server_results,
        "collective": collective.values,
        "totals": totals.values,
    }


def _to_collective(collective: _Figures, summary: dict) -> None:
    summary["to_collective"] = True
    collective.add({key: summary.get(key, 0.0) for key in ("idle_kwh", "dynamic_kwh", "energy_kwh", "carbon_kg_co2e",
                                                            "embodied_kg_co2e", "total_kg_co2e")})  # fmt: skip
