"""Offers and quotas: what an association may have, and by how much a request would exceed it.

Pure functions over the configuration's offers, the catalogue and the association's instances.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from orchestrator.catalog import LIMIT_VALUE, Service
from orchestrator.config import Offer, WorkspaceConfig
from orchestrator.errors import ConfigError, InvalidInput


@dataclass(frozen=True)
class Excess:
    """One limit of an offer that a request would pass."""

    limit: str  # instances | memory | disk
    allowed: float
    requested: float
    unit: str

    @property
    def over(self) -> float:
        return self.requested - self.allowed

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.limit} {self.requested:g}{unit} where the offer allows {self.allowed:g}{unit} ({self.over:g}{unit} over)"

    def as_dict(self) -> dict:
        return {
            "limit": self.limit,
            "allowed": self.allowed,
            "requested": self.requested,
            "over": self.over,
            "unit": self.unit,
        }


@dataclass(frozen=True)
class Allocation:
    """What an association's instances take from its offer (their sizes, not their measured use)."""

    instances: int
    memory_mb: int
    disk_gb: int


def find_offer(offers: dict[str, Offer], name: str | None) -> Offer | None:
    """Give the offer called ``name`` (None for no offer); raises ConfigError if ruche.toml lacks it."""
    if name is None:
        return None
    if name not in offers:
        known = ", ".join(sorted(offers)) or "none"
        raise ConfigError(
            f"ruche.toml: no offer named {name!r} (offers: {known})", hint=f"add [offers.{name}] to ruche.toml"
        )
    return offers[name]


def check_offer_name(offers: dict[str, Offer], name: str | None) -> None:
    """Raise InvalidInput when ``name`` is not an offer of ruche.toml (None passes: no offer)."""
    if name is not None and name not in offers:
        known = ", ".join(sorted(offers)) or "none defined in ruche.toml"
        raise InvalidInput(f"offer {name!r} does not exist (offers: {known})", hint="`ruche offer list` shows them")


def offer_for_new_association(config: WorkspaceConfig, offer: str | None) -> str | None:
    """Give the offer a new association is registered on: ``offer`` if given, else ruche.toml's ``default_offer``
    (None when neither: no offer, no limit). Raises InvalidInput when ``offer`` is not an offer of ruche.toml."""
    check_offer_name(config.offers, offer)
    return offer if offer is not None else config.default_offer


def excesses(
    offer: Offer | None, current: Allocation, memory_mb: int = 0, disk_gb: int = 0, *, instances: int = 1
) -> list[Excess]:
    """Give every limit of ``offer`` that ``current`` plus ``instances`` more of this size would pass.

    With ``instances=0`` it checks what is already allocated. No offer: no limit.
    """
    if offer is None:
        return []
    wanted = (
        ("instances", offer.max_instances, current.instances + instances, ""),
        ("memory", offer.memory_mb, current.memory_mb + memory_mb, "MiB"),
        ("disk", offer.disk_gb, current.disk_gb + disk_gb, "GiB"),
    )
    return [
        Excess(limit, allowed, requested, unit) for limit, allowed, requested, unit in wanted if requested > allowed
    ]


def service_limits(service: Service, offer: Offer | None, offer_name: str | None) -> dict[str, str]:
    """Give the values of ``service``'s limits under ``offer``: the offer's, else the entry's defaults.

    Raises ConfigError naming the offer's field when it sets a limit the service does not declare
    or a value that is not a plain word/number.
    """
    values = {name: limit.default for name, limit in service.limits.items()}
    if offer is None:
        return values
    for name, value in offer.services.get(service.id, {}).items():
        where = f"ruche.toml: At 'offers.{offer_name}.services.{service.id}.{name}'"
        if name not in service.limits:
            declared = ", ".join(sorted(service.limits)) or "none"
            raise ConfigError(f"{where}: {service.id} declares no such limit (its limits: {declared})")
        if not re.match(LIMIT_VALUE, value):
            raise ConfigError(f"{where}: {value!r} is not a plain value such as '10 GB' or '250'")
        values[name] = value
    return values
