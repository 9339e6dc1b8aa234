"""Placement: which server gets a new instance, and why.

A pure function over plain values, so that every rule is unit-tested and ``--dry-run`` can show
each candidate with the reason it was taken or not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.errors import Conflict
from orchestrator.images import LAB_ONLY_HINT


@dataclass(frozen=True)
class Demand:
    """What the new instance needs."""

    association: str
    cpu: float
    memory_mb: int
    disk_gb: int
    required_labels: dict[str, str] = field(default_factory=dict)
    server: str | None = None  # an admin's explicit choice
    lab_only_images: tuple[str, ...] = ()  # images it runs that only the lab's registry serves (orchestrator.images)


@dataclass(frozen=True)
class Capacity:
    """A server as placement sees it: what it offers and what is already allocated on it."""

    name: str
    role: str
    draining: bool
    labels: dict[str, str]
    cpu: float
    memory_mb: int
    disk_gb: int
    allocated_cpu: float = 0
    allocated_memory_mb: int = 0
    allocated_disk_gb: int = 0
    association_instances: int = 0  # instances of the demanding association already there
    origin: str = "manual"  # who registered it: an admin ("manual") or `ruche lab up` ("lab")


LAB_ONLY_REASON = "not a lab server; only served by the lab's registry: "


@dataclass(frozen=True)
class Candidate:
    server: str
    eligible: bool
    reason: str
    score: tuple = ()


@dataclass(frozen=True)
class Decision:
    server: str
    candidates: list[Candidate]


def evaluate(demand: Demand, server: Capacity, *, cpu_ratio: float, memory_ratio: float) -> Candidate:
    """Give whether ``server`` can take ``demand`` and why (never oversubscribing past the ratios)."""
    if demand.server is not None and server.name != demand.server:
        return Candidate(server.name, False, f"not the requested server {demand.server}")
    if server.role != "apps":
        return Candidate(server.name, False, f"role is {server.role}, not apps")
    if server.draining:
        return Candidate(server.name, False, "draining")
    if demand.lab_only_images and server.origin != "lab":
        return Candidate(server.name, False, LAB_ONLY_REASON + ", ".join(demand.lab_only_images))
    missing = {k: v for k, v in demand.required_labels.items() if server.labels.get(k) != v}
    if missing:
        wanted = ", ".join(f"{k}={v}" for k, v in sorted(missing.items()))
        return Candidate(server.name, False, f"lacks label(s) {wanted}")
    limits = (
        ("CPU", server.allocated_cpu + demand.cpu, server.cpu * cpu_ratio, ""),
        ("memory", server.allocated_memory_mb + demand.memory_mb, server.memory_mb * memory_ratio, " MiB"),
        ("disk", server.allocated_disk_gb + demand.disk_gb, server.disk_gb, " GiB"),
    )
    for what, wanted_total, limit, unit in limits:
        if wanted_total > limit + 1e-9:
            return Candidate(
                server.name, False, f"not enough {what}: {wanted_total:g}{unit} would exceed {limit:g}{unit}"
            )
    free_memory = 1 - (server.allocated_memory_mb + demand.memory_mb) / (server.memory_mb * memory_ratio)
    score = (server.association_instances, -round(free_memory, 6), server.name)
    reason = f"fits; {server.association_instances} instance(s) of {demand.association} there, {free_memory:.0%} memory left after"
    return Candidate(server.name, True, reason, score)


def place(demand: Demand, servers: list[Capacity], *, cpu_ratio: float = 2.0, memory_ratio: float = 1.0) -> Decision:
    """Give the server for ``demand`` with every candidate's verdict.

    An instance running images that only the lab's registry serves goes to a lab server only.
    Among eligible servers it prefers the one with the fewest instances of the same association
    (spreading each association), then the most memory left, then the name (deterministic).
    Raises Conflict listing why each server was refused when none fits.
    """
    candidates = [evaluate(demand, server, cpu_ratio=cpu_ratio, memory_ratio=memory_ratio) for server in servers]
    candidates.sort(key=lambda c: (not c.eligible, c.score if c.eligible else (), c.server))
    eligible = [c for c in candidates if c.eligible]
    if not eligible:
        reasons = "; ".join(f"{c.server}: {c.reason}" for c in candidates) or "no server is registered"
        hint = "add a server (`ruche server add`), choose a smaller --size, or free capacity"
        if any(c.reason.startswith(LAB_ONLY_REASON) for c in candidates):
            hint = LAB_ONLY_HINT
        raise Conflict(f"no server can take this instance ({reasons})", hint=hint)
    return Decision(eligible[0].server, candidates)
