"""The columns a server's render key covers are every column an instance's deployment is derived from:
deployment_variables is run on recording stand-ins of an instance and its association, and what it
reads must be listed in DEPLOYMENT_COLUMNS (else a change of that column would not re-render)."""

from __future__ import annotations

from orchestrator.config import BackupSettings, WorkspaceConfig, default_offers
from orchestrator.operations.inventories import deployment_variables
from orchestrator.state.models import Association, Instance
from orchestrator.state.render_keys import DEPLOYMENT_COLUMNS
from tests.helpers import CATALOG


class Recording:
    """Gives the values it holds and remembers which were read."""

    def __init__(self, read: set[str], prefix: str, values: dict) -> None:
        self.__dict__["_read"], self.__dict__["_prefix"], self.__dict__["_values"] = read, prefix, values

    def __getattr__(self, name: str):
        self._read.add(self._prefix + name)
        return self._values[name]


def test_every_column_a_deployment_reads_is_in_the_render_key():
    config = WorkspaceConfig.model_validate({"collective": "C", "base_domain": "example.org"}).model_copy(
        update={"backup": BackupSettings(repository="/srv/backup"), "offers": default_offers()})  # fmt: skip
    for service in ("radicale", "mediawiki"):
        definition = CATALOG.get(service)
        read: set[str] = set()
        association = Recording(read, "association.", {"slug": "amap", "offer": "association", "backup_password": "x"})
        instance = Recording(read, "", {
            "association": association, "name": "app", "service_id": service, "service_version": definition.version,
            "domain": "app.amap.example.org", "http_port": 20001, "desired_state": "present", "cpu": 0.5, "memory_mb": 256,
            "parameters": {"admin_email": "a@amap.example.org"}, "secrets": {}, "id_slot": 3, "size": "small",
            "own_domains": ["wiki.amap-du-coin.org"], "primary_domain": "wiki.amap-du-coin.org",
        })  # fmt: skip
        deployment_variables(instance, CATALOG, config)
        listed = (
            set(DEPLOYMENT_COLUMNS[Instance])
            | {"association"}
            | {f"association.{c}" for c in DEPLOYMENT_COLUMNS[Association]}
        )
        assert read and read <= listed, read - listed
