"""Energy and carbon per association, pure: from each instance's measured use over a period (CPU-hours, memory,
storage, backups' sizes), each server's facts (vCPUs, memory, power, manufacturing emissions, country) and the
constants of [footprint], the share of each server every instance takes and what that share costs in kWh and
kgCO2e. No I/O: ``operations/footprint`` gathers the state into it (docs/footprint.md says the method).

Per application server over the hours it was registered in the period (``hours``):

- idle energy = idle_watts x hours, each instance taking its reserved memory GB-hours (its size's memory x the
  hours it was measured) / the server's memory GB x hours; what no instance reserved is the collective's own;
- dynamic energy = (max_watts - idle_watts) x min(1, CPU-hours / (vCPUs x hours)) x hours, shared by CPU-hours;
- embodied emissions = embodied_kg_co2e x hours / (lifetime_years x 8766 h), allocated like idle energy.

A backup server (role backup, where ruche measures no CPU) draws idle_watts + unmeasured_utilisation x (max -
idle); its energy and embodied emissions are allocated by backup GB-months fleet-wide (``backup_kwh``, also
counted in ``idle_kwh`` and ``dynamic_kwh``). Energy is multiplied by the PUE; carbon = energy x the grid intensity
of the server's country. What no association carries is the collective's own (``collective``), so that every
figure of the associations plus the collective's equals the totals exactly.
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
    kind: str = "vps"


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


def memory_gb(memory_mb: float) -> float:
    """``memory_mb`` (MiB, as sizes and servers record it) in GB of 10^9 bytes, the unit of measured memory."""
    return memory_mb * 2**20 / GB


def server_facts(name: str, role: str, vcpus: int, memory_mb: int, disk_gb: int, labels: dict, hours: float,
                 settings: FootprintSettings) -> ServerFacts:  # fmt: skip
    """A server's facts from the state's record and [footprint]: its own figures where [footprint.servers.NAME]
    gives them, else its kind's (label ``footprint_kind``, else ``default_kind``): ``vps``: the per-vCPU, per-GB
    figures and a vCPU share of the reference host's manufacturing; ``dedicated``: the whole machine's figures. A
    server giving one of idle_watts and max_watts gets the other from its kind's span. Its country from its
    ``country`` label. A kind not known or a max below the idle power: ValueError naming the server."""
    own = settings.servers.get(name)
    kind = str(labels.get("footprint_kind") or settings.default_kind).strip().lower()
    if kind == "vps":
        base = settings.watts_per_memory_gb * memory_mb / 1024 + settings.watts_per_disk_tb * disk_gb / 1000
        idle_estimate = settings.idle_watts_per_vcpu * vcpus + base
        max_estimate = settings.max_watts_per_vcpu * vcpus + base
        embodied_estimate = settings.embodied_kg_co2e * min(1.0, vcpus / settings.reference_host_vcpus)
    elif kind == "dedicated":
        idle_estimate, max_estimate = settings.dedicated_idle_watts, settings.dedicated_max_watts
        embodied_estimate = settings.embodied_kg_co2e
    else:
        raise ValueError(f"server {name}: footprint_kind {kind!r} is not vps or dedicated; set its label "
                         f"(`ruche server set {name} --label footprint_kind=vps`)")  # fmt: skip
    span = max(0.0, max_estimate - idle_estimate)
    own_idle = own.idle_watts if own is not None else None
    own_max = own.max_watts if own is not None else None
    if own_idle is not None and own_max is not None and own_max < own_idle:
        raise ValueError(f"server {name}: max_watts {own_max} is below idle_watts {own_idle} in "
                         f"[footprint.servers.{name}]: fix one of them")  # fmt: skip
    if own_idle is not None and own_max is None:
        own_max = own_idle + span
    elif own_max is not None and own_idle is None:
        own_idle = max(0.0, own_max - span)
    estimates = {
        "idle_watts": (own_idle, idle_estimate),
        "max_watts": (own_max, max_estimate),
        "embodied_kg_co2e": (own.embodied_kg_co2e if own else None, embodied_estimate),
        "lifetime_years": (own.lifetime_years if own else None, settings.lifetime_years),
    }
    figures, estimated = {}, []
    for key, (value, estimate) in estimates.items():
        given = own is not None and getattr(own, key) is not None
        figures[key] = value if value is not None else estimate
        if not given:
            estimated.append(key)
    country = str(labels.get("country") or "").strip().upper() or None
    intensity = settings.carbon_intensity.get(country or "", settings.fallback_carbon_intensity)
    if country not in settings.carbon_intensity:
        estimated.append("intensity_g_per_kwh")
    return ServerFacts(name=name, role=role, vcpus=vcpus, memory_mb=memory_mb, disk_gb=disk_gb, hours=max(0.0, hours),
                       country=country, intensity_g_per_kwh=intensity, estimated=tuple(estimated), kind=kind,
                       **figures)  # fmt: skip


def backup_gb_months(backups: Iterable[tuple[datetime, int]], start: datetime, end: datetime, *,
                     deleted: bool = False) -> float:  # fmt: skip
    """GB-months of one instance's snapshots in [start, end): each successful backup's ``total_bytes`` (the
    snapshot's size before restic's deduplication) held from when it finished until the next one finished (or the
    end); ``backups`` as (finished_at, total_bytes), including the last one before ``start``. A ``deleted``
    instance's last backup (the final one, taken when it was deleted: instances record no deletion time) holds
    nothing: the instance was gone from then on, and one deleted before ``start`` counts nothing."""
    ordered = sorted(backups)
    byte_seconds = 0.0
    for index, (finished, size) in enumerate(ordered):
        until = ordered[index + 1][0] if index + 1 < len(ordered) else (finished if deleted else end)
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
    """A server's idle and dynamic energy (kWh after the PUE) and embodied emissions over its hours; an application
    server's utilisation is capped at 1 (its CPU-hours can exceed its capacity when an instance moved to it during
    the period: its samples carry no server, so its whole period is counted on the server it is on at the end)."""
    idle_kwh = server.idle_watts * server.hours / 1000 * pue
    span = server.max_watts - server.idle_watts
    if server.role == "backup":
        utilisation = unmeasured_utilisation
    else:
        capacity = server.vcpus * server.hours
        utilisation = min(1.0, cpu_hours / capacity) if capacity else 0.0
    dynamic_kwh = span * utilisation * server.hours / 1000 * pue
    embodied = server.embodied_kg_co2e * server.hours / (server.lifetime_years * HOURS_PER_YEAR)
    return {"idle_kwh": idle_kwh, "dynamic_kwh": dynamic_kwh, "embodied_kg_co2e": embodied, "utilisation": utilisation}


ENERGY = ("idle_kwh", "dynamic_kwh", "backup_kwh", "energy_kwh", "carbon_kg_co2e", "embodied_kg_co2e",
          "total_kg_co2e")  # fmt: skip


def compute(servers: list[ServerFacts], instances: list[InstanceUse], settings: FootprintSettings) -> dict:
    """Every instance's, association's and server's figures, the collective's own and the totals (see the
    module): ``{"instances": {id: {...}}, "associations": {slug: {...}}, "servers": {name: {...}},
    "collective": {...}, "totals": {...}}``. Energies in kWh after the PUE, carbon in kgCO2e. Every figure of the
    associations plus the collective's equals the totals'."""
    pue = settings.pue
    on_server: dict[str, list[InstanceUse]] = {server.name: [] for server in servers}
    hours_on: dict[str, float] = {server.name: server.hours for server in servers}
    for instance in instances:
        if instance.server in on_server:
            on_server[instance.server].append(instance)
    results: dict[int, dict] = {}
    for instance in instances:
        hours = min(instance.hours, hours_on.get(instance.server, 0.0))
        results[instance.id] = {
            **dict.fromkeys(FIGURES, 0.0),
            "address": instance.address, "association": instance.association, "server": instance.server,
            "cpu_hours": instance.cpu_hours, "memory_gb_hours": instance.memory_gb_hours,
            "reserved_memory_gb_hours": memory_gb(instance.reserved_memory_mb) * hours,
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
        capacity_memory_gb_hours = memory_gb(server.memory_mb) * server.hours
        reserved = sum(results[i.id]["reserved_memory_gb_hours"] for i in held)
        summary = {
            "role": server.role, "kind": server.kind, "country": server.country, "hours": server.hours,
            "vcpus": server.vcpus, "memory_mb": server.memory_mb, "disk_gb": server.disk_gb,
            "idle_watts": server.idle_watts, "max_watts": server.max_watts,
            "embodied_kg_co2e_total": server.embodied_kg_co2e, "lifetime_years": server.lifetime_years,
            "intensity_g_per_kwh": server.intensity_g_per_kwh, "estimated": list(server.estimated),
            "instances": len(held), "cpu_hours": used_cpu_hours,
            "cpu_utilisation": energy["utilisation"] if server.role != "backup" else 0.0,
            "cpu_capped": server.role != "backup" and used_cpu_hours > capacity_cpu_hours,
            "reserved_memory_share": reserved / capacity_memory_gb_hours if capacity_memory_gb_hours else 0.0,
            "idle_kwh": energy["idle_kwh"], "dynamic_kwh": energy["dynamic_kwh"], "energy_kwh": kwh,
            "carbon_kg_co2e": kwh * intensity, "embodied_kg_co2e": energy["embodied_kg_co2e"],
            "total_kg_co2e": kwh * intensity + energy["embodied_kg_co2e"], "to_collective": False,
            "collective_kwh": 0.0, "backup_kwh": kwh if server.role == "backup" else 0.0,
        }  # fmt: skip
        server_results[server.name] = summary
        if server.role == "backup":
            total_weight = sum(backup_weights.values())
            if not total_weight:
                _to_collective(collective, summary)
                summary["to_collective"], summary["collective_kwh"] = True, kwh
                continue
            for instance_id, weight in backup_weights.items():
                _charge(results[instance_id], energy["idle_kwh"] * weight / total_weight,
                        energy["dynamic_kwh"] * weight / total_weight,
                        energy["embodied_kg_co2e"] * weight / total_weight, intensity, backup=True)  # fmt: skip
            continue
        # idle power and manufacturing by reserved memory of the server's memory (of what is reserved when it is
        # overcommitted); what no instance reserved is the collective's own
        divisor = max(capacity_memory_gb_hours, reserved)
        for instance in held:
            figures = results[instance.id]
            share = figures["reserved_memory_gb_hours"] / divisor if divisor else 0.0
            cpu_share = instance.cpu_hours / used_cpu_hours if used_cpu_hours else 0.0
            figures["idle_share"] = share
            figures["memory_share"] = (figures["reserved_memory_gb_hours"] / capacity_memory_gb_hours
                                       if capacity_memory_gb_hours else 0.0)  # fmt: skip
            figures["cpu_share_of_used"] = cpu_share
            figures["cpu_share_of_capacity"] = instance.cpu_hours / capacity_cpu_hours if capacity_cpu_hours else 0.0
            _charge(figures, energy["idle_kwh"] * share, energy["dynamic_kwh"] * cpu_share,
                    energy["embodied_kg_co2e"] * share, intensity)  # fmt: skip
        unreserved = 1.0 - (reserved / divisor if divisor else 0.0)
        if unreserved > 0:  # (its dynamic energy is all its instances': none without CPU-hours)
            own = _Figures()
            _charge(own.values, energy["idle_kwh"] * unreserved, 0.0, energy["embodied_kg_co2e"] * unreserved,
                    intensity)  # fmt: skip
            own.values["total_kg_co2e"] = own.values["carbon_kg_co2e"] + own.values["embodied_kg_co2e"]
            collective.add(own.values)
            summary["to_collective"] = not held or not reserved
            summary["collective_kwh"] = own.values["energy_kwh"]
    for figures in results.values():
        figures["total_kg_co2e"] = figures["carbon_kg_co2e"] + figures["embodied_kg_co2e"]
    associations: dict[str, _Figures] = {}
    for figures in results.values():
        associations.setdefault(figures["association"], _Figures()).add(figures)
    totals = _Figures()
    for summary in server_results.values():
        totals.add({key: summary[key] for key in ENERGY})
    for key in FIGURES:
        if key not in ENERGY:
            totals.values[key] = sum(figures[key] for figures in results.values())
    return {
        "instances": results,
        "associations": {slug: figures.values for slug, figures in associations.items()},
        "servers": server_results,
        "collective": collective.values,
        "totals": totals.values,
    }


def _charge(figures: dict, idle: float, dynamic: float, embodied: float, intensity: float, *,
            backup: bool = False) -> None:  # fmt: skip
    figures["idle_kwh"] += idle
    figures["dynamic_kwh"] += dynamic
    figures["energy_kwh"] += idle + dynamic
    if backup:
        figures["backup_kwh"] += idle + dynamic
    figures["carbon_kg_co2e"] += (idle + dynamic) * intensity
    figures["embodied_kg_co2e"] += embodied


def _to_collective(collective: _Figures, summary: dict) -> None:
    collective.add({key: summary.get(key, 0.0) for key in ENERGY})
