"""``ruche catalog list|show|validate``."""

from __future__ import annotations

from pathlib import Path

from orchestrator.catalog import Catalog, Service, load_catalog, load_service
from orchestrator.errors import NotFound
from orchestrator.workspace import BUNDLED_CATALOG_DIR, open_workspace


def catalog_of(workspace_path: Path | None) -> Catalog:
    """Give the workspace's catalogue; raises ConfigError listing every invalid entry."""
    return load_catalog(open_workspace(workspace_path).catalog_dir)


def summary(service: Service) -> dict:
    return {
        "id": service.id,
        "name": service.name.model_dump(),
        "version": service.version,
        "versions": [v.version for v in service.versions],
        "database": service.database,
        "image": service.release().image,
        "sizes": list(service.sizes.model_dump()),
        "verification": {**service.verification.model_dump(mode="json"), "summary": service.verification.summary},
    }


def list_services(workspace_path: Path | None) -> list[dict]:
    """Give a summary of each service, sorted by id."""
    return [summary(service) for service in catalog_of(workspace_path).services.values()]


def show_service(workspace_path: Path | None, service_id: str) -> dict:
    """Give the full definition of ``service_id``; raises NotFound."""
    service = catalog_of(workspace_path).get(service_id)
    definition = service.model_dump(mode="json")
    definition["verification"]["summary"] = service.verification.summary
    return definition


def validate(path: Path | None, workspace_path: Path | None) -> list[str]:
    """Validate one entry file or a catalogue directory (default: the workspace's, else the bundled one).

    Gives the ids found; raises ConfigError listing every error with its file and path.
    """
    if path is None:
        try:
            path = open_workspace(workspace_path).catalog_dir
        except NotFound:
            path = BUNDLED_CATALOG_DIR
    if path.is_file():
        return [load_service(path).id]
    return list(load_catalog(path).services)
