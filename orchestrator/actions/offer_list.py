"""``ruche offer list|show``: the quota packages of ruche.toml, with who is on them."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.catalog import load_catalog
from orchestrator.config import Offer
from orchestrator.errors import ConfigError, NotFound
from orchestrator.quotas import service_limits
from orchestrator.state.associations import list_associations
from orchestrator.state.instances import allocation


def offer_as_dict(name: str, offer: Offer) -> dict:
    return {
        "name": name,
        "label": offer.label.model_dump(),
        "max_instances": offer.max_instances,
        "memory_mb": offer.memory_mb,
        "disk_gb": offer.disk_gb,
        "services": {service: dict(limits) for service, limits in sorted(offer.services.items())},
        "backup_retention": offer.backup_retention.model_dump(),
        "backup_window_hours": offer.backup_window_hours,
        "trash_retention_days": offer.trash_retention_days,
    }


def offers(workspace_path: Path | None) -> list[dict]:
    """Give every offer with the number of associations on it."""
    with opened(workspace_path) as (workspace, store), store.session() as session:
        on_offer: dict[str | None, int] = {}
        for association in list_associations(session):
            on_offer[association.offer] = on_offer.get(association.offer, 0) + 1
        return [
            {**offer_as_dict(name, offer), "associations": on_offer.get(name, 0)}
            for name, offer in sorted(workspace.config.offers.items())
        ]


def offer(workspace_path: Path | None, name: str) -> dict:
    """Give offer ``name``: its limits, each service's limits under it, and its associations' allocations.

    Raises NotFound for an unknown offer, ConfigError when it sets a limit no service declares.
    """
    with opened(workspace_path) as (workspace, store), store.session() as session:
        if name not in workspace.config.offers:
            known = ", ".join(sorted(workspace.config.offers)) or "none"
            raise NotFound(
                f"no offer {name!r} (offers: {known})", hint="offers are defined in ruche.toml under [offers.NAME]"
            )
        definition = workspace.config.offers[name]
        catalog = load_catalog(workspace.catalog_dir)
        unknown = sorted(set(definition.services) - set(catalog.services))
        if unknown:
            raise ConfigError(
                f"ruche.toml: At 'offers.{name}.services': no catalogue service {', '.join(map(repr, unknown))}"
            )
        entry = offer_as_dict(name, definition)
        entry["service_limits"] = {
            service.id: {
                limit: {"value": value, "description": service.limits[limit].description.model_dump()}
                for limit, value in service_limits(service, definition, name).items()
            }
            for service in catalog.services.values() if service.limits
        }  # fmt: skip
        entry["associations"] = []
        for association in list_associations(session):
            if association.offer == name:
                used = allocation(session, association.id)
                entry["associations"].append({"slug": association.slug, "instances": used.instances,
                                              "memory_mb": used.memory_mb, "disk_gb": used.disk_gb})  # fmt: skip
        return entry
