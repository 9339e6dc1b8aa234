"""An association's signed bundle written (`ruche association export`, and the member's download that the worker
prepares): what another collective's ruche imports (`ruche association import`) and a hoster without ruche reads by
hand (docs/bundle-format.md).

Each running instance is exported on its server by ``ruche-backup export`` (the service quiesced as for a backup:
maintenance or read-only mode, its database dumped), the archive fetched and repacked as it streams: the dump
directory's files as members of their own, the volumes as ``volumes.tar`` whose owners are relative to the
instance's ID range (0 is the containers' root), so that any range can take them back. Nothing is held in memory:
the server's archive and the volumes' tar are files in a scratch directory beside the bundle being written.

Application secrets (an admin's password, a service's own keys: what the data was written with) travel only sealed
for the receiving collective's key (``--to``); without it they are left out, and the receiver's admins reset them.
Database passwords never travel: the receiver's database loads the dump under its own role.
"""

from __future__ import annotations

import json
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from orchestrator import __version__
from orchestrator.bundles import BundleWriter
from orchestrator.errors import InvalidInput, MissingPrerequisite, OperationFailed
from orchestrator.idranges import RANGE_SIZE, id_range
from orchestrator.operations.backup_jobs import require_backups
from orchestrator.operations.bundle_staging import SET_ID_BITS
from orchestrator.operations.server_exports import fetch_export
from orchestrator.remote import SshTarget
from orchestrator.signing import PublicKey, signing_key
from orchestrator.state.associations import get_association
from orchestrator.state.database import StateStore
from orchestrator.state.events import record_event
from orchestrator.state.instances import list_instances
from orchestrator.workspace import Workspace


def write_bundle(workspace: Workspace, store: StateStore, slug: str, output: Path, *, recipient: PublicKey | None,
                 actor: str | None = None, progress: Callable[[str], None] = lambda _m: None) -> dict:  # fmt: skip
    """Write ``output``: ``slug``'s bundle, signed with the workspace's key; give a summary (never a secret).

    Raises NotFound (no such association), InvalidInput (``output`` exists, no instance, or one that
    is not running), MissingPrerequisite (no backups configured: the servers' export tool shares their settings;
    no signing key), OperationFailed (a server's export). A failure leaves no file behind.
    """
    output = output.expanduser().resolve()
    if output.exists():
        raise InvalidInput(f"{output} exists already", hint="choose another --output, or remove it")
    with store.session() as session:
        require_backups(workspace)
        association = get_association(session, slug)
        instances = [i for i in list_instances(session, association=slug) if i.state != "deleted"]
        if not instances:
            raise InvalidInput(f"{slug} has no instance to export")
        idle = [f"{i.address} ({i.state})" for i in instances if i.state != "running"]
        if idle:
            raise InvalidInput(f"{slug}: not running, so not exported: {', '.join(idle)}",
                               hint="resume them (`ruche instance resume`) or delete them, then export")  # fmt: skip
        vault = workspace.vault()
        key = signing_key(workspace.root, vault)
        offer = workspace.config.offers.get(association.offer) if association.offer else None
        catalog = workspace.catalog
        plan, secrets = [], {}
        for instance in instances:
            if instance.id_slot is None:
                raise MissingPrerequisite(
                    f"{instance.address} has no fixed ID range yet", hint="run `ruche apply` first"
                )
            plan.append({
                "name": instance.name, "service": instance.service_id, "version": instance.service_version,
                "size": instance.size, "parameters": dict(instance.parameters),
                "domains": _domains(instance), "identifier": instance.identifier,
                "target": SshTarget.of(instance.server), "start": id_range(instance.id_slot).start,
                "database": _engine(catalog.get(instance.service_id).database),
            })  # fmt: skip
            secrets[instance.name] = {name: vault.decrypt(value) for name, value in instance.secrets.items()
                                      if not name.startswith("db_")}  # fmt: skip
        fields = {
            "ruche_version": __version__, "collective": workspace.config.collective,
            "association": {"slug": slug, "name": association.name, "email": association.email,
                            "offer": association.offer,
                            "offer_figures": {"max_instances": offer.max_instances, "memory_mb": offer.memory_mb,
                                              "disk_gb": offer.disk_gb} if offer else {}},
            "catalogue": {service_id: entry.version for service_id, entry in sorted(catalog.services.items())},
            "secrets": None if recipient is None else {"sealed_for": recipient.key_id,
                                                       "box": recipient.seal(json.dumps(secrets).encode())},
        }  # fmt: skip
        del secrets
    entries = []
    with (
        tempfile.TemporaryDirectory(prefix=".ruche-bundle-", dir=output.parent) as scratch,
        BundleWriter(output) as bundle,
    ):
        for item in plan:
            name, target = item["name"], item["target"]
            progress(f"{slug}/{name}: exporting on {target.name} (the service is quiesced meanwhile)")
            local = Path(scratch) / f"{item['identifier']}.tar"
            answer = fetch_export(target, item["identifier"], local, what=f"{slug}/{name}")
            progress(f"{slug}/{name}: repacking {answer['size']} bytes")
            _repack(local, bundle, name, item["start"], Path(scratch) / "volumes.tar")
            local.unlink()
            held = answer.get("manifest") or {}
            data = {"tables": (held.get("database") or {}).get("tables") or {},
                    "files": {volume: len(files) for volume, files in (held.get("volumes") or {}).items()}}  # fmt: skip
            entries.append({k: item[k] for k in ("name", "service", "version", "size", "parameters", "domains",
                                                 "database")} | {"data": data})  # fmt: skip
        manifest = bundle.finish({**fields, "instances": entries}, key)
    with store.session() as session:
        record_event(session, kind="association.exported", subject=slug, association=slug, actor=actor,
                     detail={"sha256": bundle.sha256, "size": bundle.size, "key_id": manifest.key_id,
                             "instances": [e["name"] for e in entries],
                             "secrets_sealed_for": recipient.key_id if recipient else None})  # fmt: skip
    return {"output": str(output), "size": bundle.size, "sha256": bundle.sha256, "key_id": manifest.key_id,
            "instances": [{k: e[k] for k in ("name", "service", "version")} for e in entries],
            "secrets": f"sealed for {recipient.key_id}" if recipient else "left out"}  # fmt: skip


