"""``ruche catalog list|show|validate|outdated``."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from orchestrator.catalog import Catalog, Service, load_catalog, load_service, support_status
from orchestrator.errors import NotFound, OperationFailed
from orchestrator.image_tags import list_tags, parse_image, tags_url, version_key, versions_in_tags
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


def outdated(workspace_path: Path | None, services: tuple[str, ...] = (), *, today: date | None = None) -> dict:
    """For each listed version of each entry (or of ``services``): the newer versions its image's registry
    holds (same major first, then newer majors beside the entry's newest major), and its support status.

    Gives ``{"versions": [row, ...], "errors": int}``; a registry that cannot be read is an ``error`` in the
    rows of its images (the others are still read). Raises NotFound for an unknown service."""
    workspace = open_workspace(workspace_path)
    catalog = load_catalog(workspace.catalog_dir)
    selected = [catalog.get(name) for name in services] if services else list(catalog.services.values())
    today = today or date.today()
    listings: dict[str, list[str] | str] = {}
    rows = []
    for service in selected:
        listed = {release.version for release in service.versions}
        keys = {release.version: version_key(release.version) for release in service.versions}
        top = max((key for key in keys.values() if key), default=None)
        for release in service.versions:
            image = parse_image(release.image)
            url = tags_url(image, workspace.config.registry)
            if url not in listings:
                try:
                    listings[url] = list_tags(url)
                except OperationFailed as error:
                    listings[url] = str(error)
            status = support_status(release, today)
            row = {"service": service.id, "version": release.version, "default": release.version == service.version,
                   "image": release.image, "asked": url, "newer_same_major": [], "newer_majors": [],
                   "end_of_support": release.end_of_support.isoformat() if release.end_of_support else None,
                   "support": status[0] if status else ("supported" if release.end_of_support else "unknown"),
                   "support_days": status[1] if status else None, "error": None}  # fmt: skip
            current = keys[release.version]
            found = listings[url]
            if isinstance(found, str):
                row["error"] = found
            elif current is None:
                row["error"] = f"version {release.version!r} is not dotted numbers: its image's tags cannot be compared"
            else:
                newer = sorted((v for v in versions_in_tags(found, image.tag, release.version)
                                if v not in listed and version_key(v) > current), key=version_key, reverse=True)  # fmt: skip
                row["newer_same_major"] = [v for v in newer if version_key(v)[0] == current[0]]
                if current == top:  # newer majors are shown beside the entry's newest version
                    row["newer_majors"] = [v for v in newer if version_key(v)[0] > current[0]]
            rows.append(row)
    return {"versions": rows, "errors": sum(1 for row in rows if row["error"])}
