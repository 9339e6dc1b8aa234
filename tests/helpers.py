"""Builders shared by tests."""

from __future__ import annotations

from orchestrator.catalog import load_catalog
from orchestrator.deployment import InstanceRecord, instance_domain, instance_variables
from orchestrator.inventory import InstanceEntry
from orchestrator.workspace import BUNDLED_CATALOG_DIR

CATALOG = load_catalog(BUNDLED_CATALOG_DIR)


def instance_entry(association: str, name: str, server: str, service: str = "radicale", secrets=None, **parameters):
    """Give the inventory entry of an instance of a bundled ``service`` with ``parameters``."""
    record = InstanceRecord(
        association=association, name=name, domain=instance_domain(association, name, "example.org"), http_port=20000,
        desired_state="present", cpu=0.25, memory_mb=128, parameters=parameters, secrets=secrets or {},
    )  # fmt: skip
    return InstanceEntry(association, name, server, instance_variables(record, CATALOG.get(service)))