def _engine(database: str) -> str | None:
    return None if database == "none" else database


def _domains(instance) -> list[str]:
    """Its own domains (the association's names, `ruche domain add`), the primary first; not the collective's
    default address (NAME.SLUG.BASE_DOMAIN), which the receiver names in its own domain."""
    own = list(instance.own_domains or [])
    primary = instance.primary_domain
    return ([primary] if primary in own else []) + [d for d in own if d != primary]


def _repack(server_tar: Path, bundle: BundleWriter, name: str, start: int, volumes_path: Path) -> None:
    """Stream the server's archive into the bundle: ``dump/*`` as members of their own (``instances/NAME/FILE``:
    database.sql, manifest.json), ``volumes/*`` into
    ``volumes.tar`` with owners moved from the instance's range (``start``) to 0; refuse anything else, and any
    owner outside the range (a file the containers could not have written)."""
    with (
        tarfile.open(server_tar, "r|") as source,
        tarfile.open(volumes_path, "w", format=tarfile.PAX_FORMAT) as volumes,
    ):
        for member in source:
            source.members.clear()  # tarfile keeps every member read otherwise, even in a stream
            if member.name == "dump" or (member.isdir() and member.name.startswith("dump/")):
                continue
            if member.name.startswith("dump/") and member.isfile():
                bundle.add(f"instances/{name}/{member.name[len('dump/') :]}", source.extractfile(member), member.size)
            elif (member.name == "volumes" or member.name.startswith("volumes/")) and not (
                member.isdir() or member.isfile() or member.issym()
            ):
                raise OperationFailed(f"{name}: {member.name} is neither a directory, a regular file nor a symbolic "
                                      "link (a hard link, a FIFO, a device): the bundle cannot carry it")  # fmt: skip
            elif member.name == "volumes" or member.name.startswith("volumes/"):
                for attribute in ("uid", "gid"):
                    relative = getattr(member, attribute) - start
                    if not 0 <= relative < RANGE_SIZE:
                        raise OperationFailed(f"{name}: {member.name} is owned by {attribute} "
                                              f"{getattr(member, attribute)}, outside the instance's ID range")  # fmt: skip
                    setattr(member, attribute, relative)
                member.uname = member.gname = ""
                member.mode &= ~SET_ID_BITS  # no set-id bit travels (an importer clears them all the same)
                volumes.addfile(member, source.extractfile(member) if member.isfile() else None)
            else:
                raise OperationFailed(f"{name}: the server's archive holds {member.name!r}, neither dump nor volumes")
    with volumes_path.open("rb") as handle:
        bundle.add(f"instances/{name}/volumes.tar", handle, volumes_path.stat().st_size)
    volumes_path.unlink()
